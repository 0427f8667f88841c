"""The mapping format end to end: presets fit to the columns present, year and month in two columns or a month with a
fixed year, ids made for attendance and activity files, the file's own 'missing' codes, the GeoJSON property, and
the README's documented example."""

import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import func, select

from crmcore import cli, imports
from crmcore.imports import mapping, reading, zones
from crmcore.imports.cleaning import Cleaner
from crmcore.models import ActivityEvent, ImportRun, Patron, ProgramEvent, Zone

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
OLD_KOHA = FIXTURES / "koha_borrowers_old.csv"
NEXT_YEAR = date.today().year + 1


def header(path: Path) -> list[str]:
    return reading.sniff(path).header


def run(db, actor, kind, path, chosen, **kw):
    return imports.run_import(db, actor=actor, kind=kind, path=path, mapping=chosen, **kw)


def count(db, model) -> int:
    with db.read() as s:
        return s.exec(select(func.count()).select_from(model)).one()


# --- presets -------------------------------------------------------------------------------------------------------

def test_a_preset_keeps_the_columns_present_and_names_the_optional_ones_missing():
    _kind, koha = mapping.preset("Koha borrowers")
    fitted = mapping.fit_preset("patrons", koha, header(OLD_KOHA))
    assert fitted["missing_columns"] == {"contact_method": "primary_contact_method", "language": "lang"}
    assert "contact_method" not in fitted["columns"] and fitted["columns"]["ils_id"] == "cardnumber"
    clean = mapping.clean_mapping("patrons", fitted, header(OLD_KOHA))
    assert mapping.mapping_notes(clean) == [
        "The preset's columns primary_contact_method, lang were not in the file; those fields were left as they are."
    ]
    mapped_by_hand = mapping.clean_mapping("patrons", {**fitted, "columns": {**fitted["columns"], "contact_method": "categorycode", "language": "branchcode"}}, header(OLD_KOHA))
    assert "missing_columns" not in mapped_by_hand  # mapped by hand since: not missing any more
    without_card = [h for h in header(OLD_KOHA) if h != "cardnumber"]
    with pytest.raises(ValueError, match="'cardnumber'.*not in the file"):  # a required column is still required
        mapping.clean_mapping("patrons", mapping.fit_preset("patrons", koha, without_card), without_card)


