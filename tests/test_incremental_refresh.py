"""Incremental refresh: after a day's activity, an erasure or a survey answer, the rollups, the patrons' activity
dates and the dashboard summaries equal, row for row, what a full rebuild of a copy gives."""

from __future__ import annotations

import csv
import os
import random
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from crmcore import imports, kpis, worker
from crmcore.admin.permissions import Actor, Role
from crmcore.db import Database
from crmcore.demo.library import generate
from crmcore.kpis import incremental, summaries
from crmcore.library import activity
from crmcore.models import ActivityEvent, DashWindow, Patron, Setting, StaffUser
from crmcore.privacy import rights
from tests.conftest import _truncate_all, fresh_sqlite, pg_database

MAPPING = {"columns": {"patron": "card", "occurred_on": "date", "kind": "type", "branch": "branch", "count": "count"}}
TABLES = ("activity_monthly", "dash_state", "dash_flow", "dash_activity", "dash_registration", "dash_cohort", "dash_window")
PATRON_DATES = ("id", "first_activity_on", "last_activity_on", *(f"last_{k}_month" for k in activity.KINDS))
PATRONS = 400
TODAY = date.today()


@pytest.fixture(scope="session")
def pg_twin_url(pg_url):
    """A second PostgreSQL database beside the session's, for the copy that is rebuilt in full."""
    yield from pg_database(os.environ["CRM_TEST_DATABASE_URL"], f"liaison_test_{os.getpid()}_twin")


@pytest.fixture
def seeded(db, request, tmp_path, sqlite_template):
    """seeded(retention_months=None): two identical seeded libraries on the test's backend, (followed
    incrementally, rebuilt in full), each with an admin."""
    made = []

    def make(*, retention_months: int | None = None):
        if db.is_sqlite:
            (tmp_path / "twin").mkdir()
            other = fresh_sqlite(sqlite_template, tmp_path / "twin")
        else:
            url = request.getfixturevalue("pg_twin_url")
            _truncate_all(url)
            other = Database(url)
        made.append(other)
        pair = []
        for database in (db, other):
            if retention_months:  # raw events kept for longer: none of the demo's purged
                with database.write() as s:
                    s.add(Setting(key="retention_months", value=retention_months))
            generate(database, patrons=PATRONS, seed=5, today=TODAY)
            with database.write() as s:
                # Some patrons with a birth year and no imported age band: their band is worked out (erasure moves them).
                s.execute(text("UPDATE patron SET age_band = NULL WHERE id % 7 = 0 AND birth_year IS NOT NULL"))
                kpis.refresh_summaries(s)
                user = StaffUser(username="admin", role="admin", password_hash="x")
                s.add(user)
                s.flush()
                pair.append((database, Actor(id=user.id, username="admin", role=Role.ADMIN)))
        return pair

    yield make
    for other in made:
        other.dispose()


def snapshot(database: Database) -> dict[str, list[tuple]]:
    """Every rollup and summary table, and the patrons' activity dates, as sorted rows."""
    out = {}
    with database.read() as s:
        for table in TABLES:
            out[table] = sorted(tuple(str(v) for v in row) for row in s.execute(text(f"SELECT * FROM {table}")))
        out["patron"] = sorted(tuple(str(v) for v in row) for row in s.execute(text(f"SELECT {', '.join(PATRON_DATES)} FROM patron")))
    return out


def assert_same(followed: dict, rebuilt: dict) -> None:
    for table in followed:
        extra, missing = set(followed[table]) - set(rebuilt[table]), set(rebuilt[table]) - set(followed[table])
        assert not extra and not missing, f"{table}: incremental only {sorted(extra)[:5]}, full rebuild only {sorted(missing)[:5]}"


def cards(database: Database) -> list[str]:
    with database.read() as s:
        return list(s.execute(select(Patron.ils_id).where(Patron.erased_at.is_(None)).order_by(Patron.id)).scalars())


def day_file(path, rows: list[tuple]) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["card", "date", "type", "branch", "count"])
        writer.writerows(rows)
    return str(path)


def day_of_activity(rng: random.Random, patrons: list[str], day: date, *, share: float = 0.05, branches=("CEN", "RIV", "NGT")) -> list[tuple]:
    """One day's activity: about `share` of the patrons, one to three uses each."""
    active = rng.sample(patrons, max(1, int(len(patrons) * share)))
    return [(card, day.isoformat(), rng.choice(activity.KINDS), rng.choice(branches), rng.choice((1, 1, 2)))
            for card in active for _ in range(rng.randint(1, 3))]


class FullRebuilds:
    """Counts the full rebuilds of the summaries (the one place they are all written)."""

    def __init__(self, monkeypatch):
        self.count = 0
        store = summaries.Summaries.store

        def counting(summary, session):
            self.count += 1
            store(summary, session)

        monkeypatch.setattr(summaries.Summaries, "store", counting)


def import_both(twins, monkeypatch, path) -> tuple[dict, dict, int]:
    """Import a file into both libraries: the first follows incrementally, the second is rebuilt in full (the
    import before incremental refresh). Their snapshots, and how many full rebuilds the first one needed."""
    (followed, actor_a), (rebuilt, actor_b) = twins
    full = FullRebuilds(monkeypatch)
    imports.run_import(followed, actor=actor_a, kind="activity", path=path, mapping=MAPPING)
    fulls = full.count
    with monkeypatch.context() as m:
        m.setattr(incremental, "MAX_SHARE", 0.0)  # every change "too many patrons": the full rebuild
        imports.run_import(rebuilt, actor=actor_b, kind="activity", path=path, mapping=MAPPING)
    assert full.count > fulls, "the copy was rebuilt in full"
    return snapshot(followed), snapshot(rebuilt), fulls


