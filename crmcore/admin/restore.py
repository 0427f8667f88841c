"""Restoring a backup: the file is trusted in nothing, and any failure leaves the live database as it was.

SQLite: before anything runs on it, the file must pass `PRAGMA integrity_check` and `foreign_key_check`,
carry a schema version this code knows, and hold exactly the schema Liaison's migrations create for that
version (`schemas`): no trigger, view or other object of its own, no missing or extra table, column or
index. It is then migrated and checked again in a work file, and only then copied over the live database
through the online backup API (one transaction), so open connections see the new content.
PostgreSQL: the archive's table of contents and every statement it would run are checked against a dump
of the reference schema first; the checked script is applied in one transaction after the schema is
dropped; afterwards the schema is compared with the reference again, and a difference puts the previous
database back. Either way the current database is backed up first, and everyone signs in again.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
import tempfile
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from crmcore import files
from crmcore.admin import schemas, sessions
from crmcore.admin.backup import (  # the copying and checking helpers restores share with backups
    SHOWN_PROBLEMS,
    BackupDamaged,
    _connect,
    _new_path,
    _one_line,
    _pg_env,
    _run,
    _sqlite_copy,
    _sqlite_file,
    _sqlite_single_file,
    _take,
    _writable,
    backup_dir,
)
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.bulk import restore_indexes
from crmcore.db import Database, DatabaseError, alembic_config, head_revision, migrate
from crmcore.models import StaffUser
from crmcore.privacy import audit

log = logging.getLogger("liaison.restore")


def restore(db: Database, *, actor: Actor, path: str | Path) -> dict:
    """Replace the database with a backup once it passes the checks; the current one is backed up first.

    Raises ValueError, naming the file and the reason, for a file that fails; nothing is changed then.
    """
    require(actor, Perm.BACKUP)
    source = Path(path)
    if not source.is_file():
        raise ValueError(f"Restore refused: there is no file {source.name!r}.")
    _writable(backup_dir())
    if db.is_sqlite:
        result = _restore_sqlite(db, source)
    else:
        result = _restore_pg(db, source)
    db.engine.dispose()  # pooled connections of this process start afresh on the restored database
    try:
        with db.write() as session:
            sessions.end_everyone(session)  # PostgreSQL's (SQLite's copy had it before going live); whoever the file names
            # The restored database may predate the restoring account: then the entry names it without the link.
            known = actor.id is not None and session.get(StaffUser, actor.id) is not None
            recorded_as = actor if known else Actor(id=None, username=actor.username, role=actor.role)
            audit.record(session, actor=recorded_as, action="backup.restore", entity="backup", entity_id=source.name, detail=result)
    except OperationalError as exc:
        raise ValueError(
            f"{source.name} was restored (the previous database is saved as {result['previous_saved_as']}), but the database was "
            f"too busy to record it in the audit log and sign everyone out ({exc.orig}). Ask everyone to sign out and in again."
        ) from None
    return result


def _sign_everyone_out(url: str) -> None:
    work = Database(url)
    try:
        with work.write() as session:
            sessions.end_everyone(session)
    finally:
        work.dispose()


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


def _refuse_schema(name: str, revision: str, problems: list[str]) -> None:
    if problems:
        more = f" and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        raise ValueError(
            f"Restore refused: {name} does not hold the schema Liaison's migrations create for version {revision!r}: "
            f"{'; '.join(problems[:SHOWN_PROBLEMS])}{more}; nothing was changed."
        )


# --- SQLite -------------------------------------------------------------------------------------


def check_sqlite_file(path: Path, *, name: str, tolerate_missing: set[str] = frozenset(), integrity: bool = True) -> str:
    """The schema version of a SQLite file, once it passes every check; ValueError naming `name` otherwise.

    The checks: integrity_check (skipped with `integrity=False`, for a file that passed it and was only
    migrated since), a known schema version, the schema Liaison creates for that version (indexes in
    `tolerate_missing` may be absent), foreign_key_check."""
    try:
        con = _connect(path)
        try:
            problems = [row[0] for row in con.execute("PRAGMA integrity_check(5)")] if integrity else ["ok"]
            if problems != ["ok"]:
                raise ValueError(f"Restore refused: {name} fails the integrity check ({_one_line(problems)}); nothing was changed.")
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = None
            if "alembic_version" in tables:
                try:
                    row = con.execute("SELECT version_num FROM alembic_version").fetchone()
                except sqlite3.DatabaseError:
                    row = None
                revision = row[0] if row else None
            check_revision(revision, name=name)
            _refuse_schema(name, revision, schemas.differences(schemas.sqlite_schema(con), schemas.sqlite_reference(revision), tolerate_missing=tolerate_missing))
            orphans = con.execute("PRAGMA foreign_key_check").fetchmany(SHOWN_PROBLEMS)
            if orphans:
                listed = "; ".join(f"row {rowid} of {table} refers to a missing row of {parent}" for table, rowid, parent, _ in orphans)
                raise ValueError(f"Restore refused: {name} fails the foreign key check ({listed}); nothing was changed.")
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"Restore refused: {name} is not a readable SQLite database ({exc}); nothing was changed.") from None
    return revision


def _take_before_restore(db: Database) -> Path:
    """The copy of the live database a restore makes first. A damaged live database is no reason to refuse the
    restore that repairs it: its copy is kept as damaged-liaison-prerestore-… and the restore goes on."""
    safety = _new_path(db, "prerestore")
    try:
        _take(db, safety)
    except BackupDamaged as exc:
        log.warning("the database being replaced fails verification; its copy is kept as %s", exc.path.name)
        return exc.path
    return safety


def _page_size(path: Path) -> int:
    con = _connect(path)
    try:
        return con.execute("PRAGMA page_size").fetchone()[0]
    finally:
        con.close()


def _restore_sqlite(db: Database, source: Path) -> dict:
    live = _sqlite_file(db)
    try:
        with tempfile.TemporaryDirectory(dir=backup_dir(), prefix=".restore-") as tmp:  # a private (0700) folder
            work = files.private_file(Path(tmp) / "restore.db")
            try:  # through SQLite, so a file still in WAL mode comes with what its -wal holds
                _sqlite_copy(source, work)
            except sqlite3.DatabaseError as exc:
                raise ValueError(f"Restore refused: {source.name} is not a readable SQLite database ({exc}); nothing was changed.") from None
            revision = check_sqlite_file(work, name=source.name, tolerate_missing=schemas.deferrable_indexes())
            _migrate_work(f"sqlite:///{work}", name=source.name)
            _sign_everyone_out(f"sqlite:///{work}")  # in the copy, before it goes live: no session of the file holds
            check_sqlite_file(work, name=f"{source.name} (migrated to {head_revision()})", integrity=False)
            _sqlite_single_file(work)
            _match_page_size(work, _page_size(live))
            safety = _take_before_restore(db)
            try:
                _sqlite_copy(work, live)  # one transaction: the live file has either all of it or none
            except sqlite3.Error as exc:
                raise ValueError(f"Restore of {source.name} failed while replacing the database ({exc}); the current database is unchanged.") from None
            problems = _live_problems(live)
            if problems:  # not expected after the checks above; never leave the app on a broken schema
                _sqlite_copy(safety, live)
                raise ValueError(f"Restore of {source.name} undone: the restored database differs from Liaison's schema ({'; '.join(problems[:SHOWN_PROBLEMS])}); the previous database is back.")
    except OSError as exc:
        raise ValueError(f"Restore refused: the work file for {source.name} cannot be written in {backup_dir()} ({exc.strerror or exc}); nothing was changed.") from None
    return {"file_revision": revision, "now_revision": head_revision(), "previous_saved_as": safety.name}


def _migrate_work(url: str, *, name: str) -> None:
    """Migrate a restored copy to head and rebuild any index a killed bulk load had left missing in it."""
    try:
        migrate(url)
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                restore_indexes(conn, SQLModel.metadata.sorted_tables)
        finally:
            engine.dispose()
    except DatabaseError as exc:
        raise ValueError(f"Restore refused: {name} cannot be migrated to this version of Liaison ({exc}); nothing was changed.") from None


def _match_page_size(work: Path, size: int) -> None:
    """The live file is in WAL mode, whose page size cannot change: give the work copy the live page size."""
    if _page_size(work) != size:
        con = _connect(work)
        try:
            con.execute(f"PRAGMA page_size = {int(size)}")
            con.execute("VACUUM")
        finally:
            con.close()


def _live_problems(live: Path) -> list[str]:
    con = _connect(live)
    try:
        return schemas.differences(schemas.sqlite_schema(con), schemas.sqlite_reference(head_revision()))
    finally:
        con.close()


# --- PostgreSQL ---------------------------------------------------------------------------------

# The entry types a pg_dump of a migrated Liaison database holds (pg_restore --list); anything else
# (TRIGGER, VIEW, FUNCTION, RULE, POLICY, EXTENSION, SCHEMA, EVENT TRIGGER, …) is refused.
PG_ENTRY_TYPES = ("SEQUENCE OWNED BY", "SEQUENCE SET", "SEQUENCE", "TABLE DATA", "TABLE", "FK CONSTRAINT", "CONSTRAINT", "INDEX", "DEFAULT")


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


def pg_archive_problems(listing: str, reference: dict[str, object]) -> list[str]:
    """What in a `pg_restore --list` listing a Liaison database never holds: other entry types, other schemas,
    tables, indexes or constraints the migrations do not create."""
    tables = {key.split(" ", 1)[1] for key in reference if key.startswith("table ")}
    indexes = {key.split(" ", 1)[1] for key in reference if key.startswith("index ")}
    constraints = {key.split(" ", 1)[1] for key in reference if key.startswith("constraint ")}
    problems = []
    for line in listing.splitlines():
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        entry = re.sub(r"^\d+;\s+\d+\s+\d+\s+", "", line)
        kind = next((k for k in PG_ENTRY_TYPES if entry.startswith(k + " ")), None)
        words = entry[len(kind) + 1 :].split() if kind else []
        if entry.split()[:3] == ["SCHEMA", "-", "public"] or entry.split()[:4] == ["COMMENT", "-", "SCHEMA", "public"]:
            continue  # the public schema itself, dumped once a restore has re-created it
        if kind is None:
            problems.append(f"{entry.rsplit(' ', 1)[0]} (Liaison creates no such object)")
        elif not words or words[0] != "public":
            problems.append(f"{entry} (outside Liaison's schema)")
        elif kind in ("TABLE", "TABLE DATA") and words[1] not in tables:
            problems.append(f"table {words[1]} (Liaison creates no such table)")
        elif kind == "INDEX" and words[1] not in indexes:
            problems.append(f"index {words[1]} (Liaison creates no such index)")
        elif kind in ("CONSTRAINT", "FK CONSTRAINT") and (len(words) < 3 or words[1] not in tables or words[2] not in constraints):
            problems.append(f"constraint {' '.join(words[1:3])} (Liaison creates no such constraint)")
    return problems


def _pg_live_problems(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = schemas.pg_schema(conn, "public")
    finally:
        engine.dispose()
    return schemas.differences(found, schemas.pg_reference(url, head_revision()))


# Outside COPY data, the data section of a genuine dump holds only these statements.
_PG_DATA_LINE = re.compile(
    r"^(SET [a-z_]+ = [A-Za-z0-9_']+;"
    r"|SELECT pg_catalog\.set_config\('search_path', '', false\);"
    r"|SELECT pg_catalog\.setval\('public\.[a-z0-9_]+', \d+, (true|false)\);"
    r'|COPY public\.(?P<table>[a-z0-9_]+) \((?P<columns>[a-z0-9_, "]+)\) FROM stdin;)$'  # "group": a quoted column
)


def _pg_statements(script: str, *, schema: str = "public") -> list[str]:
    """The SQL statements of a pg_dump/pg_restore script, comments, psql's \\restrict lines and the schema's own
    creation left out, `schema.` written as `public.`, sorted: equal lists mean the same schema, text for text."""
    kept = []
    for line in script.splitlines():
        if not line.strip() or line.startswith("--") or line.startswith(("\\restrict ", "\\unrestrict ")):
            continue
        kept.append(line.replace(f"{schema}.", "public."))
    statements = [part.strip() for part in "\n".join(kept).split(";\n")]
    skip = {f"CREATE SCHEMA {schema}", "CREATE SCHEMA public", "COMMENT ON SCHEMA public IS 'standard public schema'", "COMMENT ON SCHEMA public IS ''"}
    return sorted(st.rstrip(";") for st in statements if st and st not in skip and st.rstrip(";") not in skip)


@functools.lru_cache(maxsize=8)
def _pg_reference_statements(url: str, revision: str) -> dict[str, list[str]]:
    """What pg_dump writes for the schema this code's migrations create at `revision`, section by section."""
    args, env = _pg_env(url)
    with schemas.pg_scratch(url, revision) as scratch:
        return {
            section: _pg_statements(
                _run(["pg_dump", f"--section={section}", "--no-owner", "--no-privileges", f"--schema={scratch}", *args], env=env, what="pg_dump").decode(),
                schema=scratch,
            )
            for section in ("pre-data", "post-data")
        }


