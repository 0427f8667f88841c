"""The one bulk writer: many rows on one connection, inside the caller's transaction, both backends.

The demo generator and the importers write hundreds of thousands of rows; the ORM per row would cost ten
times more. Rows come either as columns (`append`: executemany on SQLite, COPY on PostgreSQL, for loads
into tables nothing conflicts with) or as tuples (`insert` and `upsert`, with ON CONFLICT; on PostgreSQL many
rows are copied into a temporary table first and inserted from it in one statement). Statements are
built from constant table and column names only; every value is a bound parameter or goes through COPY.

Values for `append` are plain: int, str, bool or None; dates as 'YYYY-MM-DD' and timestamps as
'YYYY-MM-DD HH:MM:SS.ffffff' text in UTC, which is how SQLAlchemy stores them on SQLite and what
PostgreSQL parses (the transaction's time zone is set to UTC before the first COPY). For `insert`,
`date`, `dates` and `timestamp` give each value in the dialect's own format.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select

CHUNK = 2000  # keys per IN (...) lookup: well under SQLite's and PostgreSQL's parameter limits
ARRAY_CHUNK = 50_000  # PostgreSQL: keys per = ANY(array) lookup
STAGE_MIN = 200  # PostgreSQL: from this many rows, an INSERT goes through COPY and a staging table


class BulkWriter:
    """Writes many rows to tables inside the caller's transaction on `conn`."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect
        self.sqlite = self.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"
        self._quote = self.dialect.identifier_preparer.quote
        self._utc = self.sqlite

    def date(self, value: date | None) -> Any:
        return value.isoformat() if self.sqlite and value is not None else value

    def dates(self, values: list[date | None]) -> list:
        return [None if v is None else v.isoformat() for v in values] if self.sqlite else values

    def timestamp(self, table: Table, column: str, value: datetime) -> Any:
        process = table.c[column].type._cached_bind_processor(self.dialect)
        return process(value) if process else value

    def append(self, table: Table, columns: Sequence[str], data: Sequence[Sequence]) -> int:
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
            if not self._utc:
                self.conn.exec_driver_sql("SET LOCAL TIME ZONE 'UTC'")
                self._utc = True
            with raw.cursor() as cursor, cursor.copy(f"COPY {self._quote(table.name)} ({names}) FROM STDIN") as copy:
                for row in zip(*data):
                    copy.write_row(row)
        return len(data[0])

    def insert(self, table: Table, columns: Sequence[str], rows: list[tuple], *, conflict: str = "", key: Sequence[str] = ()) -> int:
        """INSERT rows (tuples in `columns` order), with an optional ON CONFLICT clause; rows affected.
        `key`: the columns a DO UPDATE conflict is on (on PostgreSQL, many rows then go through COPY)."""
        if not rows:
            return 0
        if not self.sqlite and len(rows) >= STAGE_MIN and (key or "DO UPDATE" not in conflict.upper()):
            return self._insert_staged(table, columns, rows, conflict, key)
        return self._insert_each(table, columns, rows, conflict)

    def _insert_each(self, table: Table, columns: Sequence[str], rows: list[tuple], conflict: str) -> int:
        marks = ", ".join([self.mark] * len(columns))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks}) {conflict}"
        result = self.conn.exec_driver_sql(sql, rows)
        return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)

    def _insert_staged(self, table: Table, columns: Sequence[str], rows: list[tuple], conflict: str, key: Sequence[str]) -> int:
        """PostgreSQL: COPY the rows into a temporary table of the target's column types, then one set-based
        INSERT … SELECT with the same conflict clause, in the rows' order. A DO UPDATE cannot touch one row
        twice in a statement, so a key's later rows (the file named a patron twice) follow one by one, in order,
        as executemany would have applied them."""
        later: list[tuple] = []
        if key:
            at = [columns.index(c) for c in key]
            seen: set = set()
            first = []
            for row in rows:
                k = tuple(row[i] for i in at)
                (later if k in seen else first).append(row)
                seen.add(k)
            rows = first
        names = ", ".join(columns)
        stage = f"stage_{table.name}"
        self.conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {stage} ON COMMIT DROP AS SELECT {names}, 0::bigint AS stage_n FROM {table.name} WITH NO DATA")
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {stage} ({names}, stage_n) FROM STDIN") as copy:
            for n, row in enumerate(rows):
                copy.write_row((*row, n))
        result = self.conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} ORDER BY stage_n {conflict}")
        done = result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)
        self.conn.exec_driver_sql(f"DROP TABLE {stage}")
        return done + (self._insert_each(table, columns, later, conflict) if later else 0)

    def insert_returning(self, table: Table, columns: Sequence[str], rows: list[tuple], *, returning: Sequence[str], conflict: str = "") -> list[tuple]:
        """As `insert`, and `returning` of each row stored (a row the ON CONFLICT clause skipped gives none): in
        multi-row statements, since SQLite's executemany drops what RETURNING gives."""
        for name in (*columns, *returning):
            table.c[name]  # noqa: B018  (a KeyError for a name this table lacks)
        one = "(" + ", ".join([self.mark] * len(columns)) + ")"
        per = max(1, min(CHUNK, 30_000 // len(columns)))  # under SQLite's 32,766 parameters and PostgreSQL's 65,535
        head, tail = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ", f" {conflict} RETURNING {', '.join(returning)}"
        stored: list[tuple] = []
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            result = self.conn.exec_driver_sql(head + ", ".join([one] * len(chunk)) + tail, tuple(v for row in chunk for v in row))
            stored.extend(tuple(r) for r in result.fetchall())
        return stored

    def upsert(self, table: Table, columns: Sequence[str], rows: list[tuple], *, key: str, keep: Sequence[str] = (), guarded: dict[str, str] | None = None) -> None:
        """INSERT … ON CONFLICT(key) DO UPDATE the other columns (except `keep`) when row_hash differs; a column of
        `guarded` (column → a boolean column of the stored row) keeps its stored value where that flag is set."""
        guarded = guarded or {}

        def value(c: str) -> str:
            return f"CASE WHEN {table.name}.{guarded[c]} THEN {table.name}.{c} ELSE excluded.{c} END" if c in guarded else f"excluded.{c}"

        updates = ", ".join(f"{c} = {value(c)}" for c in columns if c != key and c not in keep)
        distinct = "IS NOT" if self.sqlite else "IS DISTINCT FROM"
        conflict = f"ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {table.name}.row_hash {distinct} excluded.row_hash"
        self.insert(table, columns, rows, conflict=conflict, key=(key,))

    def lookup(self, table: Table, key: str, columns: Sequence[str], keys: Iterable[Any]) -> dict[Any, tuple]:
        """key → (columns…) for the rows whose `key` is among `keys` (values as the driver gives them)."""
        keys = list(dict.fromkeys(keys))
        for name in (key, *columns):
            table.c[name]  # noqa: B018  (a KeyError for a name this table lacks)
        select_list = ", ".join([key, *columns])
        out: dict[Any, tuple] = {}
        cursor = self.conn.connection.cursor()  # the driver's own, in the caller's transaction
        try:
            step = CHUNK if self.sqlite else ARRAY_CHUNK
            for start in range(0, len(keys), step):
                chunk = keys[start : start + step]
                if self.sqlite:
                    cursor.execute(f"SELECT {select_list} FROM {table.name} WHERE {key} IN ({', '.join([self.mark] * len(chunk))})", tuple(chunk))
                else:  # one array parameter: one statement per batch instead of ten
                    cursor.execute(f"SELECT {select_list} FROM {table.name} WHERE {key} = ANY(%s)", (chunk,))
                out.update({row[0]: tuple(row[1:]) for row in cursor.fetchall()})
        finally:
            cursor.close()
        return out

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
