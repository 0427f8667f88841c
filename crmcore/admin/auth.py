"""Staff accounts: argon2 password hashes, sign-in with lockout, account management.

There are no default credentials: the first admin's password comes from CRM_ADMIN_PASSWORD or is
generated once and shown to whoever started the app.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlmodel import Session, func, select

from crmcore import validation
from crmcore.admin import config
from crmcore.admin.permissions import Actor, Perm, Role, require
from crmcore.db import Database
from crmcore.models import StaffSession, StaffUser, utcnow
from crmcore.models.admin import new_epoch
from crmcore.privacy import audit
from crmcore.texts import phones

MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
WINDOW = timedelta(minutes=15)
CLIENT_LIMIT = 20  # failed sign-ins from one address within WINDOW
MIN_PASSWORD_LENGTH = 10
SIGN_IN_FAILED = (
    "Sign-in failed: wrong username or password. "
    f"After {MAX_FAILED_ATTEMPTS} failed attempts an account is locked for {int(LOCKOUT.total_seconds() // 60)} minutes."
)

_hasher = PasswordHasher()
# Verified against when the username is unknown, so a wrong name costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

# Stands for the operator at the command line (`python -m crmcore user …`), who owns the machine.
CLI_ACTOR = Actor(id=None, username="cli", role=Role.ADMIN)


TOO_MANY = f"Too many failed sign-ins from this computer: wait {int(WINDOW.total_seconds() // 60)} minutes and try again."


class SignInError(Exception):
    """Sign-in refused; the message never says whether the account exists."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")


def actor_for(user: StaffUser) -> Actor:
    return Actor(id=user.id, username=user.username, role=Role(user.role))


def _find(session: Session, username: str) -> StaffUser | None:
    return session.exec(select(StaffUser).where(StaffUser.username == username.strip().lower())).first()


class _Throttle:
    """Failed sign-ins remembered in this process for WINDOW: past `limit` for a key, further attempts are
    refused at once, without the argon2 work (so a flood costs the server nothing and writers never wait)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > WINDOW.total_seconds():
            times.popleft()
        return times

    def blocked(self, key: str, limit: int) -> bool:
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= limit

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 50_000:  # a flood of made-up names: forget the quiet ones
                self._failures = {k: v for k, v in self._failures.items() if v and now - v[-1] < WINDOW.total_seconds()}
            for key in keys:
                self._recent(key, now).append(now)


_throttle = _Throttle()


def sign_in(db: Database, *, username: str, password: str, client: str | None = None) -> Actor:
    """The actor for these credentials, or SignInError once the failure is counted and audited.

    `client` (the browser's address) is throttled: after CLIENT_LIMIT failures within WINDOW it is refused
    at once. The password is checked outside any transaction: argon2's work never holds the write lock."""
    name = username.strip().lower()[:80]
    client_key = f"{db.url}|client|{client}" if client else None
    if client_key and _throttle.blocked(client_key, CLIENT_LIMIT):
        raise SignInError(TOO_MANY)
    with db.read() as session:
        user = _find(session, name)
    keys = [k for k in (client_key, f"{db.url}|name|{name}" if user is None else None) if k]
    if user is None:
        if not _throttle.blocked(keys[-1], MAX_FAILED_ATTEMPTS):  # an unknown name costs what a wrong password does
            _verify(_DUMMY_HASH, password)
        _throttle.failed(*keys)
        with db.write() as session:  # what was typed is not kept: it may be a password typed in the wrong box
            audit.record(session, actor=None, action="login.failed", detail={"reason": "unknown username"})
        raise SignInError(SIGN_IN_FAILED)
    locked = user.locked_until is not None and user.locked_until > utcnow()
    ok = not locked and _verify(user.password_hash, password)
    with db.write() as session:
        actor = _record_attempt(session, user.id, ok=ok, locked=locked, password=password, checked=user.password_hash)
    if actor is None:
        _throttle.failed(*keys)
        raise SignInError(SIGN_IN_FAILED)
    return actor


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _record_attempt(session: Session, user_id: int, *, ok: bool, locked: bool, password: str, checked: str) -> Actor | None:
    """Count and audit a checked attempt; the actor when it succeeded on an active account whose password is
    still the one checked (`checked`, its hash: a reset meanwhile wins)."""
    user = session.get(StaffUser, user_id)
    now = utcnow()
    if user is None:
        return None
    ok = ok and user.password_hash == checked
    if not ok or not user.is_active:
        if not ok and not locked:
            user.failed_attempts += 1
            if user.failed_attempts >= MAX_FAILED_ATTEMPTS:
                user.locked_until, user.failed_attempts = now + LOCKOUT, 0
        session.add(user)
        reason = "locked" if locked else "disabled" if not user.is_active else "password"
        audit.record(session, actor=None, action="login.failed", entity="staff_user", entity_id=user.id, detail={"username": user.username, "reason": reason})
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_attempts, user.locked_until, user.last_login_at = 0, None, now
    session.add(user)
    actor = actor_for(user)
    audit.record(session, actor=actor, action="login", entity="staff_user", entity_id=user.id)
    return actor


def create_user(
    session: Session, *, actor: Actor, username: str, password: str, role: Role | str, display_name: str | None = None, email: str | None = None
) -> StaffUser:
    require(actor, Perm.MANAGE_STAFF)
    username = username.strip().lower()
    if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise ValueError("A username is letters, digits, dots, dashes or underscores.")
    if _find(session, username) is not None:
        raise ValueError(f"A staff account named {username!r} already exists.")
    try:
        role = Role(role)
    except ValueError:
        raise ValueError(f"Unknown role {role!r}; roles are {', '.join(Role)}.") from None
    check_password_strength(password)
    user = StaffUser(username=username, role=role, password_hash=hash_password(password), display_name=display_name, email=email)
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="staff.create", entity="staff_user", entity_id=user.id, detail={"username": username, "role": role})
    return user


