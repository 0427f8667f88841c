"""The form's defences besides its signed token: a honeypot field people never see, and a rate limit per
client address (kept only as a keyed hash, for an hour)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlmodel import Session

from crmcore.campaigns import preference_tokens
from crmcore.languages.catalogues import N_
from crmcore.models import SignupAttempt, utcnow

HONEYPOT = "website"  # a field hidden from people; a bot filling in every field fills it in
RATE_LIMIT, RATE_WINDOW = 5, timedelta(hours=1)  # posts per client address
TOO_MANY = N_("Too many sign-ups from this connection in the last hour. Please try again later.")


def client_hash(address: str | None) -> str:
    key = preference_tokens.secret_key().encode()
    return hmac.new(key, f"liaison.signup-client:{address or 'unknown'}".encode(), hashlib.sha256).hexdigest()


def admit(session: Session, *, client: str | None, now: datetime | None = None) -> None:
    """Count one post from `client`; ValueError (TOO_MANY) past the limit, and the post is not counted."""
    now = now or utcnow()
    hashed = client_hash(client)
    recent = session.scalar(select(func.count()).where(SignupAttempt.client_hash == hashed, SignupAttempt.at > now - RATE_WINDOW)) or 0
    if recent >= RATE_LIMIT:
        raise ValueError(TOO_MANY)
    session.add(SignupAttempt(client_hash=hashed, at=now))


def forget_old(session: Session, *, now: datetime | None = None) -> int:
    """Delete attempts older than the window; returns how many."""
    return session.execute(delete(SignupAttempt).where(SignupAttempt.at <= (now or utcnow()) - RATE_WINDOW)).rowcount or 0
