"""Fixtures: a real database per test on every backend, staff of every role, the app under AppTest.

`db` runs each test on a fresh SQLite file and again on PostgreSQL when CRM_TEST_DATABASE_URL is set
(a database of its own per test session, so parallel runs do not meet). In CI (CI=true) a missing
PostgreSQL is a failure, not a skip.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from crmcore.admin import sessions
from crmcore.admin.permissions import Actor, Role
from crmcore.db import Database, migrate
from crmcore.models import StaffUser

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
PASSWORD = "correct-horse-battery"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(pytest.mark.timeout(900))


@pytest.fixture(autouse=True)
def _backups_in_tmp(tmp_path, monkeypatch):
    """The worker's daily backup job must never write into the repository's data/backups during tests."""
    monkeypatch.setenv("CRM_BACKUP_DIR", str(tmp_path / "backups"))


def require_or_skip(condition: bool, reason: str) -> None:
    """Skip a suite whose backend or browser is missing; in CI that is a failure instead."""
    if not condition:
        if IN_CI:
            pytest.fail(f"{reason} (in CI this suite must run)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url():
    base = os.environ.get("CRM_TEST_DATABASE_URL")
    require_or_skip(bool(base), "PostgreSQL tests run when CRM_TEST_DATABASE_URL is set")
    yield from pg_database(base, f"liaison_test_{os.getpid()}")


def pg_database(base: str, name: str):
    """A migrated PostgreSQL database `name` on the server of `base` (yields its URL), dropped afterwards."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _truncate_all(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        _refill_vocabulary(conn)
    engine.dispose()


def _refill_vocabulary(conn) -> None:
    """The item categories migration 0006 pre-fills, as in a freshly migrated database (TRUNCATE emptied them)."""
    path = Path(__file__).resolve().parent.parent / "crmcore" / "migrations" / "versions" / "0006_real_exports.py"
    spec = importlib.util.spec_from_file_location("migration_0006", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    terms = [(n, "material") for n in module.MATERIAL_TYPES] + [(n, "genre") for n in module.GENRES]
    conn.execute(text('INSERT INTO category_term (name, "group", created_at) VALUES (:name, :group, now())'), [{"name": n, "group": g} for n, g in terms])


def fresh_sqlite(template: Path, directory: Path) -> Database:
    path = directory / "crm.db"
    shutil.copy(template, path)
    return Database(f"sqlite:///{path}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path, sqlite_template):
    """A migrated, empty database: a SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        database = fresh_sqlite(sqlite_template, tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        _truncate_all(url)
        database = Database(url)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(tmp_path, sqlite_template):
    """For what only SQLite has (file integrity, online backup, kill -9 of a writer)."""
    database = fresh_sqlite(sqlite_template, tmp_path)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def password_hash() -> str:
    from crmcore.admin.auth import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def staff(db, password_hash) -> dict[str, Actor]:
    """One active staff member per role, named after the role, all with PASSWORD."""
    actors = {}
    with db.write() as session:
        for role in Role:
            user = StaffUser(username=role.value, role=role.value, password_hash=password_hash, display_name=f"{role.value.title()} Staff", email=f"{role.value}@library.test")
            session.add(user)
            session.flush()
            actors[role.value] = Actor(id=user.id, username=user.username, role=role)
    return actors


@pytest.fixture
def demo(db, staff) -> dict[str, int]:
    """A small demo library (300 patrons, two years of activity, consent, outreach) in `db`; the row counts."""
    from crmcore.demo.library import generate

    return generate(db, patrons=300, seed=7)


def _navigation_only_pages_manager():
    """AppTest (1.67) recomputes `uses_pages_directory` before each run and finds our `pages/` folder,
    so reruns take the legacy v1 path and skip app.py (the sign-in gate and the sidebar). The app uses
    st.navigation, where that folder is never auto-discovered: tell AppTest so."""
    from streamlit.runtime.pages_manager import PagesManager

    class NavigationOnly(PagesManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    return NavigationOnly


@pytest.fixture
def app(db, staff, monkeypatch):
    """Make an AppTest of the whole app on `db`, signed in as `role` (or not), on `page`."""
    import streamlit.testing.v1.app_test as app_test
    from streamlit.testing.v1 import AppTest

    import ui

    monkeypatch.setattr(app_test, "PagesManager", _navigation_only_pages_manager())
    monkeypatch.setenv("DATABASE_URL", db.url)
    for cached in ui.AFTER_WRITE.values():  # the pages' shared read models: on PostgreSQL each test's database has the same URL
        cached.clear()

    def make(role: str | None = None, page: str | None = None, query: dict | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        if role is not None:
            with db.write() as s:
                at.session_state["staff_session"] = sessions.start(s, actor=staff[role]).session_id
        if page is not None:
            at.switch_page(page)
        for key, value in (query or {}).items():
            at.query_params[key] = value
        return at

    return make


def take_download(at, db):
    """The file behind the one-use link a page just offered (crmcore.privacy.downloads), taken as /downloads/… would."""
    from crmcore.privacy import downloads

    url = at.get("link_button")[-1].proto.url
    assert url.startswith("/downloads/"), url
    with db.write() as s:
        return downloads.take(s, token=url.rpartition("/")[2])