def _get_user(session: Session, username: str) -> StaffUser:
    user = _find(session, username)
    if user is None:
        raise ValueError(f"No staff account named {username!r}.")
    return user


def set_password(session: Session, *, actor: Actor, username: str, password: str) -> None:
    """Reset a password (admin), or change one's own."""
    if actor.username != username.strip().lower():
        require(actor, Perm.MANAGE_STAFF)
    check_password_strength(password)
    user = _get_user(session, username)
    user.password_hash, user.failed_attempts, user.locked_until = hash_password(password), 0, None
    user.session_epoch = new_epoch()  # signed out everywhere, this browser too
    session.add(user)
    audit.record(session, actor=actor, action="staff.password", entity="staff_user", entity_id=user.id)


WRONG_CURRENT = "The current password is not right; nothing was changed."


def change_own_password(db: Database, *, actor: Actor, current_password: str, new_password: str, repeated: str, session_id: int | None = None) -> None:
    """A signed-in staff member changes their own password: the current one, the new one twice.

    argon2's work happens outside any transaction. Every other session of the account ends; `session_id`
    (the one making the change) stays signed in. Wrong current passwords count towards the lockout."""
    if actor.id is None:
        raise ValueError("Only a signed-in staff account has a password to change.")
    if new_password != repeated:
        raise ValueError("The new password and its repetition differ; nothing was changed.")
    check_password_strength(new_password)
    if new_password == current_password:
        raise ValueError("The new password is the current one: choose a different one.")
    with db.read() as session:
        user = session.get(StaffUser, actor.id)
    if user is None or not user.is_active:
        raise LookupError("This staff account no longer exists or is disabled.")
    if user.locked_until is not None and user.locked_until > utcnow():
        raise ValueError(SIGN_IN_FAILED)
    ok = _verify(user.password_hash, current_password)
    fresh = hash_password(new_password) if ok else None
    with db.write() as session:
        row = session.get(StaffUser, actor.id)
        if row is None or row.password_hash != user.password_hash:  # changed meanwhile (an admin's reset): that wins
            raise ValueError("The password was changed meanwhile; sign in again with the new one.")
        if not ok:
            row.failed_attempts += 1
            if row.failed_attempts >= MAX_FAILED_ATTEMPTS:
                row.locked_until, row.failed_attempts = utcnow() + LOCKOUT, 0
            session.add(row)
            audit.record(session, actor=actor, action="staff.password_refused", entity="staff_user", entity_id=row.id, detail={"reason": "current password"})
        else:
            old_epoch = row.session_epoch
            row.password_hash, row.failed_attempts, row.locked_until = fresh, 0, None
            row.session_epoch = new_epoch()  # every session of the account ends…
            session.add(row)
            if session_id is not None:  # …but the one making the change
                session.execute(update(StaffSession)
                    .where(StaffSession.id == session_id, StaffSession.user_id == row.id, StaffSession.epoch == old_epoch, StaffSession.ended_at.is_(None))
                    .values(epoch=row.session_epoch))
            audit.record(session, actor=actor, action="staff.password", entity="staff_user", entity_id=row.id, detail={"own": True})
    if not ok:
        raise ValueError(WRONG_CURRENT)


