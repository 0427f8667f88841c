"""Branch or zone codes in an import: looked up once per run, the unknown ones created."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Table, select
from sqlmodel import Session

from crmcore.bulk import BulkWriter


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
        writer = BulkWriter(session.connection())
        writer.insert(self.table, ["code", "name"], [(c, c) for c in missing])
        self.ids.update({code: row[0] for code, row in writer.lookup(self.table, "code", ["id"], missing).items()})
        self.created.extend(missing)

    def id(self, code: str | None) -> int | None:
        if code is None:
            return None
        found = self.ids.get(code)
        return None if found == -1 else found
