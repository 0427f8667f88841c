"""The import wizard in AppTest: upload, preview, preset mapping, dry run, import, summary, saved mapping."""

import hashlib
import os
import stat
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
