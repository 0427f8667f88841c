"""Backups of the whole database, safe while the app and the worker run, each verified before it counts.

SQLite: SQLite's online backup API copies a consistent snapshot without stopping writers (WAL).
PostgreSQL: pg_dump (custom format). Restoring one is `crmcore.admin.restore`.

Every backup is verified before it counts (integrity_check of the copy; on PostgreSQL pg_restore reads
the archive): one that fails is kept as `damaged-<name>`, never listed, counted or pruned. The worker
runs `PRAGMA quick_check` when it starts and daily; a failure is reported by `health()` and stops
rotation from deleting any backup. Backups, work files and the folder are owner-only whatever the umask.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from crmcore import files
from crmcore.admin import config, settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.db import Database
from crmcore.models import utcnow
from crmcore.privacy import audit

log = logging.getLogger("liaison.backup")

# liaison-[daily-|prerestore-]YYYYmmdd-HHMMSS[-n].db|.dump
NAME = re.compile(r"^liaison-(?:(daily|prerestore)-)?\d{8}-\d{6}(?:-\d+)?\.(db|dump)$")
COPIED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(db|dump)$")  # a backup an operator copied into the folder (too big to upload)
DAMAGED = "damaged-"  # a backup that failed verification: kept for inspection, never matches NAME
HEALTH_FILE = "health.json"
PG_TIMEOUT_S = 3600
SHOWN_PROBLEMS = 5


class BackupDamaged(ValueError):
    """A backup was taken but fails verification; it is kept at `path` (damaged-<name>), not counted."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


def backup_dir() -> Path:
    """Where backups go: CRM_BACKUP_DIR, default data/backups (made owner-only)."""
    path = Path(config.get("CRM_BACKUP_DIR") or config.DATA_DIR / "backups")
    _private_dir(path)
    return path


def _private_dir(path: Path) -> None:
    """Make `path` (and missing parents) a folder only its owner can enter; never adds rights it lacks."""
    try:
        files.private_dir(path)
    except OSError as exc:
        raise ValueError(f"The backup folder {path} cannot be used ({exc.strerror or exc}); check that it exists and that Liaison may write to it.") from None


def _writable(folder: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"Liaison may not write to the backup folder {folder} (permission denied); nothing was changed. Give the account Liaison runs as write access to it, or set CRM_BACKUP_DIR.")


def _new_path(db: Database, kind: str | None) -> Path:
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    stem = f"liaison-{kind + '-' if kind else ''}{stamp}"
    ext = ".db" if db.is_sqlite else ".dump"
    folder = backup_dir()
    path, n = folder / f"{stem}{ext}", 1
    while path.exists() or (folder / f"{DAMAGED}{path.name}").exists():
        path, n = folder / f"{stem}-{n}{ext}", n + 1
    return path


def create_backup(db: Database, *, actor: Actor | None, path: str | Path | None = None, kind: str | None = None) -> Path:
    """Back the database up to `path` (default: a new file in the backup folder), verified; audited. None actor: the worker.

    Raises ValueError when the folder cannot be written, or when the copy fails verification (it is then
    kept as damaged-<name> and does not count as a backup).
    """
    if actor is not None:
        require(actor, Perm.BACKUP)
    if path:
        target = Path(path)
        if not target.parent.exists():
            _private_dir(target.parent)
    else:
        target = _new_path(db, kind)
    _take(db, target)
    with db.write() as session:
        audit.record(session, actor=actor, action="backup.create", entity="backup", entity_id=target.name, detail={"bytes": target.stat().st_size})
    return target


