"""The period: every month with data can be chosen, however long ago the data ends, and every figure "at"
a month is right for that month; the previous period always has the same length; the month still under
way and the months after the period are not drawn. Expected values come from pandas over the raw tables
(tests/test_kpis.py's definitions by hand)."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crmcore import kpis
from crmcore.kpis import figures as f
from crmcore.kpis.summaries import month_index, month_of
from tests.test_kpis import _raw, _states_by_hand

TODAY = date(2025, 6, 15)
ACTIVE = ("new_active", "regular", "occasional", "at_risk")


def _library(db, data_today: date, staff):
    """A demo library of 300 patrons whose data ends at `data_today`, its summaries built as of TODAY."""
    from crmcore.admin import auth, settings
    from crmcore.demo.library import generate

    with db.write() as s:  # the demo keeps raw events inside the retention window: here, all of its two years
        settings.put(s, actor=auth.CLI_ACTOR, key="retention_months", value=36)
    generate(db, patrons=300, seed=11, today=data_today)
    with db.write() as s:
        kpis.refresh_summaries(s, today=TODAY)
        options = kpis.filter_options(s, actor=staff["manager"])
    return options


@pytest.mark.parametrize("data_end", [date(2023, 6, 10), date(2018, 3, 20)], ids=["two years ago", "seven years ago"])
def test_figures_at_the_last_month_with_data_equal_pandas_however_long_ago_it_ends(db, staff, data_end):
    options = _library(db, data_end, staff)
    last = data_end.replace(day=1)
    assert options.last_data == last and options.months[0] == month_of(month_index(TODAY))
    patrons, events = _raw(db)
    first_event = events["month"].min().to_timestamp().date()
    assert options.months[-1] <= first_event and last in options.months  # every month with data is offered
    period = kpis.Filters(last, 12)
    for month in (last, month_of(month_index(last) - 7)):
        states = _states_by_hand(patrons, events, month)
        with db.read() as s:
            got = {k: v for k, v in f.lifecycle_counts(s, filters=period, month=month).items() if v}
        assert got == states.value_counts().to_dict(), month
    states = _states_by_hand(patrons, events, last)
    with db.read() as s:
        board = kpis.dashboard_data(s, filters=period, today=TODAY)
        zones = f.penetration_by_zone(s, filters=period, month=last)
        new = f.new_registrations(s, filters=period)
    with db.read() as s:
        counts = f.lifecycle_counts(s, filters=period, month=last)
    assert f.active_patrons(counts) == int(states.isin(ACTIVE).sum()) > 100 and f.lapsed_patrons(counts) == int((states == "lapsed").sum())
    cards = {c.key: c.value for c in board.cards}  # as shown: suppressed where a small cell could be recovered
    assert cards["registered"] == len(states) and cards["lapsed"] == int((states == "lapsed").sum())
    assert cards["active"] in (f.active_patrons(counts), "<5")
    first = pd.Timestamp(period.first_month)
    end = pd.Timestamp(month_of(month_index(last) + 1))
    assert new == int(((patrons["registered_on"] >= first) & (patrons["registered_on"] < end)).sum())
    zone_of = patrons.set_index("id")["zone_id"].fillna(0).astype(int)
    active_by_zone = zone_of[states[states.isin(ACTIVE)].index].value_counts().to_dict()
    assert {int(z): int(n) for z, n in zip(zones["zone_id"], zones["active"]) if n} == active_by_zone
    lifecycle = board.charts["lifecycle"].frame.set_index("state")["at_end"]
    assert lifecycle["lapsed"] == cards["lapsed"] and lifecycle["regular"] == int((states == "regular").sum())


@pytest.fixture
def demo(db, staff):
    """Two years of activity ending TODAY."""
    _library(db, TODAY, staff)
    return db


@pytest.mark.parametrize("months", [3, 12, 18])
def test_the_change_is_against_as_many_months_just_before(demo, months):
    period = kpis.Filters(month_of(month_index(TODAY)), months)
    previous = period.previous()
    assert previous.months == months and month_index(previous.end_month) == month_index(period.first_month) - 1
    _patrons, events = _raw(demo)
    with demo.read() as s:
        board = kpis.dashboard_data(s, filters=period, today=TODAY)
        residents = f.population(s, filters=period)
        first_data = f.first_data_month(s)
    cards = {c.key: c for c in board.cards}

    def total(p: kpis.Filters, kind: str | None = None) -> int:
        part = events[(events["month"] >= pd.Period(p.first_month, "M")) & (events["month"] <= pd.Period(p.end_month, "M"))]
        return int(part["count"].sum() if kind is None else part.loc[part["kind"] == kind, "count"].sum())

    assert cards["per_capita"].value == round(total(period) / residents, 3)
    attendance = cards["program_attendance"]
    assert attendance.value in (total(period, "event_attendance"), "<5")
    if previous.first_month < first_data:  # 18 months back from June 2025 is before the two years of data
        assert months == 18
        for card in board.cards:
            assert (card.previous, card.change) == (None, "no earlier data"), card.key
        return
    assert cards["per_capita"].previous == round(total(previous) / residents, 3)
    assert cards["per_capita"].change == round(cards["per_capita"].value - cards["per_capita"].previous, 3)
    if isinstance(attendance.value, int) and isinstance(attendance.previous, int):
        assert attendance.previous == total(previous, "event_attendance")
        assert attendance.change == attendance.value - attendance.previous or attendance.change == "<5"
    assert cards["registered"].change not in (None, "no earlier data")


@pytest.mark.parametrize("months", [3, 12, 18])
def test_trends_follow_the_period_and_leave_out_the_month_under_way(demo, months):
    period = kpis.Filters(month_of(month_index(TODAY)), months)
    with demo.read() as s:
        board = kpis.dashboard_data(s, filters=period, today=TODAY)
    expected = [month_of(month_index(period.first_month) + i) for i in range(months - 1)]  # June 2025 is two weeks old
    assert list(board.charts["activity"].frame["month"]) == expected
    assert set(board.charts["registrations"].frame["month"]) <= set(expected)  # months without registrations have no row
    assert "left out of trends and retention" in board.charts["activity"].caption or "left out" in board.charts["registrations"].caption
    # Ending in an earlier month, the period's last month is complete and is drawn.
    earlier = kpis.Filters(date(2025, 3, 1), months)
    with demo.read() as s:
        board = kpis.dashboard_data(s, filters=earlier, today=TODAY)
    assert board.charts["activity"].frame["month"].max() == date(2025, 3, 1) and len(board.charts["activity"].frame) == months


def test_cohort_retention_leaves_months_not_yet_happened_empty(demo):
    period = kpis.Filters(month_of(month_index(TODAY)), 12)
    with demo.read() as s:
        board = kpis.dashboard_data(s, filters=period, today=TODAY)
    grid = board.charts["cohorts"].frame.set_index("cohort").drop(columns=["patrons"])
    last_complete = month_index(date(2025, 5, 1))
    assert len(grid) >= 6
    for cohort, row in grid.iterrows():
        for since, value in row.items():
            after = month_index(cohort) + int(since) > last_complete
            assert (value is np.nan or (isinstance(value, float) and np.isnan(value))) == after, (cohort, since, value)
    assert grid.loc[date(2025, 5, 1), "0"] not in (0, 0.0)  # the May cohort in May: drawn
    assert "Months after May 2025 are left empty" in board.charts["cohorts"].caption
