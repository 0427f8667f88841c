"""A restore cannot be turned into a weapon: crafted files are refused and the live database stays as it was.

Each crafted file starts as a genuine backup of a database with data and staff, then gets one change an
attacker (or an unlucky administrator) could make. Also: restoring a pre-restore copy always works,
backups are verified and owner-only, a corrupted database is seen and rotation keeps the last good backup.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from crmcore.admin import backup, restore, schemas, settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.admin.permissions import Role
from crmcore.db import Database, migrate
from crmcore.models import AuditLog, Branch, Patron, StaffUser
from tests.conftest import fresh_sqlite

# The two triggers from the issue: one empties the audit log, one makes a viewer an admin at sign-in.
WIPE_AUDIT = "CREATE TRIGGER wipe AFTER INSERT ON audit_log BEGIN DELETE FROM audit_log; END"
PROMOTE = "CREATE TRIGGER promote AFTER UPDATE OF last_login_at ON staff_user BEGIN UPDATE staff_user SET role = 'admin' WHERE id = NEW.id; END"

CRAFTS = {
    "two triggers": ([WIPE_AUDIT, PROMOTE], r"trigger promote \(Liaison creates no such object\); trigger wipe"),
    "a view": (["CREATE VIEW everyone AS SELECT username, password_hash FROM staff_user"], r"view everyone \(Liaison creates no such object\)"),
    "a missing table": (["DROP TABLE bounce"], r"table bounce is missing"),
    "an extra table": (["CREATE TABLE loot (a TEXT)"], r"table loot \(Liaison creates no such object\)"),
    "an extra column": (["ALTER TABLE branch ADD COLUMN note TEXT"], r"table branch has other columns than Liaison creates \(extra column\(s\) note\)"),
    "an extra index": (["CREATE INDEX ix_sneaky ON patron (email)"], r"index ix_sneaky \(Liaison creates no such object\)"),
    # Same columns, but a CHECK that fails every audit entry: the app could no longer write anything.
    "a changed table definition": ([lambda con: redefine(con, "audit_log", ", CHECK (0))")], r"table audit_log is defined differently from what Liaison creates; nothing"),
    "a foreign-key violation": (["UPDATE patron SET branch_id = 999"], r"fails the foreign key check \(row \d+ of patron refers to a missing row of branch\)"),
    "an unknown version": (["UPDATE alembic_version SET version_num = 'ffff'"], r"schema version 'ffff', which this version of Liaison does not know"),
}


@pytest.fixture(autouse=True)
def backup_folder(tmp_path, monkeypatch):
    folder = tmp_path / "backups"
    monkeypatch.setenv("CRM_BACKUP_DIR", str(folder))
    return folder


def add_branch(db, code: str) -> None:
    with db.write() as s:
        s.add(Branch(code=code, name=f"Branch {code}"))


def branch_codes(db) -> list[str]:
    with db.read() as s:
        return sorted(s.execute(select(Branch.code)).scalars())


def live_state(db) -> dict:
    """What the app reads, and the schema, of the live database."""
    with db.read() as s:
        state = {
            "branches": sorted(s.execute(select(Branch.code)).scalars()),
            "staff": sorted(s.execute(select(StaffUser.username, StaffUser.role)).all()),
            "audit entries": s.execute(select(func.count()).select_from(AuditLog)).scalar(),
        }
    if db.is_sqlite:
        con = sqlite3.connect(backup._sqlite_file(db))
        try:
            state["schema"] = schemas.sqlite_schema(con)
            state["integrity"] = con.execute("PRAGMA integrity_check").fetchall()
        finally:
            con.close()
    else:
        with db.engine.connect() as conn:
            state["schema"] = schemas.pg_schema(conn, "public")
    return state


@pytest.fixture
def library(sqlite_db, password_hash):
    """A live SQLite database with branches, a patron and a viewer (id 4 would be anyone's)."""
    for code in ("MAIN", "EAST"):
        add_branch(sqlite_db, code)
    with sqlite_db.write() as s:
        s.add(StaffUser(username="vic", role=Role.VIEWER.value, password_hash=password_hash))
        s.add(Patron(ils_id="P-1", first_name="Ada", last_name="Byron", branch_id=1))
    return sqlite_db


def redefine(con: sqlite3.Connection, table: str, ending: str) -> None:
    """Re-create `table` (and its indexes) with its definition's closing parenthesis replaced by `ending`."""
    sql = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    indexes = [r[0] for r in con.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,))]
    con.execute(f"DROP TABLE {table}")
    con.execute(sql[: sql.rindex(")")] + ending)
    for index in indexes:
        con.execute(index)


