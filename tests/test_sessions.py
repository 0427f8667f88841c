"""Sessions belong to accounts: the cookie set through the app's own route, and every way a session ends
(sign-out in any tab, idle time, a password, role or disable change, another account under the same id, a restore)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from crmcore.admin import auth, backup, restore, sessions
from crmcore.admin.permissions import Role
from crmcore.models import AuditLog, StaffSession, StaffUser, utcnow
from tests.conftest import PASSWORD
from tests.campaign_fixtures import _isolated_mail_config  # noqa: F401  (the test's own data folder)
from tests.web_server import web  # noqa: F401  (fixture)


def signed_in(db, actor) -> tuple[int, str]:
    """A session as the sign-in page starts it, and the cookie token its ticket is exchanged for."""
    with db.write() as s:
        started = sessions.start(s, actor=actor)
    with db.write() as s:
        return started.session_id, sessions.take_ticket(s, ticket=started.ticket)


def test_the_ticket_route_sets_an_httponly_strict_cookie_once_and_sends_the_browser_on(db, web, staff):
    with db.write() as s:
        started = sessions.start(s, actor=staff["outreach"])
    answer = httpx.get(f"{web}/session/{started.ticket}", params={"next": "/campaigns?campaign=3"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/campaigns?campaign=3"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{sessions.COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    token = sessions.token_from_cookie(answer.cookies[sessions.COOKIE])
    with db.read() as s:
        assert sessions.resume(s, token=token) == started.session_id
    again = httpx.get(f"{web}/session/{started.ticket}", follow_redirects=False)
    assert again.status_code == 410 and sessions.COOKIE not in again.headers.get("set-cookie", "")
    assert "used or has expired" in again.text


@pytest.mark.parametrize("asked", ["https://elsewhere.example/", "//elsewhere.example/x", "/\\elsewhere.example", ""])
def test_after_sign_in_the_browser_goes_only_to_a_page_of_this_app(db, web, staff, asked):
    with db.write() as s:
        started = sessions.start(s, actor=staff["viewer"])
    answer = httpx.get(f"{web}/session/{started.ticket}", params={"next": asked}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_a_ticket_works_within_a_minute_only_and_a_forged_cookie_is_nobody(db, staff):
    with db.write() as s:
        started = sessions.start(s, actor=staff["viewer"])
        s.execute(update(StaffSession).values(started_at=utcnow() - timedelta(seconds=61)))
    with pytest.raises(ValueError, match="expired"), db.write() as s:
        sessions.take_ticket(s, ticket=started.ticket)
    _, token = signed_in(db, staff["viewer"])
    assert sessions.token_from_cookie(sessions.cookie_value(token)) == token
    signed, signature = sessions.cookie_value(token).rsplit(".", 1)
    other = "A" if signature[0] != "A" else "B"  # a first character every bit of which counts (the last one's low bits do not)
    assert sessions.token_from_cookie(f"{signed}.{other}{signature[1:]}") is None
    assert sessions.token_from_cookie(token) is None  # unsigned


def test_signing_out_ends_the_session_for_every_tab_sharing_the_cookie(db, staff):
    session_id, token = signed_in(db, staff["manager"])
    assert sessions.current(db, session_id=session_id).role == Role.MANAGER
    with db.write() as s:
        sessions.end(s, session_id=session_id)
    assert sessions.current(db, session_id=session_id) is None
    with db.read() as s:
        assert sessions.resume(s, token=token) is None  # a new tab or a reload with the same cookie


@pytest.mark.parametrize("change", ["password", "role", "disable"])
def test_a_password_role_or_disable_change_ends_the_accounts_sessions(db, staff, change):
    session_id, _ = signed_in(db, staff["outreach"])
    other_id, _ = signed_in(db, staff["viewer"])
    with db.write() as s:
        if change == "password":
            auth.set_password(s, actor=staff["admin"], username="outreach", password="a new password 9")
        elif change == "role":
            auth.set_role(s, actor=staff["admin"], username="outreach", role="viewer")
        else:
            auth.set_active(s, actor=staff["admin"], username="outreach", active=False)
    assert sessions.current(db, session_id=session_id) is None
    assert sessions.current(db, session_id=other_id).username == "viewer"  # other accounts are untouched


def test_a_session_follows_the_account_not_its_id(db, staff):
    """Another account under the same id (as after a restore of an older file) is not the session's."""
    session_id, _ = signed_in(db, staff["viewer"])
    with db.write() as s:
        s.execute(update(StaffUser).where(StaffUser.id == staff["viewer"].id).values(username="someone.else", role="admin"))
    assert sessions.current(db, session_id=session_id) is None


