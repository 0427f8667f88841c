"""Texts patrons send in (Kannel's sms-service calls POST /sms/inbound): STOP and its synonyms withdraw every
text consent, START and UNSTOP grant back what STOP withdrew, HELP answers with the library's name and contact.
Every change is a consent record of source patron (`consent.record`), so it wins over any later import."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlmodel import Session

from crmcore.library import consent
from crmcore.models import ConsentRecord, CurrentConsent, InboundText, Patron
from crmcore.texts import phones, wording

STOP_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
START_WORDS = ("START", "UNSTOP")
HELP_WORDS = ("HELP", "INFO")
STOP_SOURCE, START_SOURCE = "text message STOP", "text message START"


def keyword(text: str) -> str:
    """stop | start | help | unknown: the first word, whatever its case and punctuation."""
    words = "".join(ch if ch.isalnum() else " " for ch in text.upper()).split()
    first = words[0] if words else ""
    return "stop" if first in STOP_WORDS else "start" if first in START_WORDS else "help" if first in HELP_WORDS else "unknown"


def _patrons_with(session: Session, *, phone: str, region: str) -> list[int]:
    """Patrons whose number, however it was stored, is this E.164 number."""
    rows = session.execute(select(Patron.id, Patron.phone).where(Patron.erased_at.is_(None), or_(Patron.phone == phone, Patron.phone.like(f"%{phones.suffix(phone)}")))).all()
    return [pid for pid, stored in rows if phones.normalise(stored, region=region) == phone]


def _stop(session: Session, patron_id: int) -> int:
    changed = 0
    for topic in consent.TOPICS:
        current = session.get(CurrentConsent, (patron_id, "sms", topic))
        if current is not None and current.granted:
            changed += consent.record(session, patron_id=patron_id, channel="sms", topic=topic, granted=False, source=STOP_SOURCE, by=consent.PATRON) is not None
        else:  # already off: the patron's own "no" now, so that no import turns it on
            changed += consent.patron_withdraws(session, patron_id=patron_id, channel="sms", topic=topic, source=f"{STOP_SOURCE} (was off)")
    return changed


def _start(session: Session, patron_id: int) -> int:
    changed = 0
    for topic in consent.TOPICS:
        last = session.scalars(
            select(ConsentRecord).where(ConsentRecord.patron_id == patron_id, ConsentRecord.channel == "sms", ConsentRecord.topic == topic)
            .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc()).limit(1)
        ).first()
        if last is not None and last.source == STOP_SOURCE and not last.granted:
            changed += consent.record(session, patron_id=patron_id, channel="sms", topic=topic, granted=True, source=START_SOURCE, by=consent.PATRON) is not None
    return changed


def receive(session: Session, *, sender: str, text: str) -> str:
    """Act on one inbound text from `sender`; the reply to send back ("" for none). Kept as a row (keyword and
    outcome, never the number or the words)."""
    region = phones.region(session)
    number = phones.normalise(sender, region=region)
    kind = keyword(text)
    patron_ids = _patrons_with(session, phone=number, region=region) if number and kind in ("stop", "start") else []
    reply = ""
    if kind == "stop":
        changed = sum(_stop(session, pid) for pid in patron_ids)
        outcome, reply = f"Text consent withdrawn for {len(patron_ids)} patron(s) ({changed} consent records).", wording.stop_reply(session)
    elif kind == "start":
        changed = sum(_start(session, pid) for pid in patron_ids)
        outcome, reply = f"Text consent granted back for {len(patron_ids)} patron(s) ({changed} consent records).", wording.start_reply(session)
    elif kind == "help":
        outcome, reply = "Answered with the library's name and contact.", wording.help_reply(session)
    else:
        outcome = "Not a keyword; nothing changed."
    session.add(InboundText(keyword=kind, outcome=outcome[:300]))
    return reply