def crafted(db, tmp_path: Path, statements: list) -> Path:
    """A genuine backup of `db` with `statements` run on it (foreign keys off, as an attacker's sqlite3 would)."""
    path = backup.create_backup(db, actor=CLI_ACTOR, path=tmp_path / "crafted.db")
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA foreign_keys = OFF")
        for statement in statements:
            statement(con) if callable(statement) else con.execute(statement)
        con.commit()
    finally:
        con.close()
    return path


@pytest.mark.parametrize("craft", list(CRAFTS), ids=list(CRAFTS))
def test_a_crafted_sqlite_file_is_refused_and_the_live_database_is_intact(library, tmp_path, backup_folder, craft):
    statements, reason = CRAFTS[craft]
    path = crafted(library, tmp_path, statements)
    add_branch(library, "LATE")  # the live database moved on after the backup
    before = live_state(library)
    with pytest.raises(ValueError, match=r"Restore refused: crafted\.db .*" + reason):
        restore.restore(library, actor=CLI_ACTOR, path=path)
    assert live_state(library) == before
    assert before["schema"] == schemas.sqlite_reference(restore.head_revision())  # no trigger reached the live file
    assert not list(backup_folder.glob("liaison-prerestore-*"))  # refused before anything was touched
    assert not list(backup_folder.glob(".restore-*"))  # and the work files are gone


def test_a_file_holding_only_alembic_version_is_refused(library, tmp_path):
    path = tmp_path / "only-version.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        con.execute("INSERT INTO alembic_version VALUES (?)", (restore.head_revision(),))
    before = live_state(library)
    with pytest.raises(ValueError, match=r"only-version\.db does not hold the schema .*table audit_log is missing.* and \d+ more; nothing was changed"):
        restore.restore(library, actor=CLI_ACTOR, path=path)
    assert live_state(library) == before


def test_the_genuine_file_the_crafts_start_from_is_restored(library, tmp_path):
    path = crafted(library, tmp_path, [])
    add_branch(library, "LATE")
    restore.restore(library, actor=CLI_ACTOR, path=path)
    assert branch_codes(library) == ["EAST", "MAIN"]


def test_an_index_a_killed_bulk_load_left_missing_is_tolerated_and_rebuilt(library, tmp_path):
    path = crafted(library, tmp_path, ["DROP INDEX ix_patron_name"])
    restore.restore(library, actor=CLI_ACTOR, path=path)
    assert live_state(library)["schema"] == schemas.sqlite_reference(restore.head_revision())


def test_an_older_file_is_checked_against_its_own_version(sqlite_db, tmp_path):
    old = tmp_path / "old.db"
    migrate(f"sqlite:///{old}", revision="0001")
    with sqlite3.connect(old) as con:
        con.execute(WIPE_AUDIT)
    with pytest.raises(ValueError, match=r"version '0001': trigger wipe \(Liaison creates no such object\)"):
        restore.restore(sqlite_db, actor=CLI_ACTOR, path=old)


def test_restoring_the_pre_restore_copy_brings_the_database_back(db, staff, backup_folder):
    add_branch(db, "OLD")
    first = backup.create_backup(db, actor=staff["admin"])
    add_branch(db, "NEW")
    before = live_state(db)
    result = restore.restore(db, actor=staff["admin"], path=first)
    assert branch_codes(db) == ["OLD"]
    again = restore.restore(db, actor=staff["admin"], path=backup_folder / result["previous_saved_as"])
    assert branch_codes(db) == ["NEW", "OLD"]
    after = live_state(db)
    assert after["staff"] == before["staff"] and after["schema"] == before["schema"]
    assert again["previous_saved_as"] != result["previous_saved_as"]


def test_a_page_size_other_than_the_live_one_is_restored(library, tmp_path):
    path = tmp_path / "big-pages.db"
    source = backup.create_backup(library, actor=CLI_ACTOR, path=tmp_path / "source.db")
    con = sqlite3.connect(source)
    con.execute("PRAGMA page_size = 16384")
    con.execute("VACUUM INTO ?", (str(path),))
    con.close()
    add_branch(library, "LATE")
    restore.restore(library, actor=CLI_ACTOR, path=path)
    assert branch_codes(library) == ["EAST", "MAIN"]


