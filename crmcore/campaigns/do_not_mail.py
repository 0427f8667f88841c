"""The do-not-mail list: addresses that must never be mailed (erased patrons, hard bounces), kept as hashes.
The hash, adding an address, checking one, the hash as SQL, and a batch lookup: one way to do each.

`email_hash_sql` computes the same hash inside the database, so launch can exclude suppressed patrons
in one set-based statement: PostgreSQL has sha256(); SQLite gets a function registered per connection.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String
from sqlmodel import Session

from crmcore.models import Suppression

SQLITE_FUNCTION = "crm_email_hash"


def email_hash(email: str) -> str:
    """How an address is kept on the suppression list: SHA-256 of the trimmed, lower-cased address."""
    return hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def is_suppressed(session: Session, email: str | None) -> bool:
    """True if this address must never be mailed (erased patron, hard bounce)."""
    if not email:
        return False
    return session.execute(select(Suppression.id).where(Suppression.email_hash == email_hash(email))).first() is not None


def suppress(session: Session, *, email: str, reason: str) -> None:
    """Add an address to the suppression list (as a hash); a second time changes nothing."""
    digest = email_hash(email)
    if session.execute(select(Suppression.id).where(Suppression.email_hash == digest)).first() is None:
        session.add(Suppression(email_hash=digest, reason=reason[:40]))


def _sqlite_hash(email: str | None) -> str | None:
    return None if email is None else email_hash(email)


class email_hash_sql(FunctionElement):
    """SQL expression: the suppression hash of an email column."""

    type = String()
    inherit_cache = True
    name = "email_hash_sql"


@compiles(email_hash_sql, "postgresql")
def _pg(element, compiler, **kw):
    (arg,) = list(element.clauses)
    return "encode(sha256(convert_to(lower(btrim(%s)), 'UTF8')), 'hex')" % compiler.process(arg, **kw)


@compiles(email_hash_sql)
def _default(element, compiler, **kw):
    (arg,) = list(element.clauses)
    return f"{SQLITE_FUNCTION}({compiler.process(arg, **kw)})"


def prepare(session: Session) -> None:
    """Make email_hash_sql callable on this session's connection (a no-op on PostgreSQL)."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.connection.driver_connection.create_function(SQLITE_FUNCTION, 1, _sqlite_hash, deterministic=True)


def suppressed(session: Session, emails: list[str]) -> set[str]:
    """Those of `emails` that are suppressed (as given, not hashed)."""
    by_hash = {email_hash(e): e for e in emails if e}
    if not by_hash:
        return set()
    found = session.scalars(select(Suppression.email_hash).where(Suppression.email_hash.in_(list(by_hash))))
    return {by_hash[digest] for digest in found}
