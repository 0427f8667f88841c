"""Faults around the write lock: a lock held elsewhere, and a flood of anonymous sign-ins while patrons save
their choices. Real SQLite files and a real PostgreSQL server; real threads and processes."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import ui
from crmcore.admin import auth
from crmcore.campaigns import preference_tokens, preferences
from crmcore.db import INTERACTIVE_WAIT_MS, Database
from tests.campaign_fixtures import _isolated_mail_config, add_patrons  # noqa: F401
from tests.conftest import PASSWORD
from tests.web_server import web  # noqa: F401  (fixture)


@pytest.fixture
def held_lock(db):
    """Another process's write transaction, open for the whole test (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
    row lock on the staff table that sign-in writes)."""
    if db.is_sqlite:
        con = sqlite3.connect(make_url(db.url).database, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO setting (key, value, updated_at) VALUES ('lock-holder', '1', '2026-01-01')")
        yield
        con.execute("ROLLBACK")
        con.close()
    else:
        import psycopg

        url = make_url(db.url).set(drivername="postgresql")
        con = psycopg.connect(url.render_as_string(hide_password=False))
        con.execute("LOCK TABLE audit_log IN EXCLUSIVE MODE")
        yield
        con.rollback()
        con.close()


def test_an_app_started_while_a_write_lock_is_held_elsewhere_answers(db, staff, held_lock, web):
    """The server (a fresh process: it opens the database under the held lock) serves its routes and pages."""
    assert httpx.get(f"{web}/healthz", timeout=10).status_code == 200
    assert httpx.get(f"{web}/", timeout=10).status_code == 200


def test_a_sign_in_that_cannot_get_the_write_lock_says_the_database_is_busy_within_five_seconds(app, staff, held_lock):
    at = app().run()  # opens the database for the first time in this process, under the held lock
    assert not at.exception and [b.label for b in at.button] == ["Sign in"]
    at.text_input[0].input("manager")
    at.text_input[1].input(PASSWORD)
    began = time.monotonic()
    at.button[0].click().run()
    waited = time.monotonic() - began
    assert not at.exception
    assert [e.value for e in at.error] == [ui.BUSY]
    assert waited < INTERACTIVE_WAIT_MS / 1000 + 3, waited
    assert ui.SESSION not in at.session_state


def test_a_flood_of_anonymous_sign_ins_never_makes_a_patrons_save_fail(db, staff):
    """Two anonymous clients looping over made-up names and passwords as fast as they can, while a patron saves
    choices over and over through the app's 5-second lock wait: the password checks never hold the write lock,
    and past the throttle's limit each client is refused at once."""
    with db.write() as s:
        patron = add_patrons(s, 1)[0]
    token = preference_tokens.make(patron)
    app_db = Database(db.url, wait_ms=INTERACTIVE_WAIT_MS)
    stop, timings, lock_errors, saves = threading.Event(), [], [], [0]

    def guess(n: int) -> None:
        i = 0
        while not stop.is_set():
            began = time.monotonic()
            try:
                auth.sign_in(app_db, username=f"nobody-{n}-{i}", password="guess", client=f"192.0.2.{n}")
            except auth.SignInError:
                pass
            except OperationalError as exc:
                lock_errors.append(f"sign-in: {exc}")
            timings.append(time.monotonic() - began)
            i += 1

    def save() -> None:
        granted = True
        while not stop.is_set():
            try:
                with app_db.write() as s:
                    preferences.save(s, token=token, choices={("email", "events"): granted}, shown={("email", "events"): not granted})
                saves[0] += 1
            except OperationalError as exc:
                lock_errors.append(f"save: {exc}")
            granted = not granted
            stop.wait(0.02)  # patrons, many of them, one save every 20 ms

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(2)] + [threading.Thread(target=save)]
    for t in threads:
        t.start()
    time.sleep(8)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    app_db.dispose()
    assert lock_errors == []
    assert saves[0] > 20 and len(timings) > 10
    p95 = statistics.quantiles(timings, n=20)[-1]
    assert p95 < 1.0, f"sign-in p95 {p95:.3f} s over {len(timings)} attempts"
