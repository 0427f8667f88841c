"""Each dashboard figure on a hand-built library whose expected numbers are worked out by hand below.

Seven patrons, two zones (1,000 and 500 residents), two branches; today is 2025-06-15 and the period is
the six months 2025-01 … 2025-06 (previous period 2024-07 … 2024-12).

| patron | registered | zone | branch | type  | age            | activity (month: kind × count)                   |
|--------|------------|------|--------|-------|----------------|--------------------------------------------------|
| p1     | 2020-01-10 | Z1   | B1     | adult | born 1990      | checkout ×1 every month 2024-07…2025-05, ×3 in 2025-06 |
| p2     | 2020-01-10 | Z1   | B1     | adult | band 65+       | 2025-02 checkout ×1                              |
| p3     | 2019-05-01 | Z2   | B2     | child | born 2015      | 2024-10 renewal ×2                               |
| p4     | 2018-03-03 | Z2   | B2     | adult | unknown        | 2023-12 checkout ×1                              |
| p5     | 2025-05-20 | Z1   | B2     | child | band 0-11      | 2025-06 event_attendance ×2                      |
| p6     | 2025-04-20 | Z1   | B1     | adult | born 1985      | none                                             |
| p7     | unknown    | –    | –      | –     | unknown        | 2025-03 visit ×1                                 |
"""

from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import delete

from crmcore import kpis
from crmcore.kpis import figures as f
from crmcore.library import activity
from crmcore.models import ActivityEvent, Branch, Interaction, Patron, Zone

TODAY = date(2025, 6, 15)
END = date(2025, 6, 1)
PERIOD = f.Filters(END, months=6)
ROOT = Path(__file__).resolve().parent.parent


def months(first: date, last: date):
    day = first
    while day <= last:
        yield day
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)


@pytest.fixture
def library(db):
    """The hand-built library above; returns ids by name."""
    with db.write() as s:
        z1, z2 = Zone(code="Z1", name="North", population=1000), Zone(code="Z2", name="South", population=500)
        b1, b2 = Branch(code="B1", name="Central"), Branch(code="B2", name="Riverside")
        s.add_all([z1, z2, b1, b2])
        s.flush()
        spec = {
            "p1": (date(2020, 1, 10), z1, b1, "adult", dict(birth_year=1990)),
            "p2": (date(2020, 1, 10), z1, b1, "adult", dict(age_band="65+")),
            "p3": (date(2019, 5, 1), z2, b2, "child", dict(birth_year=2015)),
            "p4": (date(2018, 3, 3), z2, b2, "adult", {}),
            "p5": (date(2025, 5, 20), z1, b2, "child", dict(age_band="0-11")),
            "p6": (date(2025, 4, 20), z1, b1, "adult", dict(birth_year=1985)),
            "p7": (None, None, None, None, {}),
        }
        patrons = {}
        for name, (registered, zone, branch, kind, extra) in spec.items():
            patron = Patron(ils_id=name, registered_on=registered, zone_id=zone and zone.id, branch_id=branch and branch.id, patron_type=kind, **extra)
            s.add(patron)
            s.flush()
            patrons[name] = patron.id
        events = [(patrons["p1"], m, "checkout", 3 if m == END else 1) for m in months(date(2024, 7, 1), END)]
        events += [
            (patrons["p2"], date(2025, 2, 1), "checkout", 1),
            (patrons["p3"], date(2024, 10, 1), "renewal", 2),
            (patrons["p4"], date(2023, 12, 1), "checkout", 1),
            (patrons["p5"], date(2025, 6, 1), "event_attendance", 2),
            (patrons["p7"], date(2025, 3, 1), "visit", 1),
        ]
        for patron_id, month, kind, count in events:
            s.add(ActivityEvent(patron_id=patron_id, occurred_on=month.replace(day=10), kind=kind, branch_id=b1.id, count=count))
        for when, kind, cards in (((2025, 3, 10), "event", 4), ((2025, 3, 20), "meeting", 0), ((2024, 11, 5), "event", 1)):
            s.add(Interaction(occurred_at=datetime(*when, 12, tzinfo=timezone.utc), kind=kind, cards_issued=cards))
        s.flush()
        activity.rebuild_rollups(s)
        kpis.refresh_summaries(s, today=TODAY)
    return {"db": db, **patrons, "Z1": z1.id, "Z2": z2.id, "B1": b1.id, "B2": b2.id}


