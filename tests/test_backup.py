"""Backups while the app writes, restores that check the file first, daily backups keeping N, the CLI."""

import os
import shutil
import sqlite3
import threading
import time

import pytest
from sqlalchemy import func, select, text

from crmcore import cli, worker
from crmcore.admin import backup, restore, settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.db import migrate
from crmcore.models import AuditLog, Branch


@pytest.fixture(autouse=True)
def backup_folder(tmp_path, monkeypatch):
    folder = tmp_path / "backups"
    monkeypatch.setenv("CRM_BACKUP_DIR", str(folder))
    return folder


def branch_codes(db) -> list[str]:
    with db.read() as s:
        return sorted(s.execute(select(Branch.code)).scalars())


def add_branch(db, code: str) -> None:
    with db.write() as s:
        s.add(Branch(code=code, name=f"Branch {code}"))


def test_backup_then_restore_brings_back_the_backed_up_state(db, staff, backup_folder):
    add_branch(db, "A")
    path = backup.create_backup(db, actor=staff["admin"])
    assert path.parent == backup_folder and path.stat().st_size > 0
    add_branch(db, "B")
    result = restore.restore(db, actor=staff["admin"], path=path)
    assert branch_codes(db) == ["A"]
    assert result["file_revision"] == result["now_revision"]
    # The database as it was before the restore was saved first.
    assert (backup_folder / result["previous_saved_as"]).exists()
    with db.read() as s:
        actions = s.execute(select(AuditLog.action).order_by(AuditLog.id)).scalars().all()
    assert actions[-1] == "backup.restore"
    names = [row["name"] for row in backup.list_backups(actor=staff["admin"])]
    assert names == sorted(names, reverse=True) and {path.name, result["previous_saved_as"]} <= set(names)


def test_restore_refuses_a_file_of_an_unknown_schema_version(db, staff):
    add_branch(db, "A")
    with db.write() as s:
        s.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    path = backup.create_backup(db, actor=staff["admin"])
    with db.write() as s:
        s.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": restore.head_revision()})
    add_branch(db, "B")
    with pytest.raises(ValueError, match=r"Restore refused: .* schema version '9999'.*nothing was changed"):
        restore.restore(db, actor=staff["admin"], path=path)
    assert branch_codes(db) == ["A", "B"]


def test_restore_refuses_a_file_that_is_not_a_backup(db, staff, backup_folder):
    add_branch(db, "A")
    junk = backup.backup_dir() / "junk.bin"
    junk.write_bytes(b"not a database at all " * 500)
    with pytest.raises(ValueError, match="Restore refused: junk.bin is not a readable"):
        restore.restore(db, actor=staff["admin"], path=junk)
    with pytest.raises(ValueError, match="there is no file 'missing.db'"):
        restore.restore(db, actor=staff["admin"], path=backup_folder / "missing.db")
    assert branch_codes(db) == ["A"]
    assert not any("prerestore" in p.name for p in backup_folder.iterdir())


