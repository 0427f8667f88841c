"""Activity imports: one row per use of the library, never a title; re-importing adds nothing.

Each row gets `ext_key`, a 64-bit hash of what identifies it (patron, date, kind, branch, category,
transaction id), so the same row in a later file is recognised. The category (genre) is kept only for
patrons who opted in to history. Afterwards the monthly rollups are rebuilt from the earliest month loaded.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from crmcore.bulk import BulkWriter
from crmcore.imports.batch import Batch, BatchResult, Rejected, RowError, signed64
from crmcore.imports.codes import Codes
from crmcore.library import activity
from crmcore.models import ActivityEvent, Branch, Patron

EVENT, PATRON = ActivityEvent.__table__, Patron.__table__
ALIASES = {
    "issue": "checkout", "checkouts": "checkout", "loan": "checkout", "renew": "renewal", "renewals": "renewal",
    "digital": "digital_loan", "ebook": "digital_loan", "pc": "pc_session", "computer": "pc_session",
    "event": "event_attendance", "attendance": "event_attendance", "program": "event_attendance",
    "visits": "visit", "survey": "survey_response",
}


def activity_kind(text: str) -> str:
    """An activity kind from what an export calls it (Checkout, digital-loan, issue …)."""
    word = text.strip().lower().replace(" ", "_").replace("-", "_")
    word = ALIASES.get(word, word)
    if word not in activity.KINDS:
        raise RowError("kind", f"{text!r} is not an activity kind ({', '.join(activity.KINDS)})")
    return word


class ActivityImport:
    kind = "activity"

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        self.default_kind = mapping.get("default_kind", "checkout")
        self.today = now.date()
        self.branches = Codes(Branch.__table__)
        self.earliest: date | None = None

    def prepare(self, batch: Batch) -> list[tuple[int, dict[str, Any]]]:
        return batch.each_row(self._row)

    def _row(self, values: dict[str, Any]) -> dict[str, Any]:
        values["kind"] = activity_kind(values["kind"]) if values.get("kind") else self.default_kind
        if values["occurred_on"] > self.today:
            raise RowError("occurred_on", f"{values['occurred_on']} is in the future")
        if values.get("count") is None:
            values["count"] = 1
        elif values["count"] == 0:
            raise RowError("count", "is 0")
        values["ext_key"] = signed64(
            values["patron"], values["occurred_on"].isoformat(), values["kind"], values.get("branch"), values.get("category"), values.get("source_id"), values["count"]
        )
        return values

    def write(self, session: Session, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> BatchResult:
        writer, result = BulkWriter(session.connection()), BatchResult()
        patrons = writer.lookup(PATRON, "ils_id", ["id", "history_opt_in", "erased_at"], (v["patron"] for _l, v in rows))
        known = [(line, v) for line, v in rows if v["patron"] in patrons and patrons[v["patron"]][2] is None]
        for line, v in rows:
            if v["patron"] not in patrons or patrons[v["patron"]][2] is not None:
                result.rejected.append(Rejected(line, "patron", f"no patron with ILS id {v['patron']!r} (import patrons first)"))
        self.branches.resolve(session, (v.get("branch") for _l, v in known), dry_run=dry_run)
        if dry_run:
            there = writer.lookup(EVENT, "ext_key", ["id"], (v["ext_key"] for _l, v in known))
            fresh = {v["ext_key"] for _l, v in known if v["ext_key"] not in there}
            result.new, result.unchanged = len(fresh), len(known) - len(fresh)
            return result
        records = []
        for _line, v in known:
            patron_id, opted_in, _erased = patrons[v["patron"]]
            category = v.get("category") if opted_in else None
            records.append((patron_id, writer.date(v["occurred_on"]), v["kind"], self.branches.id(v.get("branch")), v["count"], category, v["ext_key"]))
            if self.earliest is None or v["occurred_on"] < self.earliest:
                self.earliest = v["occurred_on"]
        columns = ["patron_id", "occurred_on", "kind", "branch_id", "count", "category", "ext_key"]
        inserted = writer.insert(EVENT, columns, records, conflict="ON CONFLICT (ext_key) DO NOTHING")
        result.new, result.unchanged = inserted, len(records) - inserted
        return result

    def finish(self, db, *, dry_run: bool) -> list[str]:
        """Rebuild the monthly rollups (and patron activity dates) from the earliest month loaded."""
        notes = []
        if self.branches.created:
            notes.append(f"{'Would create' if dry_run else 'Created'} branches: {', '.join(self.branches.created[:20])}.")
        if not dry_run and self.earliest is not None:
            with db.write() as session:
                activity.rebuild_rollups(session, since=activity.first_of_month(self.earliest))
            notes.append(f"Monthly activity rebuilt from {self.earliest:%B %Y}.")
        return notes