def test_a_session_idle_longer_than_the_setting_ends_and_use_keeps_it_open(db, staff):
    session_id, _ = signed_in(db, staff["viewer"])
    with db.write() as s:
        s.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(hours=7, minutes=50)))
    assert sessions.current(db, session_id=session_id) is not None  # used now: marked as seen
    with db.read() as s:
        assert utcnow() - s.get(StaffSession, session_id).last_seen_at < timedelta(minutes=1)
    with db.write() as s:
        s.execute(update(StaffSession).values(last_seen_at=utcnow() - timedelta(hours=8, minutes=1)))
    assert sessions.current(db, session_id=session_id) is None


def test_a_restore_signs_everyone_out_even_sessions_the_file_holds(db, staff, tmp_path):
    kept_id, _ = signed_in(db, staff["viewer"])  # open in the file the backup takes
    path = backup.create_backup(db, actor=staff["admin"], path=tmp_path / "liaison-20260101-000000.db" if db.is_sqlite else None)
    admin_id, _ = signed_in(db, staff["admin"])
    restore.restore(db, actor=staff["admin"], path=path)
    assert sessions.current(db, session_id=kept_id) is None
    assert sessions.current(db, session_id=admin_id) is None


def test_a_ticket_link_followed_from_another_site_signs_nobody_in(db, web, staff):
    """An attacker's own ticket sent as a link would put the victim's browser in the attacker's session."""
    with db.write() as s:
        started = sessions.start(s, actor=staff["viewer"])
    answer = httpx.get(f"{web}/session/{started.ticket}", headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert answer.status_code == 403 and "set-cookie" not in answer.headers
    with pytest.raises(ValueError), db.write() as s:  # and the ticket is not spent either way: it was never taken
        sessions.take_ticket(s, ticket="not-" + started.ticket)


def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(db, staff):
    here, _ = signed_in(db, staff["outreach"])
    elsewhere, _ = signed_in(db, staff["outreach"])
    colleague, _ = signed_in(db, staff["viewer"])
    auth.change_own_password(db, actor=staff["outreach"], current_password=PASSWORD, new_password="a new long password", repeated="a new long password", session_id=here)
    assert sessions.current(db, session_id=here) == staff["outreach"]
    assert sessions.current(db, session_id=elsewhere) is None
    assert sessions.current(db, session_id=colleague) == staff["viewer"]
    assert auth.sign_in(db, username="outreach", password="a new long password") == staff["outreach"]
    with pytest.raises(auth.SignInError):
        auth.sign_in(db, username="outreach", password=PASSWORD)
    with db.read() as s:
        logged = s.execute(select(AuditLog.actor_id, AuditLog.detail).where(AuditLog.action == "staff.password")).all()
    assert logged == [(staff["outreach"].id, {"own": True})]


@pytest.mark.parametrize("current,new,again,message", [
    ("not my password", "a new long password", "a new long password", "current password is not right"),
    (PASSWORD, "a new long password", "a new long passw0rd", "its repetition differ"),
    (PASSWORD, "short", "short", "at least 10 characters"),
    (PASSWORD, PASSWORD, PASSWORD, "is the current one"),
])
def test_a_refused_password_change_changes_nothing_and_says_why(db, staff, current, new, again, message):
    here, _ = signed_in(db, staff["manager"])
    with db.read() as s:
        before = s.get(StaffUser, staff["manager"].id).password_hash
    with pytest.raises(ValueError, match=message):
        auth.change_own_password(db, actor=staff["manager"], current_password=current, new_password=new, repeated=again, session_id=here)
    with db.read() as s:
        assert s.get(StaffUser, staff["manager"].id).password_hash == before
    assert sessions.current(db, session_id=here) == staff["manager"]


def test_wrong_current_passwords_lock_the_account_like_failed_sign_ins(db, staff):
    for _ in range(auth.MAX_FAILED_ATTEMPTS):
        with pytest.raises(ValueError, match="not right"):
            auth.change_own_password(db, actor=staff["viewer"], current_password="guess guess guess", new_password="a new long password", repeated="a new long password")
    with pytest.raises(ValueError, match="Sign-in failed"):  # locked: even the right one waits
        auth.change_own_password(db, actor=staff["viewer"], current_password=PASSWORD, new_password="a new long password", repeated="a new long password")
    with pytest.raises(auth.SignInError):
        auth.sign_in(db, username="viewer", password=PASSWORD)
