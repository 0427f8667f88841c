"""Backups and restores of the whole database, safe while the app and the worker run.

SQLite: SQLite's online backup API copies a consistent snapshot without stopping writers (WAL), and
restores by copying a checked file back through the same API, so open connections see the new content.
PostgreSQL: pg_dump (custom format) and, to restore, the dump's SQL applied in one transaction after
the schema is dropped, so a failure leaves the current database as it was.

A restore refuses a file that fails `PRAGMA integrity_check` or whose schema version (alembic_version)
this version of Liaison does not know, before anything is touched; an older schema is migrated up.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from crmcore.admin import config, sessions, settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.db import Database, alembic_config, head_revision, migrate
from crmcore.models import StaffUser, utcnow
from crmcore.privacy import audit

# liaison-[daily-|prerestore-]YYYYmmdd-HHMMSS[-n].db|.dump
NAME = re.compile(r"^liaison-(?:(daily|prerestore)-)?\d{8}-\d{6}(?:-\d+)?\.(db|dump)$")
PG_TIMEOUT_S = 3600


def backup_dir() -> Path:
    """Where backups go: CRM_BACKUP_DIR, default data/backups."""
    path = Path(config.get("CRM_BACKUP_DIR") or config.DATA_DIR / "backups")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _new_path(db: Database, kind: str | None) -> Path:
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    stem = f"liaison-{kind + '-' if kind else ''}{stamp}"
    ext = ".db" if db.is_sqlite else ".dump"
    path, n = backup_dir() / f"{stem}{ext}", 1
    while path.exists():
        path, n = backup_dir() / f"{stem}-{n}{ext}", n + 1
    return path


def create_backup(db: Database, *, actor: Actor | None, path: str | Path | None = None, kind: str | None = None) -> Path:
    """Back the database up to `path` (default: a new file in the backup folder); audited. None actor: the worker."""
    if actor is not None:
        require(actor, Perm.BACKUP)
    target = Path(path) if path else _new_path(db, kind)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        if db.is_sqlite:
            _sqlite_copy(_sqlite_file(db), part)
            _sqlite_single_file(part)
        else:
            _pg_dump(db.url, part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    with db.write() as session:
        audit.record(session, actor=actor, action="backup.create", entity="backup", entity_id=target.name, detail={"bytes": target.stat().st_size})
    return target


def list_backups(*, actor: Actor) -> list[dict]:
    """The backup files in the backup folder, newest first: name, path, bytes, created (UTC)."""
    require(actor, Perm.BACKUP)
    return _backups()


def _backups(kind: str | None = "any") -> list[dict]:
    rows = []
    for path in backup_dir().iterdir():
        match = NAME.match(path.name)
        if match and path.is_file() and (kind == "any" or match.group(1) == kind):
            stat = path.stat()
            rows.append({"name": path.name, "path": path, "bytes": stat.st_size, "modified": stat.st_mtime})
    return sorted(rows, key=lambda r: (r["modified"], r["name"]), reverse=True)


def prune(*, keep: int) -> list[str]:
    """Delete the daily backups beyond the newest `keep`; manual and pre-restore backups are kept."""
    removed = []
    for row in _backups("daily")[keep:]:
        row["path"].unlink(missing_ok=True)
        removed.append(row["name"])
    return removed


def daily_backup(db: Database) -> str | None:
    """The worker's job: one backup a day (skipped if today's exists), keeping `backup_keep` of them."""
    newest = _backups("daily")
    if newest and utcnow().timestamp() - newest[0]["modified"] < timedelta(hours=20).total_seconds():
        return None
    path = create_backup(db, actor=None, kind="daily")
    with db.read() as session:
        keep = settings.get(session, "backup_keep")
    removed = prune(keep=keep)
    return f"backed up to {path.name}, removed {len(removed)} old daily backup(s)"


def save_upload(name: str, data: bytes) -> Path:
    """Keep an uploaded backup file under uploads/ in the backup folder (its name made safe), for restore."""
    folder = backup_dir() / "uploads"
    folder.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[-100:] or "backup"
    path = folder / f"{utcnow():%Y%m%d-%H%M%S}-{safe}"
    path.write_bytes(data)
    return path


def restore(db: Database, *, actor: Actor, path: str | Path) -> dict:
    """Replace the database with a backup once it passes the checks; the current one is backed up first.

    Raises ValueError, naming the file and the reason, for a file that fails; nothing is changed then.
    """
    require(actor, Perm.BACKUP)
    source = Path(path)
    if not source.is_file():
        raise ValueError(f"Restore refused: there is no file {source.name!r}.")
    if db.is_sqlite:
        result = _restore_sqlite(db, source, actor=actor)
    else:
        result = _restore_pg(db, source, actor=actor)
    db.engine.dispose()  # pooled connections of this process start afresh on the restored database
    with db.write() as session:
        sessions.end_everyone(session)  # whoever the restored file names, everyone signs in again
        # The restored database may predate the restoring account: then the entry names it without the link.
        known = actor.id is not None and session.get(StaffUser, actor.id) is not None
        recorded_as = actor if known else Actor(id=None, username=actor.username, role=actor.role)
        audit.record(session, actor=recorded_as, action="backup.restore", entity="backup", entity_id=source.name, detail=result)
    return result


def _known_revisions() -> list[str]:
    """Every schema version this code knows, oldest first (all of them are at or below head)."""
    revisions = [r.revision for r in ScriptDirectory.from_config(alembic_config("sqlite://")).walk_revisions()]
    return list(reversed(revisions))


def check_revision(revision: str | None, *, name: str) -> None:
    """Refuse a schema version that is missing or unknown to this version of Liaison."""
    if revision is None:
        raise ValueError(f"Restore refused: {name} is not a Liaison database (it has no schema version); nothing was changed.")
    if revision not in _known_revisions():
        raise ValueError(
            f"Restore refused: {name} has schema version {revision!r}, which this version of Liaison does not know "
            f"(it knows up to {head_revision()!r}; the file may come from a newer version); nothing was changed."
        )


# --- SQLite -------------------------------------------------------------------------------------


def _sqlite_file(db: Database) -> Path:
    name = make_url(db.url).database
    if not name or name == ":memory:":
        raise ValueError("An in-memory database cannot be backed up.")
    return Path(name)


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=30)
    con.execute("PRAGMA busy_timeout = 30000")
    return con


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy one database into another with the online backup API (one step: a consistent snapshot)."""
    src, dst = _connect(source), _connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _sqlite_single_file(path: Path) -> None:
    """Make a backup one self-contained file (rollback journal, not WAL)."""
    con = _connect(path)
    try:
        con.execute("PRAGMA journal_mode = DELETE")
    finally:
        con.close()


