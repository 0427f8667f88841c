"""Event attendance imports: programs with registrations and attendance (a LibCal events export).

Upsert on the events system's id; a program whose figures have not changed is left alone. A multi-valued
categories or audiences cell ("Adults, Seniors") is kept as it came on the program and split into one
`program_label` row per value (what the dashboard groups by), replaced whenever the program's row changes.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session

from crmcore import kpis
from crmcore.bulk import BulkWriter
from crmcore.imports.batch import Batch, BatchResult, RowError, digest
from crmcore.imports.codes import Codes
from crmcore.kpis import figures
from crmcore.models import Branch, ProgramEvent, ProgramLabel

PROGRAM = ProgramEvent.__table__
LABEL = ProgramLabel.__table__
LABEL_KINDS = {"categories": "category", "audiences": "audience"}  # field -> program_label.kind
SEPARATORS = re.compile(r"[,;|]")  # between the values of a multi-valued cell
LABEL_MAX = 120
FIELDS = ("event_id", "title", "held_on", "branch", "categories", "audiences", "registrations", "attendance", "attendance_online")
COLUMNS = ["event_id", "title", "held_on", "branch_id", "categories", "audiences", "registrations", "attendance_in_person", "attendance_online"]


class AttendanceImport:
    kind = "attendance"

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        self.now = now
        self.branches = Codes(Branch.__table__)
        self.earliest = None  # the earliest program written: the dashboard's months must reach it

    def prepare(self, batch: Batch) -> list[tuple[int, dict[str, Any]]]:
        return batch.each_row(self._row)

    def _row(self, values: dict[str, Any]) -> dict[str, Any]:
        values["row_hash"] = digest(*(values.get(f) for f in FIELDS))
        values["labels"] = [(kind, label) for name, kind in LABEL_KINDS.items() for label in split_labels(values.get(name), field=name)]
        return values

    def write(self, session: Session, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> BatchResult:
        writer, result = BulkWriter(session.connection()), BatchResult()
        existing = writer.lookup(PROGRAM, "event_id", ["row_hash", "id"], (v["event_id"] for _l, v in rows))
        # Programs stored before labels were split have none: their row counts as changed once, to get them.
        labelled = writer.lookup(LABEL, "program_id", ["kind"], (row[1] for row in existing.values()))
        changed: dict[str, dict[str, Any]] = {}
        for _line, v in rows:
            before = changed[v["event_id"]]["row_hash"] if v["event_id"] in changed else existing.get(v["event_id"], (None,))[0]
            if before == v["row_hash"] and v["event_id"] in existing and v["labels"] and existing[v["event_id"]][1] not in labelled:
                before = None
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
        self.earliest = min([v["held_on"] for v in changed.values()] + ([self.earliest] if self.earliest else []))
        ids = writer.lookup(PROGRAM, "event_id", ["id"], changed)
        program_ids = [ids[event_id][0] for event_id in changed]
        for start in range(0, len(program_ids), 1000):
            session.connection().execute(delete(LABEL).where(LABEL.c.program_id.in_(program_ids[start : start + 1000])))
        labels = [(ids[event_id][0], kind, label) for event_id, v in changed.items() for kind, label in v["labels"]]
        writer.insert(LABEL, ["program_id", "kind", "label"], labels)
        return result

    def finish(self, db, *, dry_run: bool) -> list[str]:
        notes = []
        if self.branches.created:
            notes.append(f"{'Would create' if dry_run else 'Created'} branches: {', '.join(self.branches.created[:20])}.")
        if not dry_run and self.earliest is not None:
            with db.write() as session:
                first = figures.earliest_month(session)
                if first is None or self.earliest < first:  # the dashboard's months start later: widen them to these programs
                    kpis.refresh_summaries(session)
                    notes.append(f"Dashboard figures rebuilt to reach back to {self.earliest:%B %Y}, the earliest program.")
        return notes


def split_labels(text: str | None, *, field: str = "categories") -> list[str]:
    """The values of a multi-valued cell ("Adults, Seniors; Teens"): split at , ; or |, trimmed, each once
    (the first spelling kept when values differ only in case)."""
    out: dict[str, str] = {}
    for part in SEPARATORS.split(text or ""):
        label = " ".join(part.split())
        if not label:
            continue
        if len(label) > LABEL_MAX:
            raise RowError(field, f"the value “{label[:40]}…” is longer than {LABEL_MAX} characters; values are separated by a comma, semicolon or |")
        out.setdefault(label.casefold(), label)
    return list(out.values())
