"""Many writers on one SQLite file: nobody sees "database is locked", nothing is lost; and kill -9 of a
writer in the middle of its writes never corrupts the file nor loses a write it reported committed."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crmcore.admin.backup import _sqlite_file
from crmcore.models import AuditLog, Interaction, Patron
from tests.concurrency_writer import PER_IMPORT

ROOT = Path(__file__).resolve().parent.parent
MODES = ["interaction"] * 4 + ["import"] * 2 + ["direct"] * 2


def start(mode: str, url: str, tag: str, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.concurrency_writer", mode, url, tag, str(seconds)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "DATABASE_URL": url},
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_eight_writers_for_a_minute_lose_nothing_and_never_see_a_lock(sqlite_db):
    url = sqlite_db.url
    procs = {f"W{n}": (mode, start(mode, url, f"W{n}", 60)) for n, mode in enumerate(MODES)}
    reports = {}
    for tag, (mode, proc) in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        lines = out.splitlines()
        assert lines[-1] == "done", (tag, lines[-3:])
        errors = [line for line in lines if line.startswith("error")]
        assert errors == [], (tag, errors[:5])
        assert "database is locked" not in err
        reports[tag] = (mode, [line.split(" ", 1)[1] for line in lines if line.startswith("ok ")])
    with sqlite_db.read() as s:
        for tag, (mode, keys) in reports.items():
            assert keys, f"{tag} wrote nothing"
            if mode == "interaction":
                stored = s.execute(select(func.count()).select_from(Interaction).where(Interaction.notes.like(f"{tag}-%"))).scalar()
                assert stored == len(keys), tag
            elif mode == "import":
                stored = s.execute(select(func.count()).select_from(Patron).where(Patron.ils_id.like(f"{tag}-%"))).scalar()
                assert stored == len(keys) * PER_IMPORT, tag
            else:
                stored = s.execute(select(func.count()).select_from(AuditLog).where(AuditLog.entity_id.like(f"{tag}-%"))).scalar()
                assert stored == len(keys), tag
    print({tag: (mode, len(keys)) for tag, (mode, keys) in reports.items()})


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_during_writes_never_corrupts_nor_loses_a_committed_write(sqlite_db):
    rng = random.Random(9)
    committed: list[str] = []
    for n in range(100):
        proc = start("interaction", sqlite_db.url, f"K{n}", 30)
        first = proc.stdout.readline()  # the writer is writing once it has committed one
        time.sleep(rng.uniform(0, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        rest, _ = proc.communicate()
        lines = [first, *rest.splitlines()]
        committed += [line.split()[1] for line in lines if line.startswith("ok ")]
        assert not any(line.startswith("error") for line in lines), lines
    path = _sqlite_file(sqlite_db)
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {str(row[0]) for row in con.execute("SELECT id FROM interaction")}
    assert len(committed) >= 100 and set(committed) <= stored
