"""Consent: an append-only record per patron × channel × topic; the latest record is current.

`record` is the one way consent changes: it appends the record and keeps `current_consent` (what
segments and the sender read) in step, in the same transaction. No record means no consent.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from crmcore.models import ConsentRecord, CurrentConsent, utcnow

CHANNELS = ("email", "sms", "phone", "mail")
TOPICS = ("events", "new_materials", "newsletter", "fundraising", "services")
WORDING_VERSION = "2026-01"


def check(channel: str, topic: str) -> None:
    if channel not in CHANNELS:
        raise ValueError(f"Unknown channel {channel!r}; channels are {', '.join(CHANNELS)}.")
    if topic not in TOPICS:
        raise ValueError(f"Unknown topic {topic!r}; topics are {', '.join(TOPICS)}.")


def record(
    session: Session,
    *,
    patron_id: int,
    channel: str,
    topic: str,
    granted: bool,
    source: str,
    wording_version: str | None = WORDING_VERSION,
    at: datetime | None = None,
) -> ConsentRecord:
    """Append a consent record and make it current (unless a later record is already current)."""
    check(channel, topic)
    at = at or utcnow()
    entry = ConsentRecord(patron_id=patron_id, channel=channel, topic=topic, granted=granted, recorded_at=at, source=source[:200], wording_version=wording_version)
    session.add(entry)
    current = session.get(CurrentConsent, (patron_id, channel, topic))
    if current is None:
        session.add(CurrentConsent(patron_id=patron_id, channel=channel, topic=topic, granted=granted, updated_at=at))
    elif current.updated_at <= at:
        current.granted, current.updated_at = granted, at
        session.add(current)
    return entry


def current(session: Session, patron_id: int) -> dict[tuple[str, str], bool]:
    """Current consent of one patron: (channel, topic) → granted; absent pairs are not consented."""
    rows = session.exec(select(CurrentConsent).where(CurrentConsent.patron_id == patron_id))
    return {(r.channel, r.topic): r.granted for r in rows}


def has_consent(session: Session, *, patron_id: int, channel: str, topic: str) -> bool:
    row = session.get(CurrentConsent, (patron_id, channel, topic))
    return bool(row and row.granted)


def history(session: Session, patron_id: int) -> list[ConsentRecord]:
    """Every consent record of one patron, newest first."""
    return list(session.exec(select(ConsentRecord).where(ConsentRecord.patron_id == patron_id).order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())))