def test_the_cli_imports_an_older_koha_export_with_the_preset(db, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert cli.main(["import", "patrons", str(OLD_KOHA), "--mapping", "Koha borrowers"]) == 0
    out = capsys.readouterr().out
    frame = pd.read_csv(OLD_KOHA, dtype=str)
    assert f"{len(frame)} new" in out and "0 rejected" in out
    assert "The preset's columns primary_contact_method, lang were not in the file; those fields were left as they are." in out
    assert count(db, Patron) == len(frame)
    with db.read() as s:
        stored = {p.ils_id: (p.email, p.branch_id is not None) for p in s.exec(select(Patron))}
        run_row = s.exec(select(ImportRun)).one()
    assert {k: v[0] for k, v in stored.items()} == {c: (e if isinstance(e, str) else None) for c, e in zip(frame["cardnumber"], frame["email"])}
    assert run_row.mapping["missing_columns"] == {"contact_method": "primary_contact_method", "language": "lang"}
    assert cli.main(["import", "patrons", str(OLD_KOHA)]) == 0  # the suggested preset fits the same way
    assert f"{len(frame)} unchanged" in capsys.readouterr().out


# --- year and month --------------------------------------------------------------------------------------------------

def test_a_month_column_with_a_fixed_year_and_its_bounds():
    head = ["Program", "Month"]
    clean = mapping.clean_mapping("attendance", {"columns": {"title": "Program"}, "year_month": {"held_on": {"year_value": "2025", "month": "Month"}},
                                                 "id_columns": ["Program", "Month"]}, head)
    assert clean["year_month"] == {"held_on": {"year_value": 2025, "month": "Month"}}
    for bad, message in ((1899, "between 1900 and"), (NEXT_YEAR + 1, f"between 1900 and {NEXT_YEAR}"), ("twenty", "must be a number")):
        with pytest.raises(ValueError, match=message):
            mapping.clean_mapping("attendance", {"year_month": {"held_on": {"year_value": bad, "month": "Month"}}, "id_from_row": True}, head)
    with pytest.raises(ValueError, match="needs the month column"):
        mapping.clean_mapping("attendance", {"year_month": {"held_on": {"year_value": 2025}}, "id_from_row": True}, head)
    cleaner = Cleaner("attendance", clean, head)
    batch = cleaner.clean([(2, ["Storytime", "Jan"]), (3, ["Games", "march"]), (4, ["Quiz", "13"]), (5, ["Knit", ""])])
    assert batch.columns["held_on"] == [date(2025, 1, 1), date(2025, 3, 1)]
    assert [(r.line, r.field) for r in batch.rejected] == [(4, "held_on"), (5, "held_on")]


def test_activity_with_year_and_month_columns_and_row_number_ids_keeps_identical_rows(db, staff):
    run(db, staff["admin"], "patrons", OLD_KOHA, mapping.fit_preset("patrons", mapping.preset("Koha borrowers")[1], header(OLD_KOHA)))
    path = FIXTURES / "activity_year_month.csv"
    chosen = {"columns": {"patron": "card", "kind": "type", "branch": "branch", "count": "checkouts"},
              "year_month": {"occurred_on": {"year": "year", "month": "month"}}, "id_from_row": True}
    result = run(db, staff["admin"], "activity", path, chosen)
    frame = pd.read_csv(path, dtype=str)
    assert (result.new, len(result.rejected)) == (len(frame), 0)  # the two identical rows are two events
    with db.read() as s:
        events = s.exec(select(ActivityEvent)).all()
    months = {"3": 3, "4": 4, "Apr": 4, "12": 12}
    expected = sorted((date(int(y), months[m], 1), int(c)) for y, m, c in zip(frame["year"], frame["month"], frame["checkouts"]))
    assert sorted((e.occurred_on, e.count) for e in events) == expected
    assert run(db, staff["admin"], "activity", path, chosen).unchanged == len(frame)  # the same file again adds nothing


def test_patron_dates_from_year_and_month_columns_are_stored(db, staff, tmp_path):
    path = tmp_path / "patrons.csv"
    path.write_text("card,joined year,joined month,expires\n1,2019,5,2027-01-31\n2,2021,Jun,\n3,2022,,2026-12-31\n", encoding="utf-8")
    chosen = {"columns": {"ils_id": "card", "expires_on": "expires"}, "year_month": {"registered_on": {"year": "joined year", "month": "joined month"}}}
    assert run(db, staff["admin"], "patrons", path, chosen).new == 3
    with db.read() as s:
        stored = {p.ils_id: (p.registered_on, p.expires_on) for p in s.exec(select(Patron))}
    assert stored == {"1": (date(2019, 5, 1), date(2027, 1, 31)), "2": (date(2021, 6, 1), None), "3": (date(2022, 1, 1), date(2026, 12, 31))}
    assert run(db, staff["admin"], "patrons", path, chosen).unchanged == 3


# --- ids for attendance ------------------------------------------------------------------------------------------------

def test_attendance_ids_made_from_columns_with_missing_codes(db, staff):
    path = FIXTURES / "programs_by_month.csv"
    chosen = {"columns": {"title": "Program", "branch": "Branch", "categories": "Category", "audiences": "Audience", "attendance": "Attendance"},
              "year_month": {"held_on": {"year_value": 2025, "month": "Month"}}, "id_columns": ["Program", "Month", "Branch"], "missing_values": ["-1"]}
    result = run(db, staff["admin"], "attendance", path, chosen)
    frame = pd.read_csv(path, dtype=str)
    assert (result.new, len(result.rejected)) == (len(frame), 0)
    with db.read() as s:
        programs = {(p.title, p.held_on.month): p for p in s.exec(select(ProgramEvent))}
    assert len({p.event_id for p in programs.values()}) == len(frame) and all(p.event_id.startswith("gen-") for p in programs.values())
    assert programs[("Teen Game Night", 3)].attendance_in_person is None  # -1: not reported, not rejected
    assert sum(p.attendance_in_person or 0 for p in programs.values()) == frame["Attendance"].astype(int).clip(lower=0).sum()
    assert run(db, staff["admin"], "attendance", path, chosen).unchanged == len(frame)  # the same ids from the same cells
    with pytest.raises(ValueError, match="ids made from columns or the row number are for"):
        mapping.clean_mapping("zones", {"columns": {"code": "district"}, "id_from_row": True}, header(FIXTURES / "districts.csv"))


# --- missing values and the GeoJSON property -----------------------------------------------------------------------------

ZONES = {"columns": {"code": "district", "name": "district_name", "population": "population", "households": "households", "median_income": "median_income"},
         "census_columns": ["branches"]}


def test_census_missing_value_codes_are_empty_not_rejected(db, staff):
    path = FIXTURES / "districts.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    negative = (frame[["population", "households", "median_income"]].astype(int) < 0).any(axis=1)
    rejected = run(db, staff["admin"], "zones", path, ZONES, dry_run=True)
    assert sorted(r.line for r in rejected.rejected) == [k + 2 for k in frame.index[negative]]  # without the codes: negative
    assert all(r.reason.endswith("is negative") for r in rejected.rejected)
    result = run(db, staff["admin"], "zones", path, {**ZONES, "missing_values": "-1, -3, -9"})
    assert (result.new, len(result.rejected)) == (len(frame), 0)
    with db.read() as s:
        stored = {z.code: (z.population, z.households, z.median_income, z.census) for z in s.exec(select(Zone))}

    def figure(text):
        return None if text in ("-1", "-3", "-9") else int(text)

    assert stored == {
        row.district: (figure(row.population), figure(row.households), figure(row.median_income), {} if figure(row.branches) is None else {"branches": int(row.branches)})
        for row in frame.itertuples()
    }


def test_the_geojson_property_is_chosen_and_a_miss_says_what_was_tried(db, staff):
    shapes = FIXTURES / "districts.geojson"
    props = zones.geojson_properties(shapes)
    assert list(props) == ["OBJECTID", "DISTRICT", "LABEL", "AREA_KM2"] and props["DISTRICT"] == ["D1", "D2", "D3"]
    chosen = {**ZONES, "missing_values": ["-1", "-3", "-9"]}
    missed = run(db, staff["admin"], "zones", FIXTURES / "districts.csv", chosen, geojson=shapes).describe()
    assert "0 zones got a shape" in missed and "the properties tried were code, zone, id, GEOID" in missed
    assert "DISTRICT (e.g. D1, D2, D3)" in missed and "LABEL (e.g. Riverside, Hillcrest, Old Town)" in missed
    found = run(db, staff["admin"], "zones", FIXTURES / "districts.csv", {**chosen, "geojson_property": "DISTRICT"}, geojson=shapes).describe()
    codes = {f["properties"]["DISTRICT"] for f in json.loads(shapes.read_text())["features"]}
    assert f"{len(codes)} zones got a shape from districts.geojson; 1 zones have none in it." in found
    with db.read() as s:
        shaped = {z.code for z in s.exec(select(Zone).where(Zone.geojson.is_not(None)))}
    assert shaped == codes


# --- the documented format --------------------------------------------------------------------------------------------

def readme_examples() -> list[tuple[str, dict]]:
    """The README's example mapping files: a ```json block preceded by a line naming its kind (`kind: activity`)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(kind, json.loads(body)) for kind, body in re.findall(r"<!-- mapping example: (\w+) -->\s*```json\n(.*?)```", text, re.DOTALL)]


def test_the_readmes_mapping_examples_are_valid_for_their_kind():
    examples = readme_examples()
    assert {kind for kind, _m in examples} >= {"patrons", "activity", "zones"}
    documented = (ROOT / "README.md").read_text(encoding="utf-8")
    for key in ("columns", "date_order", "year_month", "year_value", "id_columns", "id_from_row", "missing_values", "geojson_property",
                "census_columns", "default_kind", "consent_topics", "attribute_codes"):
        assert f"`{key}`" in documented, key
    for kind, example in examples:
        head = mapping.mapped_columns(example)
        clean = mapping.clean_mapping(kind, example, head)
        for key in example:
            assert key in clean, (kind, key)  # nothing in the example is silently dropped
