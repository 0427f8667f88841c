"""Lifetime totals as distributions: patrons by lifetime checkouts and renewals in bands, resident or not,
equal to pandas over the patron table, small cells suppressed, never in the monthly trends."""

from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
import pytest

from crmcore import kpis
from crmcore.kpis import lifetime
from crmcore.library import activity
from crmcore.models import ActivityEvent, Branch, Patron

EDGES = [-1, 0, 4, 9, 24, 49, 99, 249, np.inf]
LABELS = [label for _low, label in lifetime.BANDS]
TODAY = date(2025, 6, 15)


@pytest.fixture
def patrons(db):
    """300 patrons at two branches with lifetime totals drawn at random (seeded), a tenth without them, one
    erased; resident, non-resident or unknown; one checkout each in May 2025."""
    rng = np.random.default_rng(5)
    with db.write() as s:
        central, east = Branch(code="C", name="Central"), Branch(code="E", name="Eastside")
        s.add_all([central, east])
        s.flush()
        for i in range(300):
            checkouts = None if i % 10 == 0 else int(rng.geometric(0.03)) - 1
            renewals = None if i % 10 == 0 else int(rng.geometric(0.1)) - 1
            resident = [True, True, False, None][i % 4]
            patron = Patron(ils_id=f"L{i}", branch_id=(central if i % 3 else east).id, patron_type="adult", registered_on=date(2020, 1, 1),
                            lifetime_checkouts=checkouts, lifetime_renewals=renewals, resident=resident,
                            erased_at=datetime(2025, 1, 1, tzinfo=timezone.utc) if i == 7 else None)
            s.add(patron)
            s.flush()
            s.add(ActivityEvent(patron_id=patron.id, occurred_on=date(2025, 5, 3), kind="checkout", count=1, branch_id=central.id))
        s.flush()
        activity.rebuild_rollups(s)
        kpis.refresh_summaries(s, today=TODAY)
    return {"db": db, "central": central.id, "east": east.id}


def by_hand(db, kind: str, branch_id: int | None = None) -> pd.DataFrame:
    with db.engine.connect() as conn:
        frame = pd.read_sql(f"SELECT branch_id, resident, lifetime_{kind} AS total FROM patron WHERE erased_at IS NULL", conn)
    frame = frame[frame["total"].notna()]
    if branch_id:
        frame = frame[frame["branch_id"] == branch_id]
    # SQLite gives 1/0, PostgreSQL True/False: equal as dictionary keys.
    residence = frame["resident"].map({1: "resident", 0: "non-resident"}).fillna("residence unknown")
    band = pd.cut(frame["total"], EDGES, labels=LABELS)
    return pd.crosstab(band, residence).reindex(LABELS, fill_value=0)


@pytest.mark.parametrize("kind", ["checkouts", "renewals"])
def test_bands_equal_pandas_with_and_without_a_branch_filter(patrons, kind):
    for branch in (None, patrons["east"]):
        filters = kpis.Filters(date(2025, 6, 1), 12, branch_ids=(branch,) if branch else ())
        with patrons["db"].read() as s:
            got = lifetime.lifetime_bands(s, filters=filters, kind=kind)
        expected = by_hand(patrons["db"], kind, branch)
        assert list(got.index) == LABELS
        for column in expected.columns:
            assert got[column].tolist() == expected[column].astype(int).tolist(), (kind, branch, column)
        assert int(got.to_numpy().sum()) == int(expected.to_numpy().sum())
        if branch is None:
            assert int(got.to_numpy().sum()) == 269  # 300, less 30 without totals and the one erased


def test_small_bands_are_suppressed_and_totals_stay_out_of_the_trends(patrons, staff):
    filters = kpis.Filters(date(2025, 6, 1), 12)
    with patrons["db"].read() as s:
        shown = lifetime.lifetime_distributions(s, actor=staff["viewer"], filters=filters)
        raw = lifetime.lifetime_bands(s, filters=filters, kind="checkouts")
        board = kpis.dashboard_data(s, filters=filters, today=TODAY)
    checkouts = next(d for d in shown if d.key == "checkouts").frame.set_index("band")
    for band, row in raw.iterrows():
        for column, n in row.items():
            if 0 < n < 5:
                assert checkouts.loc[band, column] == "<5"
            elif checkouts.loc[band, column] != "<5":
                assert checkouts.loc[band, column] == n
    assert (checkouts == "<5").to_numpy().sum() != 1  # never a single hidden cell a total would give away
    assert list(board.charts["activity"].frame.columns) == ["month", "checkout"]  # one checkout each in May, no lifetime
    assert int(board.charts["activity"].frame["checkout"].sum()) == 300


def test_without_lifetime_totals_there_is_no_distribution(db, staff):
    with db.write() as s:
        s.add(Patron(ils_id="x", registered_on=date(2024, 1, 1)))
    with db.read() as s:
        assert lifetime.lifetime_distributions(s, actor=staff["viewer"], filters=kpis.Filters(date(2025, 6, 1))) == []


def test_the_page_shows_the_distributions_when_asked(app, patrons):
    at = app(role="viewer", page="pages/dashboard.py").run()
    assert "Lifetime totals" in [s.value for s in at.subheader]
    tables_before = len(at.dataframe)
    at.toggle(key="dash-lifetime").set_value(True).run()
    assert not at.exception and not at.error
    new = [df.value for df in at.dataframe][tables_before:]
    assert len(new) == 2 and all(list(frame["band"]) == LABELS for frame in new)
    assert "residence unknown" in new[0].columns
