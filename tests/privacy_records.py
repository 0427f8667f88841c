"""A tiny patron inserted directly (no service call), for tests that need one to act on."""

from __future__ import annotations

from sqlmodel import Session

from crmcore.models import Patron


def patron_id(session: Session, ils_id: str = "PRIV-1") -> int:
    patron = Patron(ils_id=ils_id, first_name="Test", last_name="Patron", email="test.patron@example.org")
    session.add(patron)
    session.flush()
    return patron.id