# --- files: owner-only whatever the umask; an unwritable folder is a clear error ------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backups_and_their_folder_are_owner_only_under_umask_022(db, staff, backup_folder):
    old = os.umask(0o022)
    try:
        made = backup.create_backup(db, actor=staff["admin"])
        result = restore.restore(db, actor=staff["admin"], path=made)
        upload = backup.save_upload("mine.db", made.read_bytes())
        backup.check_database(db)
    finally:
        os.umask(old)
    assert mode(backup_folder) == 0o700 and mode(upload.parent) == 0o700
    for path in (made, backup_folder / result["previous_saved_as"], upload, *backup_folder.glob(backup.HEALTH_FILE)):
        assert mode(path) == 0o600, path
    assert not [p for p in backup_folder.rglob("*") if p.is_file() and mode(p) & 0o077]


def test_an_existing_open_backup_folder_is_made_owner_only(tmp_path, monkeypatch):
    folder = tmp_path / "shared-backups"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    monkeypatch.setenv("CRM_BACKUP_DIR", str(folder))
    assert backup.backup_dir() == folder and mode(folder) == 0o700


@pytest.fixture
def unwritable_folder(tmp_path, monkeypatch):
    """A backup folder Liaison cannot write: read-only, or (as root, who may write anywhere) under a regular file."""
    if os.geteuid() == 0:
        (tmp_path / "a-file").write_text("not a folder")
        folder = tmp_path / "a-file" / "backups"
    else:
        folder = tmp_path / "read-only"
        folder.mkdir()
        os.chmod(folder, 0o500)
    monkeypatch.setenv("CRM_BACKUP_DIR", str(folder))
    yield folder
    if folder.is_dir():
        os.chmod(folder, 0o700)


def test_an_unwritable_backup_folder_is_a_clear_error_for_backup_and_restore(library, tmp_path, unwritable_folder):
    good = tmp_path / "good.db"
    backup.create_backup(library, actor=CLI_ACTOR, path=good)
    before = live_state(library)
    with pytest.raises(ValueError, match=rf"backup folder {unwritable_folder}"):
        backup.create_backup(library, actor=CLI_ACTOR)
    with pytest.raises(ValueError, match=rf"backup folder {unwritable_folder}"):
        restore.restore(library, actor=CLI_ACTOR, path=good)
    assert live_state(library) == before


def test_the_backup_page_shows_an_unwritable_folder_as_an_error(app, unwritable_folder):
    at = app(role="admin", page="pages/backup.py").run()
    assert not at.exception
    assert str(unwritable_folder) in at.error[0].value


# --- corruption: seen, never counted as a backup, never pruned away ------------------------------


def corrupt(path: Path, *, pages: int = 20, seed: int = 1) -> None:
    """Overwrite `pages` pages of a SQLite file with random bytes, past its first pages."""
    import random

    rng = random.Random(seed)
    con = sqlite3.connect(path)
    size, count = con.execute("PRAGMA page_size").fetchone()[0], con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    assert count > pages + 10, "the database is too small to corrupt meaningfully"
    with path.open("r+b") as f:
        for page in rng.sample(range(5, count), pages):
            f.seek(page * size)
            f.write(rng.randbytes(size))


def test_a_corrupted_database_is_flagged_its_backup_does_not_count_and_rotation_keeps_the_good_ones(sqlite_db, tmp_path, backup_folder, staff_admin):
    with sqlite_db.write() as s:
        s.add_all(Branch(code=f"B{i:05}", name=f"A branch with a long enough name {i}" * 3) for i in range(3000))
        settings.put(s, actor=staff_admin, key="backup_keep", value=1)
    assert backup.check_database(sqlite_db).endswith("passes the integrity check")
    goods = []
    for n in range(2):
        goods.append(backup.create_backup(sqlite_db, actor=None, kind="daily"))
        os.utime(goods[-1], (time.time() - 86400 * (3 - n),) * 2)
    assert backup.health(actor=staff_admin) is None

    # The damage, as the issue found it: 20 pages of the database randomised.
    sqlite_db.dispose()
    damaged_file = tmp_path / "damaged" / "crm.db"
    damaged_file.parent.mkdir()
    shutil.copy(backup._sqlite_file(sqlite_db), damaged_file)
    corrupt(damaged_file)
    damaged = Database(f"sqlite:///{damaged_file}")
    try:
        assert backup.check_database(damaged).endswith("FAILS the integrity check")
        warning = backup.health(actor=staff_admin)
        assert warning and re.search(r"failed its integrity check at .* \(.*([Pp]age \d+|malformed)", warning)

        with pytest.raises(ValueError, match=r"(?s)failed verification \(.*\); it is kept as damaged-liaison-daily-.* and does not count as a backup"):
            backup.daily_backup(damaged)
        listed = [row["name"] for row in backup.list_backups(actor=staff_admin)]
        assert sorted(listed) == sorted(p.name for p in goods)  # the damaged copy is not counted
        assert backup.prune(keep=0) == []  # rotation deletes nothing while the check fails
        assert all(p.exists() for p in goods)
        assert "backup" in backup.health(actor=staff_admin)
    finally:
        damaged.dispose()

    # Once the database passes again, rotation resumes; the last good backup is one a restore accepts.
    assert backup.check_database(sqlite_db).endswith("passes the integrity check")
    assert backup.prune(keep=1) == [goods[0].name]
    restore.restore(sqlite_db, actor=staff_admin, path=goods[1])


