"""The benchmarks' PostgreSQL side: the server on loopback, the cached data sets, scratch copies.

The server is `BENCH_POSTGRES_URL` (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres; any
database on it, the benchmarks make their own). A data set is the cached SQLite demo library of the same
size and seed, loaded once with COPY into a database named for size, seed and schema revision
(`liaison_bench_1000000_seed1_0016`); a scratch copy is `CREATE DATABASE … TEMPLATE` of it, named for the
checkout (`bench_<tag>_<name>`), so that benchmarks run from two clones on one server never collide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
import os
import re
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Connection, Integer, Table, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
URL_VARIABLE = "BENCH_POSTGRES_URL"
_ROOT = Path(__file__).resolve().parent.parent


def server_url() -> URL:
    return make_url(os.environ.get(URL_VARIABLE) or DEFAULT_URL)


def url_for(name: str) -> str:
    """The URL of database `name` on the benchmark server."""
    return server_url().set(database=name).render_as_string(hide_password=False)


def libpq_url(name: str) -> str:
    """The URL of database `name` as psql takes it (no SQLAlchemy driver name)."""
    return server_url().set(drivername="postgresql", database=name).render_as_string(hide_password=False)


def dataset_name(size: int, seed: int, revision: str) -> str:
    return f"liaison_bench_{int(size)}_seed{int(seed)}_{_identifier(revision)}"


def scratch_name(name: str) -> str:
    """A scratch database's name: the benchmark's file name (`b8-journeys.db`) under this checkout's tag."""
    tag = hashlib.sha1(str(_ROOT).encode()).hexdigest()[:6]
    return f"bench_{tag}_{_identifier(Path(name).stem)}"[:63]


def _identifier(text_: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text_.lower())


@contextmanager
def _admin() -> Iterator[Connection]:
    """An autocommit connection to the server's maintenance database (CREATE / DROP DATABASE)."""
    engine = create_engine(server_url().render_as_string(hide_password=False), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def server_version() -> str:
    with _admin() as conn:
        return conn.exec_driver_sql("SHOW server_version").scalar_one()


def exists(name: str) -> bool:
    with _admin() as conn:
        return conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None


def drop(name: str) -> None:
    with _admin() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


WAIT_S = 600  # how long a copy waits for its template to be free


def create(name: str, *, template: str | None = None) -> None:
    """A new empty database `name` (dropped first if there), or a file copy of `template`. A template
    another session is connected to cannot be copied: wait for it for up to ten minutes (on a shared server
    other benchmarks read the cached library for minutes at a time)."""
    drop(name)
    copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    with _admin() as conn:
        for attempt in range(WAIT_S):
            try:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
                return
            except Exception as exc:  # the template in use: another benchmark is copying it too
                if "being accessed by other users" not in str(exc) or attempt == WAIT_S - 1:
                    raise
                time.sleep(1)


def rename(old: str, new: str) -> None:
    with _admin() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{old}" RENAME TO "{new}"')


def load_from_sqlite(sqlite_path: Path, url: str) -> dict[str, int]:
    """Copy every table of a SQLite Liaison database (migrated to the same revision as the PostgreSQL one
    at `url`) into it with COPY; rows per table. Secondary indexes are built after the load, foreign keys
    are not re-checked (the SQLite database kept them), id sequences move past the copied ids."""
    from sqlmodel import SQLModel

    from crmcore import models  # noqa: F401  (the tables of the metadata)
    from crmcore.bulk import BulkWriter, restore_indexes

    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    present = {name for (name,) in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    tables: list[Table] = [t for t in SQLModel.metadata.sorted_tables if t.name in present]
    engine = create_engine(url)
    counts: dict[str, int] = {}
    try:
        with engine.connect() as conn:
            with conn.begin():
                referenced = {(k.referred_table.name, tuple(e.column.name for e in k.elements)) for t in tables for k in t.foreign_key_constraints}
                for table in tables:
                    for index in table.indexes:
                        if (table.name, tuple(c.name for c in index.columns)) not in referenced:  # a key's target stays
                            index.drop(conn, checkfirst=True)
            with conn.begin():
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")  # no FK triggers per row
                conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")  # SQLite's timestamps are UTC
                # The migrations seed a few tables (topics, terms): the copy replaces what they wrote.
                conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables))
                raw = conn.connection.driver_connection
                writer = BulkWriter(conn)
                for table in tables:
                    have = {row[1] for row in source.execute(f'PRAGMA table_info("{table.name}")')}
                    columns = [c.name for c in table.columns if c.name in have]
                    names = ", ".join(f'"{c}"' for c in columns)
                    n = 0
                    with raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
                        for row in source.execute(f'SELECT {names} FROM "{table.name}"'):
                            copy.write_row(row)
                            n += 1
                    counts[table.name] = n
                    if "id" in table.c and isinstance(table.c.id.type, Integer):
                        writer.sync_id_sequence(table)
            with conn.begin():
                restore_indexes(conn, tables)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")  # visibility map and planner statistics, as a DBA would
    finally:
        engine.dispose()
        source.close()
    return counts


def row_counts(url: str) -> dict[str, int]:
    """Rows per table of the Liaison database at `url` (either backend)."""
    from sqlmodel import SQLModel

    from crmcore import models  # noqa: F401

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.execute(text(f'SELECT count(*) FROM "{t.name}"')).scalar_one() for t in SQLModel.metadata.sorted_tables}
    finally:
        engine.dispose()