def test_lifecycle_at_the_end_of_the_period(library):
    with library["db"].read() as s:
        counts = f.lifecycle_counts(s, filters=PERIOD, month=END)
    # p5 new and active, p6 new without activity, p1 active 12 of 12 months, p2 and p7 active once in
    # the last 6 months, p3 last active 8 months ago, p4 18 months ago.
    assert counts == {"new_active": 1, "new_inactive": 1, "regular": 1, "occasional": 2, "at_risk": 1, "lapsed": 1}
    assert f.registered_patrons(counts) == 7
    assert f.active_patrons(counts) == 5  # p1, p2, p3, p5, p7
    assert f.lapsed_patrons(counts) == 1
    assert f.at_risk_patrons(counts) == 1


def test_lifecycle_at_the_end_of_the_previous_period(library):
    with library["db"].read() as s:
        counts = f.lifecycle_counts(s, filters=PERIOD, month=date(2024, 12, 1))
    # p5 and p6 not registered yet; p1 active 6 of 12 months (regular), p3 active 2 months ago
    # (occasional); p2, p4, p7 without activity in 2024 (lapsed).
    assert counts == {"new_active": 0, "new_inactive": 0, "regular": 1, "occasional": 1, "at_risk": 0, "lapsed": 3}


def test_filters_narrow_every_patron_figure(library):
    north_children = f.Filters(END, 6, zone_ids=(library["Z1"],), patron_types=("child",))
    central = f.Filters(END, 6, branch_ids=(library["B1"],))
    with library["db"].read() as s:
        assert f.lifecycle_counts(s, filters=north_children, month=END)["new_active"] == 1  # p5 only
        assert f.registered_patrons(f.lifecycle_counts(s, filters=north_children, month=END)) == 1
        assert f.registered_patrons(f.lifecycle_counts(s, filters=central, month=END)) == 3  # p1 p2 p6
        assert f.new_registrations(s, filters=central) == 1  # p6


def test_new_registrations_and_registrations_per_month(library):
    with library["db"].read() as s:
        assert f.new_registrations(s, filters=PERIOD) == 2  # p5, p6
        assert f.new_registrations(s, filters=PERIOD.previous()) == 0
        per_month = f.registrations_by_month(s, filters=PERIOD, first=date(2023, 12, 1), last=END)
    assert per_month.values.tolist() == [[date(2025, 4, 1), 1], [date(2025, 5, 1), 1]]


def test_activity_by_kind_per_month_and_the_period_totals(library):
    with library["db"].read() as s:
        frame = f.activity_by_month(s, filters=PERIOD, first=PERIOD.first_month, last=END)
        residents = f.population(s, filters=PERIOD)
    june = frame[frame["month"] == END].set_index("kind")
    assert june.loc["checkout", "events"] == 3 and june.loc["event_attendance", "events"] == 2
    # In the period: p1 5×1 + 3, p2 1, p5 2, p7 1 = 12 events; never more than 2 patrons in one month.
    assert f.activity_total(frame) == (12, 2)
    assert f.program_attendance(frame) == (2, 1)
    assert residents == 1500
    assert f.activity_per_capita(12, residents) == 0.008


def test_lifecycle_flows_over_the_period(library):
    with library["db"].read() as s:
        flows = f.lifecycle_flows(s, filters=PERIOD)
    got = {(a, b): n for a, b, n in flows.itertuples(index=False)}
    assert got == {
        ("regular", "regular"): 1,  # p1
        ("lapsed", "occasional"): 2,  # p2, p7
        ("occasional", "at_risk"): 1,  # p3
        ("lapsed", "lapsed"): 1,  # p4
        ("unregistered", "new_active"): 1,  # p5
        ("unregistered", "new_inactive"): 1,  # p6
    }