def test_a_damaged_live_database_is_replaced_by_a_good_backup_its_copy_kept_aside(sqlite_db, staff_admin, backup_folder):
    with sqlite_db.write() as s:
        s.add_all(Branch(code=f"B{i:05}", name=f"A branch with a long enough name {i}" * 3) for i in range(3000))
    good = backup.create_backup(sqlite_db, actor=staff_admin)
    sqlite_db.dispose()
    corrupt(backup._sqlite_file(sqlite_db))
    assert backup.check_database(sqlite_db).endswith("FAILS the integrity check")
    result = restore.restore(sqlite_db, actor=staff_admin, path=good)
    assert result["previous_saved_as"].startswith("damaged-liaison-prerestore-")
    assert (backup_folder / result["previous_saved_as"]).exists()
    assert backup.check_database(sqlite_db).endswith("passes the integrity check")
    assert len(branch_codes(sqlite_db)) == 3000


@pytest.mark.parametrize("page", ["pages/backup.py", "pages/dashboard.py"])
def test_every_page_shows_admins_a_failed_integrity_check(app, tmp_path, staff, page):
    damaged_file = tmp_path / "elsewhere" / "crm.db"
    damaged_file.parent.mkdir()
    migrate(f"sqlite:///{damaged_file}")
    corrupt(damaged_file)
    elsewhere = Database(f"sqlite:///{damaged_file}")
    backup.check_database(elsewhere)
    elsewhere.dispose()
    at = app(role="admin", page=page).run()
    assert not at.exception and ["failed its integrity check" in e.value for e in at.error] == [True]
    at = app(role="manager", page="pages/dashboard.py").run()  # others cannot act on it
    assert not at.exception and not at.error


def test_what_a_killed_backup_or_restore_left_behind_is_swept_once_old(sqlite_db, backup_folder):
    backup.backup_dir()
    work, part, fresh = backup_folder / ".restore-abc", backup_folder / "liaison-20000101-000000.db.part", backup_folder / "liaison-20990101-000000.db.part"
    work.mkdir()
    (work / "restore.db").write_bytes(b"x")
    part.write_bytes(b"x")
    fresh.write_bytes(b"x")
    for path in (work, part):
        os.utime(path, (time.time() - 2 * 86400,) * 2)
    backup.daily_backup(sqlite_db)
    assert not work.exists() and not part.exists() and fresh.exists()


def test_the_daily_backup_is_not_retried_every_hour_after_a_damaged_copy(sqlite_db, backup_folder):
    backup.backup_dir()
    (backup_folder / f"{backup.DAMAGED}liaison-daily-20000101-000000.db").write_bytes(b"x")
    assert backup.daily_backup(sqlite_db) is None


@pytest.fixture
def staff_admin(sqlite_db, password_hash):
    from crmcore.admin.permissions import Actor

    with sqlite_db.write() as s:
        user = StaffUser(username="root", role=Role.ADMIN.value, password_hash=password_hash)
        s.add(user)
        s.flush()
        return Actor(id=user.id, username=user.username, role=Role.ADMIN)


def test_the_worker_checks_the_database_when_it_starts(sqlite_db, staff_admin):
    from crmcore import worker

    worker.run(sqlite_db, jobs=[job for job in worker.JOBS if job.name == "integrity check"], once=True)
    state = backup._read_health()["quick_check"]
    assert state["ok"] is True and backup.health(actor=staff_admin) is None


# --- PostgreSQL: the archive's contents are checked, and a restored schema that differs is undone ------


@pytest.fixture
def pg(db, staff):
    if db.is_sqlite:
        pytest.skip("PostgreSQL only")
    if shutil.which("pg_dump") is None:
        pytest.skip("needs pg_dump")
    for code in ("MAIN", "EAST"):
        add_branch(db, code)
    return db