def _take(db: Database, target: Path) -> None:
    """Copy the database to `target` (owner-only), verify the copy, and only then give it its name."""
    _writable(target.parent)
    part = target.with_name(target.name + ".part")
    problem = None
    try:
        part.unlink(missing_ok=True)
        files.private_file(part)
        if db.is_sqlite:
            _sqlite_copy(_sqlite_file(db), part)
            _sqlite_single_file(part)
        else:
            _pg_dump(db.url, part)
    except (OSError, sqlite3.OperationalError) as exc:  # the folder, the disk, a lock: nothing worth keeping
        part.unlink(missing_ok=True)
        raise ValueError(f"The backup to {target} failed ({exc}); no backup was made.") from None
    except sqlite3.DatabaseError as exc:  # what was copied cannot be read: kept below for inspection
        problem = str(exc)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    problem = problem or _verify(db, part)
    if problem:
        damaged = target.with_name(DAMAGED + target.name)
        os.replace(part, damaged)
        message = f"The backup {target.name} failed verification ({problem}); it is kept as {damaged.name} and does not count as a backup."
        _record("backup", ok=False, detail=message)
        raise BackupDamaged(message, damaged)
    os.replace(part, target)
    _record("backup", ok=True, detail=f"{target.name} verified")


def _verify(db: Database, path: Path) -> str | None:
    """Why the backup at `path` cannot be trusted, or None: integrity_check (SQLite) or pg_restore reads it."""
    if db.is_sqlite:
        try:
            con = _connect(path)
            try:
                problems = [row[0] for row in con.execute("PRAGMA integrity_check(5)")]
            finally:
                con.close()
        except sqlite3.DatabaseError as exc:
            return str(exc)
        return None if problems == ["ok"] else _one_line(problems)
    try:
        _run(["pg_restore", "--list", str(path)], env=dict(os.environ), what="pg_restore --list")
    except ValueError as exc:
        return str(exc)
    return None


def list_backups(*, actor: Actor) -> list[dict]:
    """The backup files in the backup folder, newest first: name, path, bytes, created (UTC).

    Liaison's own backups, and any .db or .dump file an operator copied in (one too big to upload)."""
    require(actor, Perm.BACKUP)
    return _backups(copied=True)


def backup_file(*, actor: Actor, name: str) -> Path:
    """The file of the backup called `name` in the backup folder (to download it); LookupError if there is none."""
    require(actor, Perm.BACKUP)
    for row in _backups(copied=True):
        if row["name"] == name:
            return row["path"]
    raise LookupError(f"There is no backup named {name!r} in the backup folder.")


def _backups(kind: str | None = "any", *, damaged: bool = False, copied: bool = False) -> list[dict]:
    rows = []
    for path in backup_dir().iterdir():
        if damaged:  # damaged-<a backup's name>: the copies that failed verification
            name = path.name.removeprefix(DAMAGED) if path.name.startswith(DAMAGED) else ""
        else:
            name = path.name
        match = NAME.match(name)
        if not match and copied and not name.startswith(DAMAGED):
            match = COPIED.match(name)
            if match and kind != "any":
                continue
        if match and path.is_file() and (kind == "any" or match.group(1) == kind):
            stat = path.stat()
            rows.append({"name": path.name, "path": path, "bytes": stat.st_size, "modified": stat.st_mtime})
    return sorted(rows, key=lambda r: (r["modified"], r["name"]), reverse=True)


def prune(*, keep: int) -> list[str]:
    """Delete the daily backups beyond the newest `keep`; manual and pre-restore backups are kept.

    Nothing is deleted while the last integrity check of the database failed: the newest backups may
    then hold the damage, and an older one may be the last good copy."""
    if _failed("quick_check"):
        log.warning("rotation skipped: the last integrity check of the database failed")
        return []
    removed = []
    for row in _backups("daily")[keep:]:
        row["path"].unlink(missing_ok=True)
        removed.append(row["name"])
    return removed


def daily_backup(db: Database) -> str | None:
    """The worker's job: one backup a day (skipped if today's exists), keeping `backup_keep` of them."""
    newest = sorted(_backups("daily") + _backups("daily", damaged=True), key=lambda r: r["modified"], reverse=True)
    if newest and utcnow().timestamp() - newest[0]["modified"] < timedelta(hours=20).total_seconds():
        return None
    _sweep()
    path = create_backup(db, actor=None, kind="daily")
    with db.read() as session:
        keep = settings.get(session, "backup_keep")
    removed = prune(keep=keep)
    return f"backed up to {path.name}, removed {len(removed)} old daily backup(s)"


