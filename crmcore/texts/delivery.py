"""Delivery reports (Kannel calls the dlr-url given with each text: /sms/dlr): delivered or failed; a
permanent failure puts the number on the do-not-text list."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from crmcore.models import Message, Patron, utcnow
from crmcore.texts import do_not_text, phones

# Kannel's DLR types (%d): 1 delivered to the phone, 2 not delivered (final), 4 buffered, 8 taken by the
# SMSC, 16 refused by the SMSC.
DELIVERED, UNDELIVERED, BUFFERED, SMSC_TOOK, SMSC_REFUSED = 1, 2, 4, 8, 16
PERMANENT = (UNDELIVERED,)


def report(session: Session, *, message_id: int, kind: int) -> str:
    """Record one delivery report; what it did, in words (for the gateway's log)."""
    msg = session.get(Message, message_id)
    if msg is None:
        raise LookupError(f"There is no message {message_id}.")
    if kind in (BUFFERED, SMSC_TOOK):
        return "interim report: nothing to record"
    if kind not in (DELIVERED, UNDELIVERED, SMSC_REFUSED):
        raise ValueError(f"Delivery report: unknown type {kind!r}; Kannel sends 1, 2, 4, 8 or 16.")
    if msg.delivery == "delivered" and kind != DELIVERED:
        return "already delivered"  # a late failure report after the phone's receipt changes nothing
    msg.delivery, msg.delivery_at = ("delivered" if kind == DELIVERED else "failed"), utcnow()
    session.add(msg)
    if kind in PERMANENT and msg.patron_id:
        stored = session.scalar(select(Patron.phone).where(Patron.id == msg.patron_id))
        number = phones.normalise(stored, region=phones.region(session))
        if number:
            do_not_text.add(session, phone=number, reason="permanent delivery failure")
            return "failed: the number is on the do-not-text list"
    return msg.delivery
