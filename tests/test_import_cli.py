"""The CLI `python -m crmcore import`, and an import killed with SIGKILL mid-way then rerun."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import func, select

from crmcore import cli
from crmcore.imports import batches, koha_sample, runner
from crmcore.models import ActivityMonthly, ImportRun, Patron

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


def count(db, model):
    with db.read() as s:
        return s.exec(select(func.count()).select_from(model)).one()


def test_cli_dry_run_import_and_error_file(db, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", db.url)
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=150, malformed_every=50)
    assert cli.main(["import", "patrons", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "147 new" in out and "3 rejected" in out and "dry run" in out
    assert count(db, Patron) == 0
    errors = tmp_path / "koha.errors.csv"
    assert errors.read_text(encoding="utf-8-sig").splitlines()[1].startswith("51,email,")
    assert cli.main(["import", "patrons", str(path), "--mapping", "Koha borrowers"]) == 0
    assert count(db, Patron) == 147
    assert cli.main(["import", "patrons", str(path)]) == 0
    assert "Nothing changed" not in capsys.readouterr().out  # the rejected rows are still rejected …
    assert count(db, Patron) == 147  # … and nothing else moved


def test_cli_activity_with_a_json_mapping_rebuilds_rollups(db, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert cli.main(["import", "patrons", str(SAMPLES / "koha_borrowers.csv")]) == 0
    mapping = tmp_path / "activity.json"
    mapping.write_text('{"columns": {"patron": "patron_barcode", "occurred_on": "date", "kind": "type", "count": "count"}}')
    assert cli.main(["import", "activity", str(SAMPLES / "activity.csv"), "--mapping", str(mapping)]) == 0
    assert "12 new" in capsys.readouterr().out
    assert count(db, ActivityMonthly) > 0


def test_cli_refusals_are_one_clear_line(db, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", db.url)
    assert cli.main(["import", "activity", str(SAMPLES / "activity.csv")]) == 1
    assert "no preset fits" in capsys.readouterr().err
    assert cli.main(["import", "patrons", str(SAMPLES / "koha_borrowers.csv"), "--mapping", "Nope"]) == 1
    assert "No mapping named 'Nope'" in capsys.readouterr().err
    monkeypatch.setenv("CRM_MAX_UPLOAD_MB", "0.001")
    assert cli.main(["import", "patrons", str(SAMPLES / "koha_borrowers.csv")]) == 1
    assert "over the import limit" in capsys.readouterr().err
    assert count(db, ImportRun) == 0


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit may wait for a reaper that never comes in a container)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_kill_9_mid_import_leaves_whole_batches_and_a_rerun_completes(sqlite_db, tmp_path):
    path = tmp_path / "big.csv"
    koha_sample.write(path, rows=50_000)
    assert path.stat().st_size >= batches.PARALLEL_BYTES  # read and cleaned by a second process
    env = {**os.environ, "DATABASE_URL": sqlite_db.url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "crmcore", "import", "patrons", str(path)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_file = sqlite_db.url.removeprefix("sqlite:///")
    landed, readers = 0, []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        with sqlite3.connect(db_file, timeout=30) as conn:
            landed = (conn.execute("SELECT max(rows_total) FROM import_run").fetchone() or [0])[0] or 0
        if landed > 0 and (readers := children(proc.pid)):  # the first batch is in, the rest is being read elsewhere
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < landed < 50_000, "the kill must come mid-import"
    assert len(readers) == 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(running(pid) for pid in readers):
        time.sleep(0.1)
    assert not any(running(pid) for pid in readers), "the reading process outlived the import"
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        patrons, recorded, status = conn.execute("SELECT (SELECT count(*) FROM patron), rows_new, status FROM import_run").fetchone()
    assert status == "running" and patrons == recorded and patrons % runner.BATCH_SIZE == 0  # whole batches, counts in step
    assert subprocess.run(command, env=env, capture_output=True, timeout=600).returncode == 0
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*), count(DISTINCT ils_id) FROM patron").fetchone() == (50_000, 50_000)
        runs = conn.execute("SELECT status, rows_new, rows_unchanged FROM import_run ORDER BY id").fetchall()
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(patron)")}
    assert runs == [("interrupted", patrons, 0), ("done", 50_000 - patrons, patrons)]
    assert {index.name for index in Patron.__table__.indexes} <= indexes  # the first load's deferred indexes are back