def _sweep(*, older_than: timedelta = timedelta(days=1)) -> None:
    """Delete what a killed backup or restore left behind (a .part copy, a .restore-* work folder), once it is old."""
    cutoff = utcnow().timestamp() - older_than.total_seconds()
    for path in backup_dir().iterdir():
        if path.stat().st_mtime >= cutoff:
            continue
        if path.is_dir() and path.name.startswith(".restore-"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.name.endswith(".part"):
            path.unlink(missing_ok=True)


def save_upload(name: str, data: bytes) -> Path:
    """Keep an uploaded backup file under uploads/ in the backup folder (its name made safe, owner-only), for restore."""
    folder = backup_dir() / "uploads"
    _private_dir(folder)
    _writable(folder)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[-100:] or "backup"
    return files.write_private(folder / f"{utcnow():%Y%m%d-%H%M%S}-{safe}", data)


# --- health: the database's integrity check and the last backup's verification ----------------------


def _health_path() -> Path:
    return backup_dir() / HEALTH_FILE


def _read_health() -> dict:
    try:
        return json.loads(_health_path().read_text())
    except (OSError, ValueError):
        return {}


def _record(what: str, *, ok: bool, detail: str) -> None:
    """Keep the outcome of a check in the health file (owner-only); a folder that cannot be written only logs."""
    try:
        state = _read_health()
        state[what] = {"at": utcnow().strftime("%Y-%m-%d %H:%M UTC"), "ok": ok, "detail": detail}
        files.write_private(_health_path(), json.dumps(state).encode())
    except (OSError, ValueError) as exc:
        log.error("cannot record the %s check in the backup folder: %s", what, type(exc).__name__)


def _failed(what: str) -> dict | None:
    entry = _read_health().get(what)
    return entry if entry and not entry.get("ok") else None


def health(*, actor: Actor) -> str | None:
    """What is wrong with the database or its backups, for an administrator, or None when the last checks passed."""
    require(actor, Perm.BACKUP)
    messages = []
    if entry := _failed("quick_check"):
        messages.append(
            f"The database failed its integrity check at {entry['at']} ({entry['detail']}). Old backups are no longer "
            "deleted; restore the newest good backup, or ask for help before anything else is changed."
        )
    if entry := _failed("backup"):
        messages.append(f"At {entry['at']}: {entry['detail']}")
    return " ".join(messages) or None


def check_database(db: Database) -> str | None:
    """The worker's job, when it starts and daily: `PRAGMA quick_check` of a SQLite database, its outcome kept for `health`."""
    if not db.is_sqlite:
        return None  # PostgreSQL checks its own pages (and pg_dump reads every row of the daily backup)
    name = _sqlite_file(db).name
    try:
        con = _connect(_sqlite_file(db))
        try:
            problems = [row[0] for row in con.execute(f"PRAGMA quick_check({SHOWN_PROBLEMS})")]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    ok = problems == ["ok"]
    _record("quick_check", ok=ok, detail=f"{name} passes" if ok else _one_line(problems))
    return f"{name} passes the integrity check" if ok else f"{name} FAILS the integrity check"


# --- copies: SQLite files and pg_dump archives (also what restore uses) --------------------------


def _sqlite_file(db: Database) -> Path:
    name = make_url(db.url).database
    if not name or name == ":memory:":
        raise ValueError("An in-memory database cannot be backed up.")
    return Path(name)


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=30)
    con.execute("PRAGMA busy_timeout = 30000")
    con.execute("PRAGMA trusted_schema = OFF")  # a file under inspection runs none of its own SQL functions
    return con


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy one database into another with the online backup API (one step: a consistent snapshot, one transaction)."""
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


def _one_line(problems: list[str]) -> str:
    """SQLite's check output ("*** in database main ***", one problem a line) as one line for a message."""
    lines = [line.strip() for problem in problems for line in problem.splitlines()]
    return "; ".join(line for line in lines if line and not line.startswith("***"))


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
