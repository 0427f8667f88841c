"""The database: one engine per process, short sessions, one write path, migrations on start.

SQLite (the embedded default) runs in WAL mode with a busy timeout and FULL synchronous writes; every
write transaction starts with BEGIN IMMEDIATE so that concurrent writers queue instead of failing
half-way. PostgreSQL needs none of that. The same code runs on both.

The worker and the CLI wait up to 30 s for a lock; the app and its routes (`shared()`), where a person
waits, give up after 5 s with OperationalError, which pages show as "the database is busy; try again".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from crmcore import files
from crmcore.admin import config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_MS = 30_000
INTERACTIVE_WAIT_MS = 5_000


class DatabaseError(Exception):
    """The database cannot be opened or migrated; the message names the database and the cause."""


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def describe(url: str) -> str:
    """The database named for a person: the file for SQLite, the URL without password otherwise."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def is_busy(exc: BaseException) -> bool:
    """True for a lock that stayed taken past the wait: SQLite's "database is locked", PostgreSQL's lock timeout."""
    text = str(getattr(exc, "orig", exc)).lower()
    return "database is locked" in text or "lock timeout" in text or "database is busy" in text


def _sqlite_pragmas(wait_ms: int):
    def on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own transaction handling is off).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    return on_connect


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


def make_engine(url: str | None = None, *, wait_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine for `url` (default: DATABASE_URL), with SQLite's pragmas and write path set up; a lock is
    waited for `wait_ms` at most."""
    url = url or config.database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            files.private_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": wait_ms / 1000})
        event.listen(engine, "connect", _sqlite_pragmas(wait_ms))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    given = parsed.query.get("options", "")  # e.g. a search_path in DATABASE_URL: kept
    options = {"options": f"{given} -c lock_timeout={int(wait_ms)}".strip()} if wait_ms < BUSY_TIMEOUT_MS else {}
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=options)


class Database:
    """Owns the engine; hands out read sessions and write sessions."""

    def __init__(self, url: str | None = None, *, wait_ms: int = BUSY_TIMEOUT_MS):
        self.url = url or config.database_url()
        self.engine = make_engine(self.url, wait_ms=wait_ms)
        self._write_engine = self.engine.execution_options(write=True)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; rolled back at the end."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in one write transaction (BEGIN IMMEDIATE on SQLite): committed on success."""
        with Session(self._write_engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @contextmanager
    def writer(self) -> Iterator[Connection]:
        """One connection for a loop of short writes: each `with conn.begin():` is a write transaction."""
        with self._write_engine.connect() as conn:
            yield conn

    def analyze(self) -> None:
        """Refresh the query planner's statistics after a large load (sampled on SQLite: well under a second)."""
        with self._write_engine.begin() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("PRAGMA analysis_limit = 20000")
            conn.exec_driver_sql("ANALYZE")

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(url: str | None = None, *, revision: str = "head") -> None:
    """Create or upgrade the schema to `revision`. Raises DatabaseError naming the database and cause."""
    url = url or config.database_url()
    try:
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                cfg = alembic_config(url)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        finally:
            engine.dispose()
    except (SQLAlchemyError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        raise DatabaseError(f"Cannot open or migrate the database {describe(url)}: {cause}") from exc


def open_database(url: str | None = None, *, wait_ms: int = BUSY_TIMEOUT_MS) -> Database:
    """Migrate to the latest schema (and rebuild any index a killed bulk load left missing), then return
    the Database: what the app, CLI and worker call. With the schema current, nothing here writes, so a
    write lock held elsewhere does not stop the app from starting."""
    from sqlmodel import SQLModel

    from crmcore import models  # noqa: F401  (the tables of the metadata)
    from crmcore.bulk import restore_indexes

    migrate(url)
    db = Database(url, wait_ms=wait_ms)
    with db.engine.begin() as conn:  # a plain BEGIN: it takes the write lock only if an index is missing
        restore_indexes(conn, SQLModel.metadata.sorted_tables)
    return db


_shared: dict[str, Database] = {}
_shared_lock = threading.Lock()


def shared(url: str | None = None) -> Database:
    """The process's one Database for `url`, opened (and migrated) on first use: the app's pages and its
    HTTP routes share it. A failure is raised each time, never remembered."""
    url = url or config.database_url()
    with _shared_lock:
        if url not in _shared:
            _shared[url] = open_database(url, wait_ms=INTERACTIVE_WAIT_MS)
        return _shared[url]