def _index_name(statement: str) -> str | None:
    match = re.match(r"CREATE (?:UNIQUE )?INDEX (\S+) ", statement)
    return match.group(1) if match else None


def _pg_script(db: Database, source: Path, *, name: str, revision: str) -> bytes:
    """The SQL that restores the archive, once every statement in it is one a genuine Liaison dump holds.

    An archive stores each object's SQL as text, which pg_restore writes out as it is: a crafted archive
    could hide any statement (or a psql command) behind an innocent table of contents. So the schema
    statements must equal those pg_dump writes for the reference schema, and the data section may hold
    only COPY into Liaison's tables and the sequences' positions."""
    sections = {
        section: _run(["pg_restore", f"--section={section}", "--no-owner", "--no-privileges", "--file=-", str(source)], env=dict(os.environ), what=f"Reading {name}")
        for section in ("pre-data", "data", "post-data")
    }
    reference = _pg_reference_statements(db.url, revision)
    tolerated = schemas.deferrable_indexes()
    problems = []
    for section in ("pre-data", "post-data"):
        found = _pg_statements(sections[section].decode(errors="replace"))
        want = reference[section]
        extra = [st for st in found if st not in want]
        missing = [st for st in want if st not in found and _index_name(st) not in tolerated]
        problems += [f"a statement Liaison's schema does not have: {st.splitlines()[0][:120]}" for st in extra]
        problems += [f"a statement of Liaison's schema is missing: {st.splitlines()[0][:120]}" for st in missing]
    tables = {key.split(" ", 1)[1] for key in schemas.pg_reference(db.url, revision) if key.startswith("table ")}
    in_copy = False
    for number, line in enumerate(sections["data"].decode(errors="replace").splitlines(), 1):
        if in_copy:
            in_copy = line != "\\."
            continue
        if not line.strip() or line.startswith("--") or line.startswith(("\\restrict ", "\\unrestrict ")):
            continue
        match = _PG_DATA_LINE.match(line)
        if not match or (match.group("table") and match.group("table") not in tables):
            problems.append(f"line {number} of the data is not Liaison data: {line[:120]}")
            break
        in_copy = bool(match.group("table"))
    _refuse_schema(name, revision, problems)
    return sections["pre-data"] + sections["data"] + sections["post-data"]


