"""The do-not-text list: numbers that must never be texted (a permanent delivery failure, an erasure), as hashes."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from crmcore.models import DoNotText
from crmcore.texts.phones import phone_hash


def add(session: Session, *, phone: str, reason: str) -> None:
    """Put an E.164 number on the list; a second time changes nothing."""
    digest = phone_hash(phone)
    if session.execute(select(DoNotText.id).where(DoNotText.phone_hash == digest)).first() is None:
        session.add(DoNotText(phone_hash=digest, reason=reason[:40]))


def blocked(session: Session, phones: list[str]) -> set[str]:
    """Those of these E.164 numbers that are on the list."""
    by_hash = {phone_hash(p): p for p in phones if p}
    found: set[str] = set()
    digests = list(by_hash)
    for start in range(0, len(digests), 500):
        found |= {by_hash[d] for d in session.scalars(select(DoNotText.phone_hash).where(DoNotText.phone_hash.in_(digests[start : start + 500])))}
    return found