def own_phone(session: Session, *, actor: Actor) -> str | None:
    """The signed-in staff member's own phone number (E.164), where their test texts go; None when not set."""
    user = session.get(StaffUser, actor.id) if actor.id is not None else None
    return user.phone if user is not None else None


def set_own_phone(session: Session, *, actor: Actor, phone: str) -> str | None:
    """A signed-in staff member sets (or, blank, clears) their own phone number for test texts, in E.164 with the
    library's default region; ValueError naming the field for a number that cannot be normalised."""
    user = session.get(StaffUser, actor.id) if actor.id is not None else None
    if user is None or not user.is_active:
        raise LookupError("Only a signed-in staff account has a phone number to set.")
    user.phone = validation.phone(phone, field="Your phone number", region=phones.region(session))
    session.add(user)
    audit.record(session, actor=actor, action="staff.phone", entity="staff_user", entity_id=user.id, detail={"set": user.phone is not None})
    return user.phone


def set_active(session: Session, *, actor: Actor, username: str, active: bool) -> None:
    require(actor, Perm.MANAGE_STAFF)
    user = _get_user(session, username)
    if not active and user.role == Role.ADMIN and _active_admins(session) <= 1 and user.is_active:
        raise ValueError("The last active admin cannot be disabled.")
    user.is_active = active
    user.session_epoch = new_epoch()
    session.add(user)
    audit.record(session, actor=actor, action="staff.enable" if active else "staff.disable", entity="staff_user", entity_id=user.id)


def set_role(session: Session, *, actor: Actor, username: str, role: Role | str) -> None:
    require(actor, Perm.MANAGE_STAFF)
    user = _get_user(session, username)
    role = Role(role)
    if user.role == Role.ADMIN and role != Role.ADMIN and _active_admins(session) <= 1:
        raise ValueError("The last active admin cannot lose the admin role.")
    old, user.role = user.role, role
    user.session_epoch = new_epoch()
    session.add(user)
    audit.record(session, actor=actor, action="staff.role", entity="staff_user", entity_id=user.id, detail={"old": old, "new": role})


def _active_admins(session: Session) -> int:
    return session.exec(select(func.count()).select_from(StaffUser).where(StaffUser.role == Role.ADMIN, StaffUser.is_active)).one()


def list_users(session: Session, *, actor: Actor) -> list[StaffUser]:
    require(actor, Perm.MANAGE_STAFF)
    return list(session.exec(select(StaffUser).order_by(StaffUser.username)))


def ensure_admin(session: Session) -> str | None:
    """On first start, create the `admin` account. Returns a generated password to show once, else None."""
    if session.exec(select(func.count()).select_from(StaffUser)).one():
        return None
    password = config.get("CRM_ADMIN_PASSWORD")
    generated = password is None
    if generated:
        password = secrets.token_urlsafe(12)
    create_user(session, actor=CLI_ACTOR, username="admin", password=password, role=Role.ADMIN, display_name="Administrator")
    return password if generated else None
