"""Schema changes are migrations: the models and the migrations agree, and upgrades lose nothing."""

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, create_engine, select
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import crmcore.models  # noqa: F401
from crmcore.db import current_revision, head_revision, migrate
from tests.conftest import require_or_skip


def test_models_and_migrations_describe_the_same_schema(db):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), SQLModel.metadata)
    assert diff == [], "crmcore/models changed without a migration: add one under crmcore/migrations/versions/"


# Rows written at the first revision, one or more per table, in columns that revision had.
REVISION_0001_ROWS = {
    "branch": [{"id": 1, "code": "CEN", "name": "Central Library"}],
    "zone": [{"id": 1, "code": "48101", "name": "Downtown", "population": 52000}],
    "staff_user": [{"id": 1, "username": "ruth", "role": "manager", "password_hash": "x", "is_active": True, "failed_attempts": 0, "created_at": "2025-01-02 03:04:05"}],
    "patron": [
        {"id": 1, "ils_id": "21234000000001", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "zone_id": 1, "branch_id": 1,
         "history_opt_in": False, "last_activity_on": "2025-03-04", "created_at": "2025-01-02 03:04:05", "updated_at": "2025-01-02 03:04:05"},
        {"id": 2, "ils_id": "21234000000002", "first_name": "Alan", "last_name": "Turing", "history_opt_in": True,
         "created_at": "2025-01-02 03:04:05", "updated_at": "2025-01-02 03:04:05"},
    ],
    "activity_event": [{"id": 1, "patron_id": 1, "occurred_on": "2025-03-04", "kind": "checkout", "branch_id": 1, "count": 2}],
    "activity_monthly": [{"patron_id": 1, "month": "2025-03-01", "kind": "checkout", "branch_id": 1, "count": 2}],
    "consent_record": [{"id": 1, "patron_id": 1, "channel": "email", "topic": "events", "granted": True, "recorded_at": "2025-01-02 03:04:05", "source": "form"}],
    "current_consent": [{"patron_id": 1, "channel": "email", "topic": "events", "granted": True, "updated_at": "2025-01-02 03:04:05"}],
    "organization": [{"id": 1, "name": "Downtown PTA", "is_partner": True, "archived": False, "created_at": "2025-01-02 03:04:05", "updated_at": "2025-01-02 03:04:05"}],
    "contact": [{"id": 1, "last_name": "Okafor", "organization_id": 1, "archived": False, "created_at": "2025-01-02 03:04:05", "updated_at": "2025-01-02 03:04:05"}],
    "interaction": [{"id": 1, "occurred_at": "2025-02-03 10:00:00", "kind": "meeting", "staff_id": 1, "notes": "Met the PTA", "cards_issued": 3, "signups": 0,
                     "created_at": "2025-02-03 10:00:00", "updated_at": "2025-02-03 10:00:00"}],
    "interaction_organization": [{"interaction_id": 1, "organization_id": 1}],
    "audit_log": [{"id": 1, "at": "2025-01-02 03:04:05", "actor_id": 1, "actor_name": "ruth", "action": "patron.view", "entity": "patron", "entity_id": "1"}],
    "setting": [{"key": "small_cell_k", "value": "7", "updated_at": "2025-01-02 03:04:05"}],
}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path):
    """A database with no tables at all: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    base = os.environ.get("CRM_TEST_DATABASE_URL")
    require_or_skip(bool(base), "PostgreSQL tests run when CRM_TEST_DATABASE_URL is set")
    name = f"liaison_upgrade_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _read(engine, table: str, rows: list[dict]) -> list[tuple]:
    columns = list(rows[0])
    t = Table(table, MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        found = conn.execute(select(*(t.c[c] for c in columns))).all()
    return sorted(tuple(str(v) for v in row) for row in found)


def test_upgrading_a_first_revision_database_keeps_every_row(empty_url):
    migrate(empty_url, revision="0001")
    engine = create_engine(empty_url)
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:
        for table, rows in REVISION_0001_ROWS.items():
            t = Table(table, MetaData(), autoload_with=conn)
            for row in rows:
                conn.execute(t.insert().values({k: _typed(t.c[k], v) for k, v in row.items()}))
    before = {table: _read(engine, table, rows) for table, rows in REVISION_0001_ROWS.items()}
    engine.dispose()

    migrate(empty_url)
    engine = create_engine(empty_url)
    assert current_revision(engine) == head_revision()
    after = {table: _read(engine, table, rows) for table, rows in REVISION_0001_ROWS.items()}
    engine.dispose()
    assert after == before
    assert all(len(before[t]) == len(rows) for t, rows in REVISION_0001_ROWS.items())


def _typed(column, value):
    """Text fixtures as the Python values the column type expects."""
    from datetime import date, datetime, timezone

    kind = type(column.type).__name__.lower()
    if isinstance(value, str) and "date" in kind and "time" not in kind and len(value) == 10:
        return date.fromisoformat(value)
    if isinstance(value, str) and ("time" in kind or "timestamp" in kind):
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    return value
