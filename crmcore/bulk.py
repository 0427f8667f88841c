"""Fast appends of many rows on one connection: executemany on SQLite, COPY on PostgreSQL.

For the demo generator and large loads. Values come as Python columns (lists) of plain values:
int, str, bool or None; dates as 'YYYY-MM-DD' and timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text
in UTC, which is how SQLAlchemy stores them on SQLite and what PostgreSQL parses (the session's time
zone is set to UTC for the transaction).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Connection, Table, func, select


class BulkWriter:
    """Appends rows to tables inside the caller's transaction on `conn`."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self._quote = conn.dialect.identifier_preparer.quote
        if not self.sqlite:
            conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")

    def insert(self, table: Table, columns: Sequence[str], data: Sequence[Sequence]) -> int:
        """Append len(data[0]) rows; `data` holds one list per column, in the order of `columns`."""
        if not data or not len(data[0]):
            return 0
        for name in columns:
            table.c[name]  # noqa: B018  (a KeyError here beats a half-written table)
        names = ", ".join(self._quote(c) for c in columns)
        raw = self.conn.connection.driver_connection
        if self.sqlite:
            marks = ", ".join("?" * len(columns))
            raw.executemany(f"INSERT INTO {self._quote(table.name)} ({names}) VALUES ({marks})", zip(*data))
        else:
            with raw.cursor() as cursor, cursor.copy(f"COPY {self._quote(table.name)} ({names}) FROM STDIN") as copy:
                for row in zip(*data):
                    copy.write_row(row)
        return len(data[0])

    def sync_id_sequence(self, table: Table) -> None:
        """After rows were given explicit ids: move PostgreSQL's id sequence past them."""
        if not self.sqlite:
            self.conn.execute(
                select(func.setval(func.pg_get_serial_sequence(table.name, "id"), func.coalesce(func.max(table.c.id), 0) + 1, False))
            )


@contextmanager
def indexes_deferred(conn: Connection, tables: Sequence[Table]) -> Iterator[None]:
    """Drop the secondary indexes of `tables` for a bulk load into them and build each once at the end:
    one sorted build is far faster than millions of random B-tree inserts. Killed in between, the
    indexes are missing until `restore_indexes` (which `open_database` runs when the app, CLI or worker starts)."""
    indexes = [index for table in tables for index in table.indexes]
    with conn.begin():
        for index in indexes:
            index.drop(conn, checkfirst=True)
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        with conn.begin():
            restore_indexes(conn, tables)


def restore_indexes(conn: Connection, tables: Sequence[Table]) -> None:
    """Create whichever index of `tables` is missing (left so by a bulk load that was killed)."""
    for table in tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)
