"""Peer comparison: the survey import (with its missing codes), deterministic peers and distances, standing, the page."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sqlalchemy import select

from crmcore.imports import mapping, run_import
from crmcore.imports.library_survey import year_from_name
from crmcore.models import LibrarySurveyRow
from crmcore.peers import choice, comparison, survey
from tests.pls_records import survey_file
from tests.test_plain_words import snake_words


def imported(db, staff, tmp_path, name="pls_fy2022_ae_pud22i.csv", growth=1.0):
    path = survey_file(tmp_path / name, growth=growth)
    kind, preset = mapping.preset("IMLS Public Libraries Survey")
    return run_import(db, actor=staff["admin"], kind=kind, path=path, mapping=preset)


def test_the_survey_file_imports_with_its_missing_codes_as_unknown(db, staff, tmp_path):
    summary = imported(db, staff, tmp_path)
    assert summary.counts() == {"rows": 7, "new": 7, "updated": 0, "unchanged": 0, "rejected": 0}
    with db.read() as s:
        rows = {r.fscs_key: r for r in s.scalars(select(LibrarySurveyRow))}
    assert {r.fiscal_year for r in rows.values()} == {2022}
    assert rows["IL0003"].e_circulation is None and rows["IL0004"].programs is None and rows["WI0002"].branches is None
    assert (rows["IL0001"].population, rows["IL0001"].locale, rows["IL0001"].state) == (52_000, "21", "IL")
    again = imported(db, staff, tmp_path)
    assert again.counts()["unchanged"] == 7


def test_several_years_side_by_side(db, staff, tmp_path):
    imported(db, staff, tmp_path)
    imported(db, staff, tmp_path, name="PLS_FY23_AE_pud23i.csv", growth=1.1)
    with db.read() as s:
        assert survey.years(s, actor=staff["viewer"]) == [2023, 2022]
        trend = comparison.trend(s, actor=staff["viewer"], own="IL0001", way="state")
    visits = trend[trend["measure"] == "Visits per person"]
    assert list(visits["year"]) == [2022, 2023] and visits["own"].iloc[1] > visits["own"].iloc[0]


def test_a_file_without_a_year_is_refused_saying_so(db, staff, tmp_path):
    path = survey_file(tmp_path / "libraries.csv")
    kind, preset = mapping.preset("IMLS Public Libraries Survey")
    with pytest.raises(ValueError, match="fiscal year"):
        run_import(db, actor=staff["admin"], kind=kind, path=path, mapping=preset)
    summary = run_import(db, actor=staff["admin"], kind=kind, path=path, mapping={**preset, "fiscal_year": 2021})
    assert summary.new == 7


@pytest.mark.parametrize("name,year", [("pls_fy2022_ae_pud22i.csv", 2022), ("PLS_FY19_AE_pud19i.csv", 2019), ("pupld14a.csv", 2014), ("libraries.csv", None)])
def test_year_from_the_published_file_name(name, year):
    assert year_from_name(name) == year


def test_nearest_peers_by_the_documented_distance_are_deterministic(db, staff, tmp_path):
    imported(db, staff, tmp_path)
    with db.read() as s:
        rows = survey.year_rows(s, actor=staff["viewer"], year=2022)
    d = choice.distances(rows, "IL0001")
    # By hand: z-scores of log10 population, log10 expenditure and branches over the libraries with all three.
    known = rows.dropna(subset=["population", "expenditure", "branches"]).set_index("fscs_key")
    z = pd.DataFrame({"p": known["population"].astype(float).map(lambda v: math.log10(v)),
                      "e": known["expenditure"].astype(float).map(lambda v: math.log10(v)), "b": known["branches"].astype(float)})
    z = (z - z.mean()) / z.std(ddof=0)
    expected = ((z - z.loc["IL0001"]) ** 2).sum(axis=1).pow(0.5).drop("IL0001")
    assert d.to_dict() == pytest.approx(expected.to_dict())
    assert "WI0002" not in d.index  # no branch count (-3): no distance
    assert list(d.index[:2]) == ["WI0001", "IL0002"]
    assert choice.peers(rows, own="IL0001", way="nearest", n=2) == choice.peers(rows.sample(frac=1, random_state=3), own="IL0001", way="nearest", n=2)
    assert choice.peers(rows, own="IL0001", way="state") == ["IL0002", "IL0003", "IL0004", "IL0005"]
    assert choice.peers(rows, own="IL0001", way="locale") == ["IL0002", "IL0003", "WI0001"]
    assert choice.peers(rows, own="IL0001", way="population_band") == ["IL0003", "WI0001"]  # 50,000–100,000 people (IL0002 has 48,000)


def test_standing_median_percentile_and_rank(db, staff, tmp_path):
    imported(db, staff, tmp_path)
    with db.read() as s:
        result = comparison.compare(s, actor=staff["viewer"], year=2022, own="IL0001", way="locale")
    visits = result["standing"].set_index("measure").loc["Visits per person"]
    mine, theirs = 310_000 / 52_000, [250_000 / 48_000, 380_000 / 61_000, 280_000 / 50_000]
    assert visits["own"] == pytest.approx(mine, abs=1e-3)
    assert visits["peer_median"] == pytest.approx(sorted(theirs)[1], abs=1e-3)
    assert visits["percentile"] == pytest.approx(100 * sum(t < mine for t in theirs) / 3, abs=0.1)
    assert visits["rank"] == 1 + sum(t > mine for t in theirs)
    ecirc = result["standing"].set_index("measure").loc["Electronic circulation per person"]
    assert ecirc["compared"] == 2  # IL0003 reported -1: left out, not zero
    assert result["dots"]["own"].sum() == 7  # one own dot per measure


def test_the_peers_page_chooses_the_own_row_and_compares(app, db, staff, tmp_path):
    imported(db, staff, tmp_path)
    at = app(role="admin", page="pages/peers.py").run()
    assert not at.exception
    at.text_input(key="peers-search").input("prairie").run()
    at.button(key="peers-choose").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        assert survey.own_key(s) == "IL0001"
    assert any("against" in h.value for h in at.subheader)
    assert snake_words(at) == []
    viewer = app(role="viewer", page="pages/peers.py").run()
    assert not viewer.exception and not viewer.error