def pg_crafted(db, tmp_path, make: list[str], undo: list[str]) -> Path:
    """A genuine dump of `db` taken while `make` was applied (undone afterwards in the live database)."""
    with db.write() as s:
        for statement in make:
            s.execute(text(statement))
    try:
        return backup.create_backup(db, actor=None, path=tmp_path / "crafted.dump")
    finally:
        with db.write() as s:
            for statement in undo:
                s.execute(text(statement))


PG_CRAFTS = {
    "a trigger": (
        [
            "CREATE FUNCTION wipe() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN DELETE FROM audit_log; RETURN NULL; END$$",
            "CREATE TRIGGER wipe AFTER INSERT ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION wipe()",
        ],
        ["DROP TRIGGER wipe ON audit_log", "DROP FUNCTION wipe()"],
        r"FUNCTION public wipe\(\).*Liaison creates no such object.*TRIGGER public audit_log wipe",
    ),
    "a view": (["CREATE VIEW everyone AS SELECT username, password_hash FROM staff_user"], ["DROP VIEW everyone"], r"VIEW public everyone"),
    "an extra table": (["CREATE TABLE loot (a text)"], ["DROP TABLE loot"], r"table loot \(Liaison creates no such table\)"),
    "an extra index": (["CREATE INDEX ix_sneaky ON patron (email)"], ["DROP INDEX ix_sneaky"], r"index ix_sneaky"),
}


@pytest.mark.parametrize("craft", list(PG_CRAFTS), ids=list(PG_CRAFTS))
def test_a_crafted_postgresql_dump_is_refused_before_anything_changes(pg, staff, tmp_path, backup_folder, craft):
    make, undo, reason = PG_CRAFTS[craft]
    path = pg_crafted(pg, tmp_path, make, undo)
    add_branch(pg, "LATE")
    before = live_state(pg)
    with pytest.raises(ValueError, match=r"Restore refused: crafted\.dump does not hold the schema .*" + reason):
        restore.restore(pg, actor=staff["admin"], path=path)
    assert live_state(pg) == before
    assert not list(backup_folder.glob("liaison-prerestore-*"))


def test_a_postgresql_dump_whose_statements_differ_from_the_reference_is_refused(pg, staff, tmp_path, backup_folder):
    # An extra column is not in the archive's table of contents: the statements themselves are compared too
    # (an archive stores each object's SQL as text, where a crafted one could hide anything).
    path = pg_crafted(pg, tmp_path, ["ALTER TABLE branch ADD COLUMN note text"], ["ALTER TABLE branch DROP COLUMN note"])
    add_branch(pg, "LATE")
    before = live_state(pg)
    with pytest.raises(ValueError, match=r"Restore refused: crafted\.dump .*a statement Liaison's schema does not have: CREATE TABLE public\.branch"):
        restore.restore(pg, actor=staff["admin"], path=path)
    assert live_state(pg) == before
    assert not list(backup_folder.glob("liaison-prerestore-*"))


def test_a_postgresql_dump_with_a_deferred_index_missing_is_restored_and_the_index_rebuilt(pg, staff, tmp_path):
    path = pg_crafted(pg, tmp_path, ["DROP INDEX ix_patron_name"], ["CREATE INDEX ix_patron_name ON patron (last_name, first_name)"])
    add_branch(pg, "LATE")
    restore.restore(pg, actor=staff["admin"], path=path)
    assert branch_codes(pg) == ["EAST", "MAIN"]
    assert "index ix_patron_name" in live_state(pg)["schema"]


def test_the_postgresql_reference_is_what_a_migrated_database_holds(pg):
    engine = create_engine(pg.url)
    try:
        with engine.connect() as conn:
            found = schemas.pg_schema(conn, "public")
    finally:
        engine.dispose()
    assert schemas.differences(found, schemas.pg_reference(pg.url, restore.head_revision())) == []
    assert not [key for key in found if key.split()[0] in ("trigger", "function", "view", "rule", "policy")]


def test_fresh_sqlite_databases_match_the_reference(sqlite_template, tmp_path):
    db = fresh_sqlite(sqlite_template, tmp_path)
    con = sqlite3.connect(backup._sqlite_file(db))
    try:
        assert schemas.differences(schemas.sqlite_schema(con), schemas.sqlite_reference(restore.head_revision())) == []
    finally:
        con.close()
        db.dispose()