def events_in_summaries(database: Database) -> int:
    with database.read() as s:
        return int(s.execute(text("SELECT coalesce(sum(events), 0) FROM dash_activity")).scalar())


def test_a_days_activity_is_followed_incrementally_and_equals_a_full_rebuild(seeded, tmp_path, monkeypatch):
    twins = seeded()
    (followed, _), _ = twins
    rows = day_of_activity(random.Random(1), cards(followed), TODAY)
    before = events_in_summaries(followed)
    a, b, fulls = import_both(twins, monkeypatch, day_file(tmp_path / "day.csv", rows))
    assert fulls == 0, "one day's activity needs no full rebuild"
    assert events_in_summaries(followed) == before + sum(r[4] for r in rows)
    assert_same(a, b)


def test_several_days_earlier_months_a_new_branch_erased_patrons_and_a_moved_window(seeded, tmp_path, monkeypatch):
    # Raw events kept for three years, so that day 4's activity, older than the first month summarised, lands
    # in months whose raw events were never purged (see the note in crmcore.library.activity).
    twins = seeded(retention_months=36)
    (followed, _), (rebuilt, _) = twins
    rng = random.Random(7)
    patrons = cards(followed)
    # Day 1: today. Day 2: yesterday, with activity dated five months back and at a branch nobody had heard of.
    days = [day_of_activity(rng, patrons, TODAY)]
    days.append(day_of_activity(rng, patrons, TODAY - timedelta(days=1)) + day_of_activity(rng, patrons, TODAY - timedelta(days=150), share=0.02, branches=("NEW",)))
    for number, rows in enumerate(days):
        a, b, fulls = import_both(twins, monkeypatch, day_file(tmp_path / f"day{number}.csv", rows))
        assert fulls == 0
        assert_same(a, b)
    # An erasure in each (a patron whose age band came from the birth year): followed at once in the first.
    with followed.read() as s:
        erased_id, erased_card = s.execute(select(Patron.id, Patron.ils_id).where(Patron.age_band.is_(None), Patron.birth_year.is_not(None), Patron.last_activity_on.is_not(None)).order_by(Patron.id)).first()
    for database, actor in twins:
        with database.write() as s:
            rights.erase(s, actor=actor, patron_id=erased_id)
    with rebuilt.write() as s:
        kpis.refresh_summaries(s)
    assert_same(snapshot(followed), snapshot(rebuilt))
    # Day 3: rows for the erased patron (refused) among the others.
    rows = day_of_activity(rng, [p for p in patrons if p != erased_card], TODAY) + [(erased_card, TODAY.isoformat(), "checkout", "CEN", 1)]
    a, b, fulls = import_both(twins, monkeypatch, day_file(tmp_path / "day3.csv", rows))
    assert fulls == 0
    assert_same(a, b)
    # Day 4: activity from before the first month summarised: every patron's months move, so a full rebuild.
    old = TODAY.replace(day=1) - timedelta(days=40 * 31)
    a, b, fulls = import_both(twins, monkeypatch, day_file(tmp_path / "day4.csv", day_of_activity(rng, patrons, old, share=0.02)))
    assert fulls == 1
    assert_same(a, b)


def test_a_moved_window_is_rebuilt_in_full_now_or_by_the_worker(seeded):
    twins = seeded()
    (followed, _), _ = twins
    last_month = TODAY.replace(day=1) - timedelta(days=1)
    with followed.write() as s:
        kpis.refresh_summaries(s, today=last_month)  # as the summaries were before this month began
        patron_id = s.execute(select(Patron.id).order_by(Patron.id)).scalar()
        s.add(ActivityEvent(patron_id=patron_id, occurred_on=TODAY, kind="visit", count=1))
        s.flush()
        activity.rebuild_rollups(s, since=TODAY.replace(day=1), patrons=[patron_id], rebuild_now=False)
        assert s.get(DashWindow, 1) is None, "marked for a full rebuild, not followed in last month's window"
    job = next(job for job in worker.JOBS if job.name == "dashboard summaries")
    assert job.run(followed) == "dashboard summaries rebuilt"
    assert incremental.catch_up(followed) is None  # up to date: nothing to do
    got = snapshot(followed)
    with followed.write() as s:
        kpis.refresh_summaries(s)
    assert_same(got, snapshot(followed))


def survey_events(database: Database) -> int:
    with database.read() as s:
        return int(s.execute(text("SELECT coalesce(sum(events), 0) FROM dash_activity WHERE kind = 'survey_response'")).scalar())


def test_a_survey_answer_and_an_erasure_are_in_the_summaries_at_once_as_a_full_rebuild_has_them(seeded):
    from tests.survey_records import add_survey, answer

    (library, actor), _ = seeded()
    with library.write() as s:
        survey_id = add_survey(s, actor)
        patron_id = s.execute(select(Patron.id).where(Patron.age_band.is_(None), Patron.birth_year.is_not(None)).order_by(Patron.id)).scalar()
    before = survey_events(library)
    with library.write() as s:
        answer(s, survey_id, patron_id, nps=9)
    assert survey_events(library) == before + 1  # the answer is a survey-response activity, counted now
    with library.write() as s:
        rights.erase(s, actor=actor, patron_id=patron_id)
    # Their age band came from the birth year, which erasure removes: the summaries count them without one.
    followed = snapshot(library)
    with library.write() as s:
        activity.rebuild_rollups(s)  # every month raw events cover, for everyone
    assert_same(followed, snapshot(library))
