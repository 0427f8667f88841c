"""The benchmarks' PostgreSQL data sets: a SQLite demo library copied with COPY holds the same rows, its
scratch copy (a template copy) too, and new rows after the copy get new ids."""

from __future__ import annotations

import os

import pytest
from sqlmodel import select

from bench import postgres
from crmcore.db import Database, migrate
from crmcore.demo.library import generate
from crmcore.models import Patron, Tag
from tests.conftest import require_or_skip


@pytest.fixture
def server(monkeypatch):
    base = os.environ.get("CRM_TEST_DATABASE_URL")
    require_or_skip(bool(base), "PostgreSQL tests run when CRM_TEST_DATABASE_URL is set")
    monkeypatch.setenv(postgres.URL_VARIABLE, base)
    names = [f"liaison_test_bench_{os.getpid()}", f"liaison_test_bench_{os.getpid()}_copy"]
    yield names
    for name in names:
        postgres.drop(name)


def test_a_library_copied_into_postgresql_holds_the_same_rows(server, tmp_path):
    source = f"sqlite:///{tmp_path / 'library.db'}"
    migrate(source)
    generate(Database(source), patrons=300, seed=3)
    name, copy = server
    postgres.create(name)
    migrate(postgres.url_for(name))

    counts = postgres.load_from_sqlite(tmp_path / "library.db", postgres.url_for(name))

    expected = postgres.row_counts(source)
    assert counts == {t: n for t, n in expected.items() if t in counts}
    assert postgres.row_counts(postgres.url_for(name)) == expected
    assert expected["patron"] == 300 and expected["activity_event"] > 300
    db = Database(postgres.url_for(name))
    with db.read() as session:  # values as well as counts: dates, booleans, text
        sqlite_db = Database(source)
        with sqlite_db.read() as other:
            key = lambda p: (p.id, p.ils_id, p.registered_on, p.last_activity_on, p.history_opt_in, p.email)  # noqa: E731
            assert sorted(map(key, session.exec(select(Patron)))) == sorted(map(key, other.exec(select(Patron))))
        sqlite_db.dispose()
    with db.write() as session:  # the id sequences moved past the copied ids
        tag = Tag(name="added after the copy")
        session.add(tag)
        session.flush()
        assert tag.id > max(t.id for t in session.exec(select(Tag)) if t.name != "added after the copy")
    db.dispose()

    postgres.create(copy, template=name)
    assert postgres.row_counts(postgres.url_for(copy)) == postgres.row_counts(postgres.url_for(name))


def test_scratch_names_are_postgresql_names_of_this_checkout():
    name = postgres.scratch_name("b8-journeys.db")
    assert name.startswith("bench_") and name.endswith("_b8_journeys") and len(name) <= 63
    assert postgres.dataset_name(1_000_000, 1, "0016") == "liaison_bench_1000000_seed1_0016"
