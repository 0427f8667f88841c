"""No personal data in application logs: the worker, CLI commands and an import run with logging at
DEBUG into a file, which is then searched for the names, e-mails and phones of the data they handled."""

from __future__ import annotations

import logging

import pytest

from crmcore import cli

PATRONS = [
    ("LOG-1", "Zenobia", "Quartermaine", "zenobia.quartermaine@example.org", "+1 202 555 0143"),
    ("LOG-2", "Bartholomew", "Fitzwilliam", "bart.fitz@example.net", "+1 202 555 0178"),
    ("LOG-3", "Ifeoma", "Okonkwo-Adeyemi", "ifeoma.oa@example.com", "not-a-phone"),  # rejected row: its error is reported, not logged with PII
]


@pytest.fixture
def debug_log(tmp_path):
    path = tmp_path / "app.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.close()


def test_worker_cli_and_import_log_no_personal_data(db, monkeypatch, tmp_path, debug_log, capsys):
    monkeypatch.setenv("DATABASE_URL", db.url)
    source = tmp_path / "patrons.csv"
    rows = [f"{ils},{first},{last},{email},{phone}" for ils, first, last, email, phone in PATRONS]
    source.write_text("cardnumber,firstname,surname,email,phone\n" + "\n".join(rows) + "\n")
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"columns": {"ils_id": "cardnumber", "first_name": "firstname", "last_name": "surname", "email": "email", "phone": "phone"}}')
    assert cli.main(["import", "patrons", str(source), "--mapping", str(mapping)]) == 0
    assert cli.main(["import", "patrons", str(source), "--mapping", str(mapping), "--dry-run"]) == 0
    assert cli.main(["backup", str(tmp_path / "b.backup")]) == 0
    assert cli.main(["retention", "--now"]) == 0
    assert cli.main(["worker", "--once"]) == 0
    assert cli.main(["restore", str(tmp_path / "no-such-file"), "--yes"]) == 1
    capsys.readouterr()
    log = debug_log.read_text()
    assert "liaison" in log or "job" in log, "nothing was logged: the scan would prove nothing"
    leaked = [value for patron in PATRONS for value in patron[1:] if value in log or value.lower() in log.lower()]
    assert leaked == [], f"personal data in the log: {leaked}"
