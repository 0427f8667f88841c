"""Circulation counts without patrons: a title-level or statistics export summed into month × branch × kind ×
material type cells (`circulation_monthly`). Titles are never read (there is no field for them).

The file is the truth for what it covers: each month × branch × kind it holds gets exactly the file's cells
(a cell stored earlier that the file no longer has is removed), and everything else is left alone.
Re-importing the same file changes nothing. Rows are summed as the batches are written; the cells are
compared with the stored ones and written at the end, in one transaction, and the summary counts cells.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select
from sqlmodel import Session

from crmcore.imports.activity_rows import activity_kind
from crmcore.imports.batch import Batch, BatchResult, Rejected, RowError
from crmcore.imports.codes import Codes
from crmcore.library import categories
from crmcore.models import Branch, CirculationMonthly

CELLS = CirculationMonthly.__table__
Cell = tuple[date, int, str, str]  # month, branch id (0: unknown), kind, material type ("": not given)


class CirculationImport:
    kind = "circulation"

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        self.default_kind = mapping.get("default_kind", "checkout")
        self.this_month = now.date().replace(day=1)
        self.branches = Codes(Branch.__table__)
        self.materials: dict[str, tuple[str, str]] | None = None
        self.sums: dict[tuple[date, str | None, str, str], int] = defaultdict(int)  # by branch code until finish
        self.totals: tuple[int, int, int] | None = None  # new, updated, unchanged cells (the summary's counts)

    def prepare(self, batch: Batch) -> list[tuple[int, dict[str, Any]]]:
        return batch.each_row(self._row)

    def _row(self, values: dict[str, Any]) -> dict[str, Any]:
        month = values["month"].replace(day=1)
        if month > self.this_month:
            raise RowError("month", f"{month:%B %Y} is in the future")
        values["month"] = month
        values["kind"] = activity_kind(values["kind"]) if values.get("kind") else self.default_kind
        if values.get("count") is None:
            values["count"] = 1
        return values

    def write(self, session: Session, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> BatchResult:
        """Add the batch's rows to the cells (nothing is written until finish); a material type outside the vocabulary is a row error."""
        result = BatchResult()
        if self.materials is None:
            self.materials = categories.vocabulary(session, group="material")
        sums = self.sums
        for line, v in rows:
            material = ""
            if (text := v.get("material_type")) is not None:
                term = self.materials.get(text.casefold())
                if term is None:
                    result.rejected.append(Rejected(line, "material_type", categories.not_a_term(text, group="material")))
                    continue
                material = term[0]
            sums[(v["month"], v.get("branch"), v["kind"], material)] += v["count"]
        return result

    def finish(self, db, *, dry_run: bool) -> list[str]:
        """Compare the file's cells with the stored ones and (not dry) replace those that differ."""
        if not self.sums:
            self.totals = (0, 0, 0)
            return []
        with db.read() if dry_run else db.write() as session:
            self.branches.resolve(session, (code for _m, code, _k, _t in self.sums), dry_run=dry_run)
            would_create = {code: -1 - k for k, code in enumerate(self.branches.created)}  # a dry run's new branches: no id yet
            cells: dict[Cell, int] = defaultdict(int)
            for (month, code, kind, material), count in self.sums.items():
                branch_id = 0 if code is None else self.branches.id(code)
                cells[(month, would_create[code] if branch_id is None else branch_id, kind, material)] += count
            covered = {(m, b, k) for m, b, k, _t in cells}
            stored = self._stored(session, covered)
            changed = {cell: count for cell, count in cells.items() if stored.get(cell) != count}
            new = sum(cell not in stored for cell in changed)
            gone = [cell for cell in stored if cell not in cells]
            self.totals = (new, len(changed) - new + len(gone), len(cells) - len(changed))
            if not dry_run and (changed or gone):
                self._replace(session, changed, [c for c in changed if c in stored] + gone)
        notes = [
            f"The file's rows make {len(cells):,} monthly cells (month × branch × kind × material type); the counts above are of cells. "
            "Titles are never stored."
        ]
        if gone:
            notes.append(f"{len(gone):,} stored cells of the months and branches in the file are not in it {'and would be' if dry_run else 'and were'} removed (counted as updated).")
        if self.branches.created:
            notes.append(f"{'Would create' if dry_run else 'Created'} branches: {', '.join(self.branches.created[:20])}.")
        return notes

    def _stored(self, session: Session, covered: set[tuple[date, int, str]]) -> dict[Cell, int]:
        """The stored cells of the months × branches × kinds the file covers."""
        months = sorted({m for m, _b, _k in covered})
        query = select(CELLS.c.month, CELLS.c.branch_id, CELLS.c.kind, CELLS.c.material_type, CELLS.c.count).where(CELLS.c.month.in_(months))
        return {(m, b, k, t): n for m, b, k, t, n in session.connection().execute(query) if (m, b, k) in covered}

    def _replace(self, session: Session, cells: dict[Cell, int], old: list[Cell]) -> None:
        conn = session.connection()
        for start in range(0, len(old), 500):
            chunk = old[start : start + 500]
            conn.execute(delete(CELLS).where(or_(*(
                and_(CELLS.c.month == m, CELLS.c.branch_id == b, CELLS.c.kind == k, CELLS.c.material_type == t) for m, b, k, t in chunk
            ))))
        rows = [{"month": m, "branch_id": b, "kind": k, "material_type": t, "count": n} for (m, b, k, t), n in cells.items()]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(CELLS), rows[start : start + 5000])
