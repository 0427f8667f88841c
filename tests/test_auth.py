from datetime import timedelta

import pytest
from sqlmodel import select

from crmcore.admin import auth
from crmcore.admin.permissions import Role
from crmcore.models import AuditLog, StaffUser, utcnow
from tests.conftest import PASSWORD


def test_sign_in_with_the_right_password_returns_the_actor_and_is_audited(db, staff):
    actor = auth.sign_in(db, username="Manager ", password=PASSWORD)
    assert actor.role == Role.MANAGER and actor.id == staff["manager"].id
    with db.read() as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "login")).one().actor_id == actor.id


@pytest.mark.parametrize("username", ["manager", "nobody-by-this-name"])
def test_wrong_password_and_unknown_user_get_the_same_message(db, staff, username):
    with pytest.raises(auth.SignInError) as err:
        auth.sign_in(db, username=username, password="wrong password")
    assert str(err.value) == auth.SIGN_IN_FAILED
    assert username not in str(err.value)
    with db.read() as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "login.failed")).one()


def test_five_failures_lock_the_account_for_fifteen_minutes(db, staff):
    for _ in range(auth.MAX_FAILED_ATTEMPTS):
        with pytest.raises(auth.SignInError):
            auth.sign_in(db, username="outreach", password="wrong password")
    # Locked: even the right password is refused now…
    with pytest.raises(auth.SignInError):
        auth.sign_in(db, username="outreach", password=PASSWORD)
    with db.read() as s:
        user = s.exec(select(StaffUser).where(StaffUser.username == "outreach")).one()
    assert user.locked_until - utcnow() > timedelta(minutes=14)
    # …and accepted once the lock has passed.
    with db.write() as s:
        user = s.get(StaffUser, user.id)
        user.locked_until = utcnow() - timedelta(seconds=1)
        s.add(user)
    assert auth.sign_in(db, username="outreach", password=PASSWORD).username == "outreach"


def test_a_disabled_account_cannot_sign_in(db, staff):
    with db.write() as s:
        auth.set_active(s, actor=staff["admin"], username="viewer", active=False)
    with pytest.raises(auth.SignInError):
        auth.sign_in(db, username="viewer", password=PASSWORD)


def test_passwords_are_argon2_hashes_and_short_ones_are_refused(db, staff):
    with db.write() as s:
        user = auth.create_user(s, actor=staff["admin"], username="new.person", password="a-long-enough-one", role="outreach")
    assert user.password_hash.startswith("$argon2") and "a-long-enough-one" not in user.password_hash
    with pytest.raises(ValueError, match="at least 10"), db.write() as s:
        auth.create_user(s, actor=staff["admin"], username="short", password="short", role="viewer")


def test_duplicate_username_and_unknown_role_are_refused(db, staff):
    with pytest.raises(ValueError, match="already exists"), db.write() as s:
        auth.create_user(s, actor=staff["admin"], username="MANAGER", password=PASSWORD, role="viewer")
    with pytest.raises(ValueError, match="Unknown role"), db.write() as s:
        auth.create_user(s, actor=staff["admin"], username="someone", password=PASSWORD, role="superuser")


def test_the_last_admin_cannot_be_disabled_or_demoted(db, staff):
    with pytest.raises(ValueError, match="last active admin"), db.write() as s:
        auth.set_active(s, actor=staff["admin"], username="admin", active=False)
    with pytest.raises(ValueError, match="last active admin"), db.write() as s:
        auth.set_role(s, actor=staff["admin"], username="admin", role="viewer")


def test_first_start_creates_admin_with_generated_password_once(db, monkeypatch):
    monkeypatch.delenv("CRM_ADMIN_PASSWORD", raising=False)
    with db.write() as s:
        password = auth.ensure_admin(s)
    assert password and len(password) >= 12
    with db.write() as s:
        assert auth.ensure_admin(s) is None
    assert auth.sign_in(db, username="admin", password=password).role == Role.ADMIN


def test_first_admin_password_can_come_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("CRM_ADMIN_PASSWORD", "from-the-environment")
    with db.write() as s:
        assert auth.ensure_admin(s) is None
    assert auth.sign_in(db, username="admin", password="from-the-environment").role == Role.ADMIN


def test_a_password_typed_into_the_username_box_is_not_kept_in_the_audit_log(db, staff):
    with pytest.raises(auth.SignInError):
        auth.sign_in(db, username="Tr0ub4dor&3-secret", password="")
    with db.read() as s:
        entries = s.exec(select(AuditLog).where(AuditLog.action == "login.failed")).all()
    assert len(entries) == 1 and "Tr0ub4dor" not in str(entries[0].detail).lower() + str(entries[0].entity_id)


def test_failed_sign_ins_from_one_client_are_refused_at_once_past_the_limit(db, staff):
    client = f"198.51.100.{db.url.__hash__() % 250}"
    for n in range(auth.CLIENT_LIMIT):
        with pytest.raises(auth.SignInError, match="wrong username or password"):
            auth.sign_in(db, username=f"guess-{n}", password="guess", client=client)
    with pytest.raises(auth.SignInError, match="Too many failed sign-ins"):
        auth.sign_in(db, username="manager", password=PASSWORD, client=client)
    assert auth.sign_in(db, username="manager", password=PASSWORD, client="203.0.113.9").username == "manager"
