"""Suppression checks for sending: the hash as SQL, and a batch lookup. The hash itself and adding an
address are crmcore.privacy's (`email_hash`, `suppress`): one way to do each.

`email_hash_sql` computes the same hash inside the database, so launch can exclude suppressed patrons
in one set-based statement: PostgreSQL has sha256(); SQLite gets a function registered per connection.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import String
from sqlmodel import Session

from crmcore.models import Suppression
from crmcore.privacy import email_hash

SQLITE_FUNCTION = "crm_email_hash"


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
