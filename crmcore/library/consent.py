"""Consent: an append-only record per patron × channel × topic; the latest record is current.

`record` is the one way consent changes: it appends the record and keeps `current_consent` (what
segments and the sender read) in step, in the same transaction. No record means no consent.

Precedence, decided here and nowhere else (`applies`): every record says who decided — the patron
(preference page, one-click, mailto, a reply keyword, or staff writing down the patron's own request),
an import, or staff acting in bulk. A patron's own choice always wins: an import never changes a
consent the patron set (a grant or a withdrawal), and no staff action re-grants what the patron
withdrew (staff may still withdraw). Only the patron's own new choice lifts a withdrawal.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from crmcore.languages.catalogues import N_
from crmcore.models import ConsentRecord, CurrentConsent, utcnow

CHANNELS = ("email", "sms", "phone", "mail")
TOPICS = ("events", "new_materials", "newsletter", "fundraising", "services")
# What staff read for each topic (campaign topic, consent history, segment rules).
# Also what patrons read (the sign-up form, its confirmation), translated where shown.
TOPIC_LABELS = {"events": N_("events"), "new_materials": N_("new materials"), "newsletter": N_("newsletter"), "fundraising": N_("fundraising"),
                "services": N_("library services")}
WORDING_VERSION = "2026-01"
PATRON, IMPORT, STAFF = "patron", "import", "staff"
SOURCE_CLASSES = (PATRON, IMPORT, STAFF)
# How staff heard a patron's own request, for the record.
REQUEST_WAYS = ("in person", "phone", "email", "letter")


def applies(*, by: str, granted: bool, current_class: str | None, current_granted: bool | None) -> bool:
    """Whether a consent change decided by `by` may replace the current one (None: there is none)."""
    if by == PATRON or current_class is None:
        return True
    if current_class == PATRON:
        # The patron decided: an import changes nothing; staff may withdraw, never re-grant.
        return by == STAFF and (not granted or bool(current_granted))
    return True


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
    by: str = STAFF,
    recorded_by_id: int | None = None,
    wording_version: str | None = WORDING_VERSION,
    at: datetime | None = None,
) -> ConsentRecord | None:
    """Append a consent record and make it current (unless a later record is already current).

    None, and nothing written, when the patron's own choice stands against it (see `applies`)."""
    check(channel, topic)
    if by not in SOURCE_CLASSES:
        raise ValueError(f"Unknown consent source {by!r}; it is one of {', '.join(SOURCE_CLASSES)}.")
    at = at or utcnow()
    current = session.get(CurrentConsent, (patron_id, channel, topic))
    if current is not None and not applies(by=by, granted=granted, current_class=current.source_class, current_granted=current.granted):
        return None
    entry = ConsentRecord(
        patron_id=patron_id, channel=channel, topic=topic, granted=granted, recorded_at=at, source=source[:200], source_class=by,
        recorded_by_id=recorded_by_id, wording_version=wording_version,
    )
    session.add(entry)
    if current is None:
        session.add(CurrentConsent(patron_id=patron_id, channel=channel, topic=topic, granted=granted, updated_at=at, source_class=by))
    elif current.updated_at <= at:
        current.granted, current.updated_at, current.source_class = granted, at, by
        session.add(current)
    return entry


def patron_withdraws(session: Session, *, patron_id: int, channel: str, topic: str, source: str, wording_version: str | None = WORDING_VERSION) -> bool:
    """The patron's own "no" to channel × topic, recorded unless it is already their standing word: also when
    consent is already off because of an import or staff, so that no later import turns it back on. True if recorded."""
    current = session.get(CurrentConsent, (patron_id, channel, topic))
    if current is not None and current.source_class == PATRON and not current.granted:
        return False
    record(session, patron_id=patron_id, channel=channel, topic=topic, granted=False, source=source, by=PATRON, wording_version=wording_version)
    return True


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