def check_sqlite_file(path: Path, *, name: str) -> str:
    """The schema version of a SQLite file, once it passes integrity_check; ValueError otherwise."""
    try:
        con = _connect(path)
        try:
            problems = [row[0] for row in con.execute("PRAGMA integrity_check(5)")]
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = None
            if "alembic_version" in tables and problems == ["ok"]:
                row = con.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"Restore refused: {name} is not a readable SQLite database ({exc}); nothing was changed.") from None
    if problems != ["ok"]:
        raise ValueError(f"Restore refused: {name} fails the integrity check ({'; '.join(problems)}); nothing was changed.")
    check_revision(revision, name=name)
    return revision


def _restore_sqlite(db: Database, source: Path, *, actor: Actor) -> dict:
    live = _sqlite_file(db)
    with tempfile.TemporaryDirectory(dir=backup_dir()) as tmp:
        work = Path(tmp) / "restore.db"
        try:  # through SQLite, so a file still in WAL mode comes with what its -wal holds
            _sqlite_copy(source, work)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"Restore refused: {source.name} is not a readable SQLite database ({exc}); nothing was changed.") from None
        revision = check_sqlite_file(work, name=source.name)
        migrate(f"sqlite:///{work}")
        _sqlite_single_file(work)
        safety = create_backup(db, actor=actor, kind="prerestore")
        _sqlite_copy(work, live)
    return {"file_revision": revision, "now_revision": head_revision(), "previous_saved_as": safety.name}


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_env(url: str) -> tuple[list[str], dict]:
    """libpq connection arguments for `url`, the password passed in the environment, not argv."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    args = ["--dbname", parsed.database or "postgres", "--host", parsed.host or "localhost", "--port", str(parsed.port or 5432)]
    if parsed.username:
        args += ["--username", parsed.username]
    return args, env


def _run(argv: list[str], *, env: dict, what: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(argv, env=env, input=stdin, capture_output=True, timeout=PG_TIMEOUT_S)
    except FileNotFoundError:
        raise ValueError(f"{what} needs {argv[0]} (install the PostgreSQL client tools).") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise ValueError(f"{what} failed: {message[-1] if message else 'exit status ' + str(done.returncode)}")
    return done.stdout


def _pg_dump(url: str, target: Path) -> None:
    args, env = _pg_env(url)
    _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(target), *args], env=env, what="pg_dump")


def _pg_archive_revision(source: Path) -> str | None:
    """The alembic_version of a pg_dump archive, read from the archive itself (nothing is restored)."""
    name = source.name
    try:
        data = _run(["pg_restore", "--data-only", "--table=alembic_version", "--file=-", str(source)], env=dict(os.environ), what="reading the backup")
    except ValueError as exc:
        raise ValueError(f"Restore refused: {name} is not a readable pg_dump archive ({exc}); nothing was changed.") from None
    lines = data.decode(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line:
            value = lines[i + 1] if i + 1 < len(lines) else "\\."
            return None if value == "\\." else value.strip()
    return None


def _restore_pg(db: Database, source: Path, *, actor: Actor) -> dict:
    revision = _pg_archive_revision(source)
    check_revision(revision, name=source.name)
    _run(["pg_restore", "--list", str(source)], env=dict(os.environ), what=f"Checking {source.name}")
    script = _run(["pg_restore", "--no-owner", "--no-privileges", "--file=-", str(source)], env=dict(os.environ), what=f"Reading {source.name}")
    safety = create_backup(db, actor=actor, kind="prerestore")
    db.engine.dispose()
    args, env = _pg_env(db.url)
    # One transaction: the old schema is dropped only if the whole dump applies.
    sql = b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n" + script
    try:
        _run(["psql", "--quiet", "--no-psqlrc", "--single-transaction", "-v", "ON_ERROR_STOP=1", *args], env=env, stdin=sql, what=f"Restoring {source.name}")
    except ValueError as exc:
        raise ValueError(f"Restore refused: {exc}; the current database is unchanged.") from None
    migrate(db.url)
    return {"file_revision": revision, "now_revision": head_revision(), "previous_saved_as": safety.name}
