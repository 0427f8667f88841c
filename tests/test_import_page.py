"""The import wizard in AppTest: upload, preview, preset mapping, dry run, import, summary, saved mapping."""

import hashlib
import os
import stat
from datetime import date
from pathlib import Path

from sqlmodel import func, select

from crmcore.admin import config
from crmcore.imports import koha_sample, uploads
from crmcore.models import ImportMapping, ImportRun, Patron

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def button(at, label):
    return next(b for b in at.button if b.label == label)


def patrons(db):
    with db.read() as s:
        return s.exec(select(func.count()).select_from(Patron)).one()


def test_upload_map_dry_run_import_and_summary(app, db, tmp_path):
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=120, malformed_every=40)
    at = app(role="admin", page="pages/imports.py").run()
    assert not at.exception
    at.file_uploader[0].set_value(("koha export.csv", path.read_bytes(), "text/csv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "cardnumber" in at.dataframe[0].value.columns  # the first rows are shown
    source = next(s for s in at.selectbox if s.label.startswith("Start from"))
    assert source.value == "Koha borrowers"  # suggested from the header
    ils = next(s for s in at.selectbox if s.label.startswith("ILS id"))
    assert ils.value == "cardnumber"

    button(at, "Dry run (check only)").click().run()
    assert not at.exception
    assert "117 new" in at.info[0].value and "dry run" in at.info[0].value
    assert patrons(db) == 0
    assert "3 rows were rejected" in at.warning[0].value
    errors = at.dataframe[-2].value if len(at.dataframe) > 2 else None
    assert errors is not None and list(errors["line"]) == [41, 81, 121]

    button(at, "Import").click().run()
    assert not at.exception
    assert "117 new" in at.success[0].value
    assert patrons(db) == 117
    with db.read() as s:
        runs = s.exec(select(ImportRun).order_by(ImportRun.id)).all()
    assert [(r.dry_run, r.file_name) for r in runs] == [(True, "koha export.csv"), (False, "koha export.csv")]
    saved = uploads.directory() / (hashlib.sha256(path.read_bytes()).hexdigest()[:32] + ".csv")
    assert at.file_uploader[0].value is None and not saved.exists()  # the import ended: its file is gone

    at.file_uploader[0].set_value(("koha export.csv", path.read_bytes(), "text/csv")).run()
    button(at, "Import").click().run()
    assert "Nothing changed" not in at.success[0].value and "117 unchanged" in at.success[0].value


def test_map_by_hand_and_save_the_mapping(app, db):
    at = app(role="admin", page="pages/imports.py").run()
    next(s for s in at.selectbox if s.label == "What are you importing?").set_value("zones").run()
    at.file_uploader[0].set_value(("zones.csv", (SAMPLES / "zones.csv").read_bytes(), "text/csv")).run()
    assert next(s for s in at.selectbox if s.label.startswith("Start from")).value == "(map by hand)"
    next(s for s in at.selectbox if s.label.startswith("Zone code")).set_value("zip").run()
    next(s for s in at.selectbox if s.label == "Population").set_value("population").run()
    next(t for t in at.text_input if t.label == "Save this mapping as").input("County census")
    next(b for b in at.button if b.label == "Save mapping").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        saved = s.exec(select(ImportMapping)).one()
    assert (saved.kind, saved.name, saved.mapping["columns"]) == ("zones", "County census", {"code": "zip", "population": "population"})
    button(at, "Import").click().run()
    assert "4 new" in at.success[0].value


def test_a_bad_file_shows_a_message_not_a_trace(app):
    at = app(role="admin", page="pages/imports.py").run()
    at.file_uploader[0].set_value(("empty.csv", b"", "text/csv")).run()
    assert not at.exception
    assert "empty" in at.error[0].value


def test_an_upload_is_private_and_replaced_uploads_are_deleted(app, db, tmp_path):
    old_umask = os.umask(0o022)
    try:
        at = app(role="admin", page="pages/imports.py").run()
        at.file_uploader[0].set_value(("a.csv", b"zip,name\n1,One\n", "text/csv")).run()
        assert not at.exception and not at.error
        (first,) = [p for p in uploads.directory().iterdir() if p.name == at.session_state["import-upload"].rsplit("/", 1)[-1]]
        assert stat.S_IMODE(first.stat().st_mode) == 0o600 and stat.S_IMODE(uploads.directory().stat().st_mode) == 0o700
        assert uploads.directory().parent == config.DATA_DIR  # under the data folder, not /tmp
        at.file_uploader[0].set_value(("b.csv", b"zip,name\n2,Two\n", "text/csv")).run()
        assert not first.exists()  # abandoned for another file: deleted
        second = Path(at.session_state["import-upload"])
        assert second.exists()
        at.file_uploader[0].set_value(None).run()
        assert not second.exists()  # removed from the picker: deleted
    finally:
        os.umask(old_umask)


# --- every kind and option on the page ---------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def widget(at, kind, label):
    return next(w for w in getattr(at, kind) if w.label == label)


def choose(at, label, value, kind="selectbox"):
    widget(at, kind, label).set_value(value)
    return at.run()


def start(app, kind, path, name=None):
    at = app(role="admin", page="pages/imports.py").run()
    choose(at, "What are you importing?", kind)
    at.file_uploader[0].set_value((name or path.name, path.read_bytes(), "text/csv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def dry_run_then_import(at, expected: str):
    """Dry run (nothing written), then import; both summaries say `expected` (e.g. '12 new'). The summary, unescaped."""
    button(at, "Dry run (check only)").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert expected in at.info[0].value and "dry run" in at.info[0].value, at.info[0].value
    button(at, "Import").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert expected in at.success[0].value, at.success[0].value
    return at.success[0].value.replace("\\", "")  # ui.md escaped the markdown


def counted(db, model, *where):
    with db.read() as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def koha_patrons(db, staff, path=SAMPLES / "koha_borrowers.csv"):
    from crmcore import imports
    from crmcore.imports import mapping

    header = imports.inspect(path).format.header
    imports.run_import(db, actor=staff["admin"], kind="patrons", path=path, mapping=mapping.fit_preset("patrons", mapping.preset("Koha borrowers")[1], header))


def test_activity_imports_from_the_page(app, db, staff):
    import pandas as pd

    from crmcore.models import ActivityEvent

    koha_patrons(db, staff)
    at = start(app, "activity", SAMPLES / "activity.csv")
    for label, column in (("Patron ILS id *", "patron_barcode"), ("Date *", "date"), ("Count", "count"), ("Branch code", "branch")):
        choose(at, label, column)
    kind_field = next(s for s in at.selectbox if s.label.startswith("Kind (")).set_value("type")
    at.run()
    assert not at.exception and kind_field.value == "type"
    assert widget(at, "selectbox", "Kind when the file has no kind column").value == "checkout"  # its own key: no clash
    rows = len(pd.read_csv(SAMPLES / "activity.csv"))
    dry_run_then_import(at, f"{rows} new")
    assert counted(db, ActivityEvent) == rows


def test_the_first_rows_show_only_mapped_columns_and_an_older_koha_imports(app, db):
    import pandas as pd

    path = FIXTURES / "koha_borrowers_old.csv"
    at = start(app, "patrons", path)
    assert widget(at, "selectbox", "Start from a preset or a saved mapping").value == "Koha borrowers"
    assert any("no primary_contact_method, lang column" in c.value.replace("\\", "") for c in at.caption)
    shown = at.dataframe[0].value
    assert {"password", "borrowernotes", "sex"}.isdisjoint(shown.columns) and "cardnumber" in shown.columns
    assert not shown.astype(str).apply(lambda col: col.str.contains("PRIVATE")).any().any()  # no cell of an unmapped column
    choose(at, "Last name", "(not mapped)")
    assert "surname" not in at.dataframe[0].value.columns  # follows the mapping
    summary = dry_run_then_import(at, f"{len(pd.read_csv(path))} new")
    assert "The preset's columns primary_contact_method, lang were not in the file; those fields were left as they are." in summary
    assert patrons(db) == len(pd.read_csv(path))


def test_patron_ids_made_from_columns_on_the_page(app, db):
    at = start(app, "patrons", FIXTURES / "koha_borrowers_old.csv")
    choose(at, "Start from a preset or a saved mapping", "(map by hand)")
    for label, column in (("First name", "firstname"), ("Last name", "surname"), ("Email", "email")):
        choose(at, label, column)
    choose(at, "Patron id", "made from columns", kind="radio")
    choose(at, "Columns the id is made from", ["firstname", "surname", "dateofbirth"], kind="multiselect")
    dry_run_then_import(at, "4 new")
    with db.read() as s:
        assert all(p.ils_id.startswith("gen-") for p in s.exec(select(Patron)))


def test_activity_year_and_month_columns_and_row_number_ids_on_the_page(app, db, staff):
    import pandas as pd

    from crmcore.models import ActivityEvent

    koha_patrons(db, staff, FIXTURES / "koha_borrowers_old.csv")
    path = FIXTURES / "activity_year_month.csv"
    at = start(app, "activity", path)
    choose(at, "Patron ILS id *", "card")
    choose(at, "Count", "checkouts")
    next(s for s in at.selectbox if s.label.startswith("Kind (")).set_value("type")
    at.run()
    choose(at, "Date is in", "year and month in two columns", kind="radio")
    choose(at, "Date: year column", "year")
    choose(at, "Date: month column", "month")
    assert not any("Row-number ids" in w.value for w in at.warning)
    choose(at, "Transaction id", "the row number", kind="radio")
    assert any(w.value == "Row-number ids need the file in the same order every time: a re-sorted file updates the wrong records." for w in at.warning)
    assert list(at.dataframe[0].value.columns) == ["card", "type", "checkouts", "year", "month"]
    rows = len(pd.read_csv(path))
    dry_run_then_import(at, f"{rows} new")  # the identical rows are two events
    with db.read() as s:
        assert sorted({e.occurred_on for e in s.exec(select(ActivityEvent))}) == [date(2024, 12, 1), date(2025, 3, 1), date(2025, 4, 1)]
    assert counted(db, ActivityEvent) == rows


def test_attendance_month_with_a_fixed_year_ids_from_columns_and_missing_codes(app, db):
    import pandas as pd

    from crmcore.models import ProgramEvent

    path = FIXTURES / "programs_by_month.csv"
    at = start(app, "attendance", path)
    for label, column in (("Program title", "Program"), ("Branch / campus", "Branch"), ("Attendance (in person)", "Attendance")):
        choose(at, label, column)
    choose(at, "Date is in", "month column with a fixed year", kind="radio")
    widget(at, "number_input", "Date: the year").set_value(2025)
    choose(at, "Date: month column", "Month")
    choose(at, "Event id", "made from columns", kind="radio")
    choose(at, "Columns the id is made from", ["Program", "Month", "Branch"], kind="multiselect")
    widget(at, "text_input", "Values that mean 'missing' (comma-separated)").input("-1")
    at.run()
    rows = len(pd.read_csv(path))
    dry_run_then_import(at, f"{rows} new")
    with db.read() as s:
        programs = s.exec(select(ProgramEvent)).all()
    assert {p.held_on for p in programs} == {date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)}
    assert sorted(p.attendance_in_person for p in programs if p.attendance_in_person is not None) == sorted(
        int(a) for a in pd.read_csv(path, dtype=str)["Attendance"] if a != "-1")


def test_zones_with_missing_codes_and_the_geojson_property_on_the_page(app, db):
    from crmcore.models import Zone

    at = start(app, "zones", FIXTURES / "districts.csv")
    at.file_uploader[1].set_value(("districts.geojson", (FIXTURES / "districts.geojson").read_bytes(), "application/geo+json")).run()
    for label, column in (("Zone code *", "district"), ("Name", "district_name"), ("Population", "population"), ("Households", "households")):
        choose(at, label, column)
    assert widget(at, "text_input", "Values that mean 'missing' (comma-separated)").value == "-1, -3, -9"  # the census codes, prefilled
    prop = widget(at, "selectbox", "The GeoJSON property holding the zone code")
    assert "DISTRICT (e.g. D1, D2, D3)" in prop.options and "LABEL (e.g. Riverside, Hillcrest, Old Town)" in prop.options  # with example values
    choose(at, "The GeoJSON property holding the zone code", "DISTRICT")
    summary = dry_run_then_import(at, "4 new")
    assert "3 zones got a shape from districts.geojson" in summary
    assert counted(db, Zone, Zone.geojson.is_not(None)) == 3 and counted(db, Zone, Zone.population.is_(None)) == 2


def test_organizations_from_the_page(app, db):
    from crmcore.models import Organization

    at = start(app, "organizations", SAMPLES / "organizations.csv")
    for label, column in (("Organization name *", "Organization"), ("Sector", "Sector"), ("Partner", "Partner")):
        choose(at, label, column)
    assert "Internal notes" not in at.dataframe[0].value.columns
    dry_run_then_import(at, "3 new")
    assert counted(db, Organization) == 3


def test_circulation_from_the_page(app, db):
    """A title-level file: year and month columns, the kind for the whole file, cells equal to pandas'."""
    from tests.test_circulation import TITLES, expected_cells, stored_cells

    at = start(app, "circulation", TITLES)
    for label, column in (("Branch code", "Branch"), ("Material type (one of the item categories' material types)", "MaterialType"),
                          ("Count (checkouts, renewals …; 1 when not mapped)", "Checkouts")):
        choose(at, label, column)
    label = "Month (a date, or year and month columns)"
    choose(at, f"{label} is in", "year and month in two columns", kind="radio")
    choose(at, f"{label}: year column", "CheckoutYear")
    choose(at, f"{label}: month column", "CheckoutMonth")
    choose(at, "Kind when the file has no kind column", "checkout")
    assert "Title" not in at.dataframe[0].value.columns and "Author" not in at.dataframe[0].value.columns
    expected = expected_cells(TITLES)
    dry_run_then_import(at, f"{len(expected)} new")
    assert stored_cells(db) == expected


def test_a_saved_mapping_brings_back_its_dates_ids_and_missing_codes(app, db):
    at = start(app, "attendance", FIXTURES / "programs_by_month.csv")
    choose(at, "Program title", "Program")
    choose(at, "Date is in", "month column with a fixed year", kind="radio")
    widget(at, "number_input", "Date: the year").set_value(2024)
    choose(at, "Date: month column", "Month")
    choose(at, "Event id", "the row number", kind="radio")
    widget(at, "text_input", "Values that mean 'missing' (comma-separated)").input("-1, n/r")
    widget(at, "text_input", "Save this mapping as").input("Monthly programs")
    button(at, "Save mapping").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        saved = s.exec(select(ImportMapping)).one().mapping
    assert (saved["year_month"], saved["id_from_row"], saved["missing_values"]) == ({"held_on": {"year_value": 2024, "month": "Month"}}, True, ["-1", "n/r"])

    again = start(app, "attendance", FIXTURES / "programs_by_month.csv")
    choose(again, "Start from a preset or a saved mapping", "Monthly programs")
    assert widget(again, "radio", "Date is in").value == "month column with a fixed year"
    assert (widget(again, "number_input", "Date: the year").value, widget(again, "selectbox", "Date: month column").value) == (2024, "Month")
    assert widget(again, "radio", "Event id").value == "the row number"
    assert widget(again, "text_input", "Values that mean 'missing' (comma-separated)").value == "-1, n/r"