def _pg_apply(url: str, script: bytes, *, name: str) -> None:
    """Replace the public schema with `script`'s content, in one transaction (all of it or nothing)."""
    args, env = _pg_env(url)
    sql = b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n" + script
    _run(["psql", "--quiet", "--no-psqlrc", "--single-transaction", "-v", "ON_ERROR_STOP=1", *args], env=env, stdin=sql, what=f"Restoring {name}")


def _pg_full_script(source: Path, *, name: str) -> bytes:
    return _run(["pg_restore", "--no-owner", "--no-privileges", "--file=-", str(source)], env=dict(os.environ), what=f"Reading {name}")


def _restore_pg(db: Database, source: Path) -> dict:
    name = source.name
    revision = _pg_archive_revision(source)
    check_revision(revision, name=name)
    listing = _run(["pg_restore", "--list", str(source)], env=dict(os.environ), what=f"Checking {name}").decode(errors="replace")
    _refuse_schema(name, revision, pg_archive_problems(listing, schemas.pg_reference(db.url, revision)))
    script = _pg_script(db, source, name=name, revision=revision)
    safety = _take_before_restore(db)
    db.engine.dispose()
    try:
        _pg_apply(db.url, script, name=name)
    except ValueError as exc:
        raise ValueError(f"Restore refused: {exc}; the current database is unchanged.") from None
    try:
        _migrate_work(db.url, name=name)
        problems = _pg_live_problems(db.url)
    except (DatabaseError, ValueError) as exc:
        problems = [str(exc)]
    if problems:
        try:
            _pg_apply(db.url, _pg_full_script(safety, name=safety.name), name=safety.name)  # our own dump of a moment ago
        except ValueError as exc:
            raise ValueError(
                f"Restore of {name} failed its final check ({'; '.join(problems[:SHOWN_PROBLEMS])}) and putting the previous "
                f"database back failed too ({exc}): restore {safety.name} from the backup folder with `python -m crmcore restore`."
            ) from None
        more = f" and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        raise ValueError(
            f"Restore of {name} undone: once restored, the database differed from Liaison's schema "
            f"({'; '.join(problems[:SHOWN_PROBLEMS])}{more}); the previous database ({safety.name}) is back."
        )
    return {"file_revision": revision, "now_revision": head_revision(), "previous_saved_as": safety.name}
