"""Retention deletes raw activity before the window, whole months at a time, and loses no answer:
the rollups and patron activity dates are the same before and after, and each run is audited."""

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from crmcore import cli, worker
from crmcore.admin import settings
from crmcore.admin.permissions import PermissionDenied
from crmcore.library import activity
from crmcore.models import ActivityEvent, ActivityMonthly, AuditLog, Branch, Patron
from crmcore.privacy import retention

TODAY = date(2026, 6, 15)


def seed_activity(db, *, patrons=30, days=3 * 365, seed=7, today=TODAY) -> int:
    rng = random.Random(seed)
    with db.write() as s:
        branch = Branch(code="MAIN", name="Main")
        s.add(branch)
        s.flush()
        rows = 0
        for n in range(patrons):
            p = Patron(ils_id=f"R{n}")
            s.add(p)
            s.flush()
            day = today - timedelta(days=days)
            while day < today:
                s.add(ActivityEvent(patron_id=p.id, occurred_on=day, kind=rng.choice(activity.KINDS), branch_id=rng.choice([branch.id, None]), count=rng.randint(1, 3)))
                rows += 1
                day += timedelta(days=rng.randint(5, 40))
    return rows


def snapshot(db) -> tuple:
    with db.read() as s:
        monthly = s.execute(select(ActivityMonthly.patron_id, ActivityMonthly.month, ActivityMonthly.kind, ActivityMonthly.branch_id, ActivityMonthly.count).order_by(ActivityMonthly.patron_id, ActivityMonthly.month, ActivityMonthly.kind, ActivityMonthly.branch_id)).all()
        dates = s.execute(select(Patron.id, Patron.first_activity_on, Patron.last_activity_on).order_by(Patron.id)).all()
    return [tuple(r) for r in monthly], [tuple(r) for r in dates]


def raw_dates(db) -> tuple[date, int]:
    with db.read() as s:
        return s.execute(select(func.min(ActivityEvent.occurred_on), func.count()).select_from(ActivityEvent)).one()


def test_retention_deletes_old_raw_events_and_keeps_every_rollup(db, staff):
    seed_activity(db)
    with db.write() as s:
        activity.rebuild_rollups(s)
        settings.put(s, actor=staff["admin"], key="retention_months", value=12)
    before = snapshot(db)
    with db.read() as s:
        old = s.execute(select(func.count()).where(ActivityEvent.occurred_on < date(2025, 6, 1))).scalar()
    result = retention.run(db, actor=staff["admin"], today=TODAY)
    assert result["cutoff"] == "2025-06-01" and result["events_deleted"] == old > 0
    assert result["rollups_rebuilt_from"] is None  # the rollups already held everything
    earliest, _ = raw_dates(db)
    assert earliest >= date(2025, 6, 1)
    assert snapshot(db) == before
    # A second run finds nothing more to do.
    assert retention.run(db, actor=staff["admin"], today=TODAY)["events_deleted"] == 0
    with db.read() as s:
        runs = s.execute(select(AuditLog).where(AuditLog.action == "retention.run").order_by(AuditLog.id)).scalars().all()
    assert [r.detail["events_deleted"] for r in runs] == [old, 0] and runs[0].actor_name == "admin"


def test_retention_rebuilds_missing_rollups_before_deleting(db):
    seed_activity(db, patrons=10)
    with db.write() as s:
        activity.rebuild_rollups(s)
    expected = snapshot(db)
    with db.write() as s:  # as if the rollups were never built for the older months
        s.execute(ActivityMonthly.__table__.delete().where(ActivityMonthly.month < date(2024, 3, 1)))
        s.execute(Patron.__table__.update().values(first_activity_on=None))
    result = retention.run(db, today=TODAY)
    assert result["rollups_rebuilt_from"] is not None and result["events_deleted"] > 0
    assert snapshot(db) == expected
    with db.read() as s:
        assert s.execute(select(AuditLog.actor_name).where(AuditLog.action == "retention.run")).scalar() == "system"


def test_retention_keeps_everything_inside_the_window(db):
    seed_activity(db, patrons=5, days=200)
    _, count = raw_dates(db)
    assert retention.run(db, today=TODAY)["events_deleted"] == 0
    assert raw_dates(db)[1] == count


@pytest.mark.parametrize("role", ["manager", "outreach", "viewer"])
def test_only_admins_run_retention(db, staff, role):
    with pytest.raises(PermissionDenied):
        retention.run(db, actor=staff[role], today=TODAY)


def test_cli_and_worker_run_retention(db, monkeypatch, capsys):
    seed_activity(db, patrons=5, today=date.today())
    with db.write() as s:
        activity.rebuild_rollups(s)
    before = snapshot(db)
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert cli.main(["retention"]) == 0
    assert "run with --now" in capsys.readouterr().out and raw_dates(db)[0] < retention.add_months(date.today(), -18)
    assert cli.main(["retention", "--now"]) == 0
    assert "raw activity events before" in capsys.readouterr().out
    assert raw_dates(db)[0] >= retention.add_months(date.today(), -18)
    assert snapshot(db) == before
    worker.run(db, jobs=[job for job in worker.JOBS if job.name == "retention"], once=True)
    with db.read() as s:
        assert s.execute(select(func.count()).select_from(AuditLog).where(AuditLog.action == "retention.run")).scalar() == 2


def _same(a, b) -> None:
    import dataclasses

    import pandas as pd

    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, pd.DataFrame):
            pd.testing.assert_frame_equal(x, y, obj=field.name)
        else:
            assert repr(x) == repr(y), field.name


def test_kpis_and_segment_counts_are_the_same_after_retention_on_demo_data(db, staff):
    from crmcore import kpis
    from crmcore.campaigns import segments
    from crmcore.demo.library import generate
    from crmcore.kpis import figures

    today = date.today()
    generate(db, patrons=150, seed=5, today=today)

    def answers():
        with db.write() as s:
            kpis.refresh_summaries(s, today=today)  # rebuilt from the rollups, as the worker does
        with db.write() as s:
            segments.ensure_presets(s)
        with db.read() as s:
            board = kpis.dashboard_data(s, filters=kpis.Filters(end_month=figures.latest_month(s) or today, months=12), today=today)
            counts = {seg.name: segments.count(s, actor=staff["admin"], rules=seg.rules, today=today) for seg in segments.list_segments(s, actor=staff["admin"])}
        return board, counts

    board_before, counts_before = answers()
    with db.write() as s:  # the demo keeps raw events inside the default window: a shorter one has some to delete
        settings.put(s, actor=staff["admin"], key="retention_months", value=12)
    result = retention.run(db, actor=staff["admin"], today=today)
    assert result["events_deleted"] > 0 and counts_before
    board_after, counts_after = answers()
    assert counts_after == counts_before
    _same(board_before, board_after)
