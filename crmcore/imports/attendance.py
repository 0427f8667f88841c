"""Event attendance imports: programs with registrations and attendance (a LibCal events export).

Upsert on the events system's id; a program whose figures have not changed is left alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from crmcore.bulk import BulkWriter
from crmcore.imports.batch import Batch, BatchResult, digest
from crmcore.imports.codes import Codes
from crmcore.models import Branch, ProgramEvent

PROGRAM = ProgramEvent.__table__
FIELDS = ("event_id", "title", "held_on", "branch", "categories", "audiences", "registrations", "attendance", "attendance_online")
COLUMNS = ["event_id", "title", "held_on", "branch_id", "categories", "audiences", "registrations", "attendance_in_person", "attendance_online"]


class AttendanceImport:
    kind = "attendance"

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        self.now = now
        self.branches = Codes(Branch.__table__)

    def prepare(self, batch: Batch) -> list[tuple[int, dict[str, Any]]]:
        return batch.each_row(self._row)

    def _row(self, values: dict[str, Any]) -> dict[str, Any]:
        values["row_hash"] = digest(*(values.get(f) for f in FIELDS))
        return values

    def write(self, session: Session, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> BatchResult:
        writer, result = BulkWriter(session.connection()), BatchResult()
        existing = writer.lookup(PROGRAM, "event_id", ["row_hash"], (v["event_id"] for _l, v in rows))
        changed: dict[str, dict[str, Any]] = {}
        for _line, v in rows:
            before = changed[v["event_id"]]["row_hash"] if v["event_id"] in changed else existing.get(v["event_id"], (None,))[0]
            if before == v["row_hash"]:
                result.unchanged += 1
                continue
            if v["event_id"] in existing or v["event_id"] in changed:
                result.updated += 1
            else:
                result.new += 1
            changed[v["event_id"]] = v
        self.branches.resolve(session, (v.get("branch") for v in changed.values()), dry_run=dry_run)
        if dry_run or not changed:
            return result
        stamp = writer.timestamp(PROGRAM, "created_at", self.now)
        records = [
            (v["event_id"], v.get("title"), writer.date(v["held_on"]), self.branches.id(v.get("branch")), v.get("categories"), v.get("audiences"),
             v.get("registrations"), v.get("attendance"), v.get("attendance_online"), v["row_hash"], stamp, stamp)
            for v in changed.values()
        ]
        writer.upsert(PROGRAM, [*COLUMNS, "row_hash", "created_at", "updated_at"], records, key="event_id", keep=["created_at"])
        return result

    def finish(self, db, *, dry_run: bool) -> list[str]:
        if self.branches.created:
            return [f"{'Would create' if dry_run else 'Created'} branches: {', '.join(self.branches.created[:20])}."]
        return []
