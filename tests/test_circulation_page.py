"""The dashboard's Circulation section: small multiples (Altair) of the imported circulation counts, equal to pandas."""

import json
from datetime import date

import pandas as pd
import pytest

from crmcore import imports
from crmcore.kpis import circulation
from crmcore.library import activity
from crmcore.models import ActivityEvent, Branch, Patron
from tests.test_circulation import MAPPING, TITLES, expected_cells


@pytest.fixture(autouse=True)
def fresh_caches():
    import streamlit as st

    st.cache_data.clear()


@pytest.fixture
def circulating(db, staff):
    """A small library with one active patron (so the dashboard has months) and the title-level circulation fixture."""
    with db.write() as s:
        branch = Branch(code="CEN", name="Central Library")
        s.add(branch)
        s.flush()
        patron = Patron(ils_id="p1", branch_id=branch.id, registered_on=date(2024, 1, 5))
        s.add(patron)
        s.flush()
        s.add(ActivityEvent(patron_id=patron.id, occurred_on=date.today().replace(day=1), kind="checkout", count=1, branch_id=branch.id))
        s.flush()
        activity.rebuild_rollups(s)
    imports.run_import(db, actor=staff["admin"], kind="circulation", path=TITLES, mapping=MAPPING)


def by_material(cells: dict) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for (month, _branch, _kind, material), n in cells.items():
        key = (month, material or circulation.NO_MATERIAL)
        out[key] = out.get(key, 0) + n
    return out


def test_trends_by_material_type_and_branch_equal_pandas_with_every_month_present(db, staff, circulating):
    expected = by_material(expected_cells(TITLES))
    with db.read() as s:
        options = circulation.circulation_options(s, actor=staff["viewer"])
        chart = circulation.circulation_trends(s, actor=staff["viewer"], first=options.months[-1], last=options.months[0])
        branches = circulation.circulation_trends(s, actor=staff["viewer"], first=date(2024, 12, 1), last=date(2024, 12, 1), by="branch")
        renewals = circulation.circulation_trends(s, actor=staff["viewer"], first=options.months[-1], last=options.months[0], kind="renewal")
    assert options.months == [date(2025, 1, 1), date(2024, 12, 1), date(2024, 11, 1)] and options.kinds == ["checkout"]
    shown = {(m, t): n for m, t, n in chart.frame.itertuples(index=False)}
    assert {k: n for k, n in shown.items() if n} == expected
    assert len(chart.frame) == 3 * chart.frame["material type"].nunique()  # every month for every series
    frame = pd.read_csv(TITLES, keep_default_na=False)
    december = frame[(frame["CheckoutYear"] == 2024) & (frame["CheckoutMonth"] == 12) & (frame["MaterialType"] != "VIDEODISC")]
    assert dict(zip(branches.frame["branch"], branches.frame["count"])) == {
        {"CEN": "Central Library"}.get(b, b): int(n) for b, n in december.groupby("Branch")["Checkouts"].sum().items()
    }
    assert renewals.frame.empty or renewals.frame["count"].sum() == 0


def test_dashboard_draws_circulation_small_multiples_with_caption_and_download(app, circulating):
    at = app(role="viewer", page="pages/dashboard.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Circulation" in [h.value for h in at.subheader]
    (chart,) = at.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["facet"]["field"] == "series" and spec["columns"] == 3  # one panel per material type
    assert spec["spec"]["mark"]["type"] == "line"
    assert any("Circulation (all kinds) per month and material type" in c.value for c in at.caption)
    assert any(b.proto.label == "Download CSV" and "dl-circulation-csv" in b.proto.id for b in at.get("download_button"))

    at.radio(key="circ-by").set_value("branch").run()
    assert not at.exception
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["title"] == "Circulation by branch"