def test_market_penetration_by_zone(library):
    with library["db"].read() as s:
        zones = f.penetration_by_zone(s, filters=PERIOD, month=END).set_index("name")
    assert zones.loc["North", ["registered", "active", "registered_per_1000", "active_per_1000"]].tolist() == [4, 3, 4.0, 3.0]
    assert zones.loc["South", ["registered", "active", "registered_per_1000", "active_per_1000"]].tolist() == [2, 1, 4.0, 2.0]
    assert zones.loc["(zone unknown)", ["registered", "active"]].tolist() == [1, 1]


def test_branch_comparison_and_age_band_matrix(library):
    with library["db"].read() as s:
        branches = f.branch_comparison(s, filters=PERIOD, activity_first=PERIOD.first_month).set_index("branch")
        ages = f.age_band_by_branch(s, filters=PERIOD, month=END)
    assert branches.loc["Central", ["registered", "active", "new_registrations", "events"]].tolist() == [3, 2, 1, 9]
    assert branches.loc["Riverside", ["registered", "active", "new_registrations", "events"]].tolist() == [3, 2, 1, 2]
    assert branches.loc["(branch unknown)", ["registered", "active", "new_registrations", "events"]].tolist() == [1, 1, 0, 1]
    assert ages.loc["25-44", "Central"] == 2 and ages.loc["65+", "Central"] == 1  # p1 and p6 (born 1990, 1985); p2
    assert ages.loc["0-11", "Riverside"] == 2 and ages.loc["(age unknown)", "Riverside"] == 1  # p3 (born 2015), p5; p4
    assert ages.loc["(age unknown)", "(branch unknown)"] == 1  # p7
    assert int(ages.to_numpy().sum()) == 7


def test_cohort_retention(library):
    with library["db"].read() as s:
        cohorts = f.cohort_retention(s, filters=PERIOD, first=date(2023, 12, 1), last=END)
    # p5 (cohort 2025-05) was active a month later; p6 (cohort 2025-04) never.
    assert cohorts.values.tolist() == [[date(2025, 5, 1), 1, 1]]


def test_outreach_interactions_and_cards(library):
    with library["db"].read() as s:
        outreach = f.outreach_by_month(s, first=date(2024, 7, 1), last=END)
    assert f.outreach_interactions(outreach, first=PERIOD.first_month, last=END) == 2
    assert f.outreach_interactions(outreach, first=date(2024, 7, 1), last=date(2024, 12, 1)) == 1
    march = outreach[outreach["month"] == date(2025, 3, 1)].set_index("kind")
    assert march.loc["event", "cards_issued"] == 4 and march.loc["meeting", "interactions"] == 1


def test_figures_survive_retention_deleting_raw_events(library):
    with library["db"].read() as s:
        before = kpis.dashboard_data(s, filters=PERIOD, today=TODAY)
    with library["db"].write() as s:
        s.execute(delete(ActivityEvent))
        activity.rebuild_rollups(s)
        kpis.refresh_summaries(s, today=TODAY)
    with library["db"].read() as s:
        after = kpis.dashboard_data(s, filters=PERIOD, today=TODAY)
    assert [c.value for c in after.cards] == [c.value for c in before.cards]
    for key, chart in before.charts.items():
        assert after.charts[key].frame.equals(chart.frame), key


def test_every_definition_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    for function in kpis.DEFINITIONS:
        definition = " ".join(function.__doc__.split())
        assert definition in readme, f"README's Dashboard section lacks the definition of {function.__name__}"


# --- The same figures on the demo library, against pandas over the raw tables ----------------------


@pytest.fixture
def demo_library(db):
    """A small demo library (seeded, so repeatable), its summaries built as of TODAY."""
    from crmcore.admin import auth, settings
    from crmcore.demo.library import generate

    with db.write() as s:  # the demo keeps raw events inside the retention window: here, all of its two years
        settings.put(s, actor=auth.CLI_ACTOR, key="retention_months", value=36)
    generate(db, patrons=300, seed=7, today=TODAY)
    with db.write() as s:
        kpis.refresh_summaries(s, today=TODAY)
    return db


