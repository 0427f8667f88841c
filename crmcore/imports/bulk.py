"""Set-based writes for imports: executemany over the driver with the dialect's own value formats.

Imports write hundreds of thousands of rows; going through the ORM per row would cost ten times more.
Statements are built from constant table and column names only; every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlmodel import Session

CHUNK = 2000  # keys per IN (...) lookup: well under SQLite's and PostgreSQL's parameter limits


class Writer:
    """Dialect details for one session: placeholders and how dates and timestamps are sent."""

    def __init__(self, session: Session):
        self.session = session
        self.dialect = session.get_bind().dialect
        self.sqlite = self.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def date(self, value: date | None) -> Any:
        return value.isoformat() if self.sqlite and value is not None else value

    def dates(self, values: list[date | None]) -> list:
        return [None if v is None else v.isoformat() for v in values] if self.sqlite else values

    def timestamp(self, table: Table, column: str, value: datetime) -> Any:
        process = table.c[column].type._cached_bind_processor(self.dialect)
        return process(value) if process else value

    def insert(self, table: Table, columns: Sequence[str], rows: list[tuple], *, conflict: str = "") -> int:
        """INSERT rows (tuples in `columns` order), with an optional ON CONFLICT clause; rows affected."""
        if not rows:
            return 0
        marks = ", ".join([self.mark] * len(columns))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks}) {conflict}"
        result = self.session.connection().exec_driver_sql(sql, rows)
        return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(rows)

    def upsert(self, table: Table, columns: Sequence[str], rows: list[tuple], *, key: str, keep: Sequence[str] = ()) -> None:
        """INSERT … ON CONFLICT(key) DO UPDATE the other columns (except `keep`) when row_hash differs."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key and c not in keep)
        distinct = "IS NOT" if self.sqlite else "IS DISTINCT FROM"
        conflict = f"ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE {table.name}.row_hash {distinct} excluded.row_hash"
        self.insert(table, columns, rows, conflict=conflict)

    def lookup(self, table: Table, key: str, columns: Sequence[str], keys: Iterable[Any]) -> dict[Any, tuple]:
        """key → (columns…) for the rows whose `key` is among `keys` (values as the driver gives them)."""
        keys = list(dict.fromkeys(keys))
        for name in (key, *columns):
            table.c[name]  # noqa: B018  (a KeyError for a name this table lacks)
        select_list = ", ".join([key, *columns])
        out: dict[Any, tuple] = {}
        cursor = self.session.connection().connection.cursor()  # the driver's own, in the session's transaction (begun above)
        try:
            for start in range(0, len(keys), CHUNK):
                chunk = keys[start : start + CHUNK]
                cursor.execute(f"SELECT {select_list} FROM {table.name} WHERE {key} IN ({', '.join([self.mark] * len(chunk))})", tuple(chunk))
                out.update({row[0]: tuple(row[1:]) for row in cursor.fetchall()})
        finally:
            cursor.close()
        return out


class Codes:
    """Branch or zone codes → ids, loaded once per run; unknown codes are created (not in a dry run)."""

    def __init__(self, table: Table):
        self.table = table
        self.ids: dict[str, int] = {}
        self.loaded = False
        self.created: list[str] = []

    def load(self, session: Session) -> None:
        if not self.loaded:
            rows = session.connection().execute(select(self.table.c.code, self.table.c.id))
            self.ids = {code: id_ for code, id_ in rows}
            self.loaded = True

    def resolve(self, session: Session, codes: Iterable[str | None], *, dry_run: bool) -> None:
        """Make sure every code has an id (creating the missing ones, named after their code)."""
        self.load(session)
        missing = sorted({c for c in codes if c is not None and c not in self.ids})
        if not missing:
            return
        if dry_run:
            self.created.extend(missing)
            for code in missing:
                self.ids[code] = -1
            return
        writer = Writer(session)
        writer.insert(self.table, ["code", "name"], [(c, c) for c in missing])
        self.ids.update({code: row[0] for code, row in writer.lookup(self.table, "code", ["id"], missing).items()})
        self.created.extend(missing)

    def id(self, code: str | None) -> int | None:
        if code is None:
            return None
        found = self.ids.get(code)
        return None if found == -1 else found