def test_restore_refuses_a_corrupt_sqlite_file_and_leaves_the_database_untouched(sqlite_db, backup_folder):
    for i in range(300):
        add_branch(sqlite_db, f"B{i:03}")
    path = backup.create_backup(sqlite_db, actor=CLI_ACTOR)
    size = path.stat().st_size
    with path.open("r+b") as f:  # scribble over the middle pages
        f.seek(size // 2)
        f.write(os.urandom(8192))
    add_branch(sqlite_db, "LATE")
    with pytest.raises(ValueError, match=r"Restore refused: .*(integrity check|not a readable)"):
        restore.restore(sqlite_db, actor=CLI_ACTOR, path=path)
    assert len(branch_codes(sqlite_db)) == 301
    with sqlite3.connect(backup._sqlite_file(sqlite_db)) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_restore_refuses_a_sqlite_file_without_a_schema_version(sqlite_db, tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (a)")
    with pytest.raises(ValueError, match="not a Liaison database"):
        restore.restore(sqlite_db, actor=CLI_ACTOR, path=other)


def test_restore_of_an_older_schema_migrates_it_up(sqlite_db, tmp_path):
    old = tmp_path / "old.db"
    migrate(f"sqlite:///{old}", revision="0001")
    with sqlite3.connect(old) as con:
        con.execute("INSERT INTO branch (code, name) VALUES ('OLD', 'From the old version')")
    result = restore.restore(sqlite_db, actor=CLI_ACTOR, path=old)
    assert result["file_revision"] == "0001" and result["now_revision"] == restore.head_revision()
    assert branch_codes(sqlite_db) == ["OLD"]
    with sqlite_db.read() as s:
        assert s.execute(text("SELECT version_num FROM alembic_version")).scalar() == restore.head_revision()


def test_online_backup_while_a_writer_keeps_writing(sqlite_db, tmp_path):
    stop, errors, written = threading.Event(), [], []

    def writer():
        i = 0
        while not stop.is_set():
            try:
                add_branch(sqlite_db, f"W{i:06}")
                written.append(i)
                i += 1
            except Exception as exc:  # noqa: BLE001 - any error is a failure of the test
                errors.append(repr(exc))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.3)
        paths = [backup.create_backup(sqlite_db, actor=CLI_ACTOR, path=tmp_path / f"live-{n}.db") for n in range(3)]
    finally:
        stop.set()
        thread.join()
    assert errors == []
    for path in paths:
        with sqlite3.connect(path) as con:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            in_backup = con.execute("SELECT count(*) FROM branch").fetchone()[0]
            # A consistent snapshot: a prefix of what the writer committed.
            assert con.execute("SELECT max(code) FROM branch").fetchone()[0] == f"W{in_backup - 1:06}"
        assert not path.with_name(path.name + "-wal").exists()
    assert len(branch_codes(sqlite_db)) == len(written) > 0


def test_daily_backups_keep_the_newest_n_and_spare_manual_ones(db, staff, backup_folder):
    with db.write() as s:
        settings.put(s, actor=staff["admin"], key="backup_keep", value=2)
    manual = backup.create_backup(db, actor=staff["admin"])
    assert backup.daily_backup(db).startswith("backed up to liaison-daily-")
    assert backup.daily_backup(db) is None  # one a day
    for n in range(3):
        made = backup.create_backup(db, actor=None, kind="daily")
        os.utime(made, (time.time() + n + 1, time.time() + n + 1))
    assert len(backup.prune(keep=2)) == 2
    daily = sorted(p.name for p in backup_folder.iterdir() if "daily" in p.name)
    assert len(daily) == 2 and manual.exists()


def test_the_worker_runs_the_daily_backup(db, backup_folder):
    worker.run(db, jobs=[job for job in worker.JOBS if job.name == "backup"], once=True)
    assert [p.name.startswith("liaison-daily-") for p in backup_folder.iterdir() if backup.NAME.match(p.name)] == [True]


def test_cli_backup_and_restore(db, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABASE_URL", db.url)
    add_branch(db, "A")
    target = tmp_path / "cli-backup"
    assert cli.main(["backup", str(target)]) == 0
    assert target.exists() and "Backed up" in capsys.readouterr().out
    add_branch(db, "B")
    assert cli.main(["restore", str(target)]) == 1
    assert "add --yes" in capsys.readouterr().err and branch_codes(db) == ["A", "B"]
    assert cli.main(["restore", str(target), "--yes"]) == 0
    assert branch_codes(db) == ["A"]
    assert cli.main(["restore", str(tmp_path / "nothing-here"), "--yes"]) == 1
    assert "Restore refused" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="needs pg_dump")
def test_a_truncated_postgresql_dump_is_refused_without_changing_anything(db, staff):
    if db.is_sqlite:
        pytest.skip("PostgreSQL only")
    for i in range(50):
        add_branch(db, f"B{i:02}")
    path = backup.create_backup(db, actor=staff["admin"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    add_branch(db, "LATE")
    with pytest.raises(ValueError, match="Restore refused"):
        restore.restore(db, actor=staff["admin"], path=path)
    assert len(branch_codes(db)) == 51
    with db.read() as s:
        assert s.execute(select(func.count()).select_from(AuditLog)).scalar() > 0