def _raw(db):
    with db.engine.connect() as conn:
        patrons = pd.read_sql("SELECT id, zone_id, branch_id, patron_type, registered_on FROM patron", conn)
        events = pd.read_sql("SELECT patron_id, occurred_on, kind, count FROM activity_event", conn)
    patrons["registered_on"] = pd.to_datetime(patrons["registered_on"])
    events["month"] = pd.to_datetime(events["occurred_on"]).dt.to_period("M")
    return patrons, events


def _states_by_hand(patrons: pd.DataFrame, events: pd.DataFrame, month: date) -> pd.Series:
    """Each patron's lifecycle state at the end of `month`, straight from the definitions."""
    end = pd.Period(month, "M")
    end_day = end.to_timestamp(how="end").normalize()
    months = events[["patron_id", "month"]].drop_duplicates()
    last12 = months[(months["month"] > end - 12) & (months["month"] <= end)].groupby("patron_id").size()
    last6 = months[(months["month"] > end - 6) & (months["month"] <= end)].groupby("patron_id").size()
    state = {}
    for row in patrons.itertuples():
        reg = row.registered_on
        n12, n6 = last12.get(row.id, 0), last6.get(row.id, 0)
        if pd.notna(reg) and reg > end_day:
            continue
        if pd.notna(reg) and reg > end_day - pd.Timedelta(days=84):
            state[row.id] = "new_active" if n12 else "new_inactive"
        elif n12 == 0:
            state[row.id] = "lapsed"
        elif n6 == 0:
            state[row.id] = "at_risk"
        else:
            state[row.id] = "regular" if n12 >= 6 else "occasional"
    return pd.Series(state, dtype=object)


def test_demo_library_figures_match_pandas_over_the_raw_tables(demo_library):
    patrons, events = _raw(demo_library)
    assert len(patrons) == 300 and len(events) > 1000
    with demo_library.read() as s:
        for month in (END, date(2024, 12, 1), date(2024, 6, 1)):
            expected = _states_by_hand(patrons, events, month).value_counts().to_dict()
            got = {k: v for k, v in f.lifecycle_counts(s, filters=PERIOD, month=month).items() if v}
            assert got == expected, month
        by_hand = events[(events["month"] >= pd.Period(PERIOD.first_month, "M")) & (events["month"] <= pd.Period(END, "M"))]
        activity_frame = f.activity_by_month(s, filters=PERIOD, first=PERIOD.first_month, last=END)
        assert f.activity_total(activity_frame)[0] == by_hand["count"].sum()
        per_kind = activity_frame.groupby("kind")["events"].sum().to_dict()
        assert per_kind == by_hand.groupby("kind")["count"].sum().to_dict()
        registered_in_period = patrons["registered_on"].between(pd.Timestamp(PERIOD.first_month), pd.Timestamp(TODAY.replace(day=30)))
        assert f.new_registrations(s, filters=PERIOD) == registered_in_period.sum()
        zones = f.penetration_by_zone(s, filters=PERIOD, month=END)
        states = _states_by_hand(patrons, events, END)
        zone_of = patrons.set_index("id")["zone_id"].fillna(0).astype(int)
        expected_registered = zone_of[states.index].value_counts().to_dict()
        got_registered = {int(z): int(n) for z, n in zip(zones["zone_id"], zones["registered"]) if n}
        assert got_registered == expected_registered
        flows = f.lifecycle_flows(s, filters=PERIOD)
        before = _states_by_hand(patrons, events, date(2024, 12, 1)).reindex(states.index).fillna("unregistered")
        expected_flows = pd.DataFrame({"a": before, "b": states}).value_counts().to_dict()
        assert {(a, b): n for a, b, n in flows.itertuples(index=False)} == expected_flows


def test_a_period_between_two_months_includes_both_and_may_be_given_backwards():
    period = f.Filters.between(date(2025, 2, 1), date(2025, 7, 1), zone_ids=(3,))
    assert (period.first_month, period.end_month, period.months, period.zone_ids) == (date(2025, 2, 1), date(2025, 7, 1), 6, (3,))
    assert f.Filters.between(date(2025, 7, 1), date(2024, 11, 1)) == f.Filters(date(2025, 7, 1), 9)
    assert period.previous().first_month == date(2024, 8, 1) and period.previous().end_month == date(2025, 1, 1)
