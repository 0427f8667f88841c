"""Signed-in sessions, bound to the account and shared by the tabs of one browser.

Signing in starts a session (a `staff_session` row) for the account as it is then: its id, username and
session epoch. The session holds only while all three still match, the account is active, it was used
within the idle time (setting `session_idle_hours`) and nobody ended it: a password change, a disable, a
role change or a restore gives the account a new epoch, so its sessions end everywhere.

The browser learns the session through a one-use ticket: the sign-in page sends it to `/session/{ticket}`
(crmcore.web.routes), which sets an HttpOnly, SameSite=Strict cookie holding a signed random token and
sends the browser on to the page it asked for. A reload, a bookmark or a new tab then resumes the session
from that cookie. Tokens and tickets are stored only as hashes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, Signer
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from crmcore.admin import settings
from crmcore.admin.auth import actor_for
from crmcore.admin.permissions import Actor
from crmcore.campaigns.preference_tokens import secret_key
from crmcore.db import Database
from crmcore.models import StaffSession, StaffUser, utcnow
from crmcore.models.admin import new_epoch

COOKIE = "liaison_session"
TICKET_TTL = timedelta(seconds=60)
TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is written at most this often (idle expiry is in hours)
TICKET_REFUSED = "This sign-in link has been used or has expired. Sign in again."


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _signer() -> Signer:
    return Signer(secret_key(), salt="liaison.session")


def cookie_value(token: str) -> str:
    return _signer().sign(token).decode()


def token_from_cookie(value: str | None) -> str | None:
    """The token inside a session cookie, or None for a missing or forged one."""
    if not value:
        return None
    try:
        return _signer().unsign(value).decode()
    except BadSignature:
        return None


@dataclass(frozen=True)
class Started:
    session_id: int
    ticket: str  # one use, within a minute: exchanged at /session/{ticket} for the browser's cookie


def start(session: Session, *, actor: Actor) -> Started:
    """A new session for `actor`, who has just signed in (auth.sign_in)."""
    user = session.get(StaffUser, actor.id)
    if user is None or not user.is_active:
        raise LookupError("This staff account no longer exists or is disabled.")
    ticket = secrets.token_urlsafe(24)
    row = StaffSession(user_id=user.id, username=user.username, epoch=user.session_epoch, ticket_hash=_hash(ticket))
    session.add(row)
    session.flush()
    return Started(session_id=row.id, ticket=ticket)


def take_ticket(session: Session, *, ticket: str) -> str:
    """Exchange a fresh ticket for the session's cookie token (a new one; the ticket is spent)."""
    token = secrets.token_urlsafe(32)
    taken = session.execute(  # one statement: two requests with the same ticket cannot both win
        update(StaffSession)
        .where(StaffSession.ticket_hash == _hash(ticket), StaffSession.ended_at.is_(None), StaffSession.started_at >= utcnow() - TICKET_TTL)
        .values(ticket_hash=None, token_hash=_hash(token))
    )
    if taken.rowcount != 1:
        raise ValueError(TICKET_REFUSED)
    return token


def resume(session: Session, *, token: str) -> int | None:
    """The session a cookie's token belongs to, if it is still open (current() checks the rest)."""
    row = session.exec(select(StaffSession).where(StaffSession.token_hash == _hash(token))).first()
    return None if row is None or row.ended_at is not None else row.id


def _holds(session: Session, row: StaffSession | None) -> Actor | None:
    if row is None or row.ended_at is not None:
        return None
    idle = timedelta(hours=settings.get(session, "session_idle_hours"))
    if utcnow() - row.last_seen_at > idle:
        return None
    user = session.get(StaffUser, row.user_id)
    if user is None or not user.is_active or user.username != row.username or user.session_epoch != row.epoch:
        return None
    return actor_for(user)


def current(db: Database, *, session_id: int) -> Actor | None:
    """The staff member of an open session, or None once it has ended, idled out or its account changed.

    Marks the session as used (at most every few minutes); if the database is busy that waits for the next time."""
    with db.read() as session:
        row = session.get(StaffSession, session_id)
        actor = _holds(session, row)
        stale = actor is not None and utcnow() - row.last_seen_at > TOUCH_EVERY
    if stale:
        try:
            with db.write() as session:
                session.execute(update(StaffSession).where(StaffSession.id == session_id).values(last_seen_at=utcnow()))
        except OperationalError:
            pass  # busy: the session stays usable; it is marked next time
    return actor


def end(session: Session, *, session_id: int) -> None:
    """Sign out: the session ends in every tab that shares it."""
    session.execute(update(StaffSession).where(StaffSession.id == session_id, StaffSession.ended_at.is_(None)).values(ended_at=utcnow()))


def end_everyone(session: Session) -> None:
    """After a restore: every account gets a new epoch and every session ends, whatever the file held."""
    for user in session.exec(select(StaffUser)):
        user.session_epoch = new_epoch()
        session.add(user)
    session.execute(update(StaffSession).where(StaffSession.ended_at.is_(None)).values(ended_at=utcnow()))
