"""Activity imports: one row per use of the library, never a title; re-importing adds nothing.

Each row gets `ext_key`, a 64-bit hash of what identifies it (patron, date, kind, branch, category,
transaction id, count), so the same row in a later file is recognised. Without a transaction id, identical
rows in one file are separate events (two checkouts on one day): the second copy's key also holds "2", the
third's "3" and so on, counted in file order across batches, so re-importing the file, or a later file
holding the same rows, adds nothing and loses none. The category must be one of the item categories
(crmcore.library.categories), stored with the term's spelling and only for patrons who opted in to
history. Afterwards, if rows were added, their counts are added to the monthly rollups and the patrons' activity
dates (or, for a file of more than a day's activity, the rollups of the patrons given rows are rebuilt from the
earliest month loaded), and the dashboard summaries follow those patrons (crmcore.kpis.incremental).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
from sqlmodel import Session

from crmcore.bulk import BulkWriter
from crmcore.imports.batch import Batch, BatchResult, Rejected, RowError, signed64
from crmcore.imports.codes import Codes
from crmcore.library import activity, categories
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
    bulk_tables = (EVENT,)  # a first load goes in without the secondary indexes (ext_key's unique one stays)
    # Recorded with each run's mapping: a run whose rows were all stored or there already, under these keys,
    # makes importing the same file again a no-op the runner answers without reading it (runner._complete_run).
    run_marks = {"activity_keys": "identical rows numbered"}

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        self.default_kind = mapping.get("default_kind", "checkout")
        self.today = now.date()
        self.branches = Codes(Branch.__table__)
        self.added = 0
        self.events = activity.NewEvents()  # the rows stored this run, as the rollups take them
        self.copies = Occurrences()
        self.terms: dict[str, tuple[str, str]] | None = None

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
        rows = self._categorised(session, rows, result)
        self._number_copies(rows)
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
        records, events = [], {}
        for _line, v in known:
            patron_id, opted_in, _erased = patrons[v["patron"]]
            category = v.get("category") if opted_in else None
            branch = self.branches.id(v.get("branch"))
            records.append((patron_id, writer.date(v["occurred_on"]), v["kind"], branch, v["count"], category, v["ext_key"]))
            events[v["ext_key"]] = (patron_id, v["occurred_on"], v["kind"], branch, v["count"])
        columns = ["patron_id", "occurred_on", "kind", "branch_id", "count", "category", "ext_key"]
        # The keys of the rows stored (not there already): their counts go into the rollups afterwards.
        stored = writer.insert_returning(EVENT, columns, records, conflict="ON CONFLICT (ext_key) DO NOTHING", returning=["ext_key"])
        result.new, result.unchanged = len(stored), len(records) - len(stored)
        self.added += len(stored)
        self.events.add(events[key] for (key,) in stored)
        return result

    def _categorised(self, session: Session, rows: list[tuple[int, dict[str, Any]]], result: BatchResult) -> list[tuple[int, dict[str, Any]]]:
        """The rows whose category is an item category (spelt as the term is); the others rejected, saying how to add one."""
        if self.terms is None:
            self.terms = categories.vocabulary(session)
        kept = []
        for line, v in rows:
            text = v.get("category")
            if text is not None:
                term = self.terms.get(text.casefold())
                if term is None:
                    result.rejected.append(Rejected(line, "category", categories.not_a_term(text)))
                    continue
                v["category"] = term[0]
            kept.append((line, v))
        return kept

    def _number_copies(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        """The 2nd, 3rd … copy of an identical row without a transaction id gets a key of its own (file order,
        across batches: every batch is written here, in order, whichever process prepared it)."""
        plain = [v for _line, v in rows if v.get("source_id") is None]
        for v, copy in zip(plain, self.copies.number([v["ext_key"] for v in plain])):
            if copy > 1:
                v["ext_key"] = signed64(v["ext_key"], copy)

    def finish(self, db, *, dry_run: bool) -> list[str]:
        """Bring the monthly rollups (and patron activity dates) up to date from the earliest month loaded, for the
        patrons given rows: the dashboard summaries follow them incrementally."""
        notes = []
        if self.branches.created:
            notes.append(f"{'Would create' if dry_run else 'Created'} branches: {', '.join(self.branches.created[:20])}.")
        if not dry_run and self.added:  # nothing added: the rollups are as they were
            with db.write() as session:
                activity.add_events(session, self.events)
            notes.append(f"Monthly activity brought up to date from {self.events.earliest:%B %Y}.")
        return notes


class Occurrences:
    """How many times each key has been seen so far, over a run's batches: a sorted array of keys and their
    counts (16 bytes a key: two million rows cost 32 MB, not the 200 MB of a dict)."""

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype=np.int64)
        self.counts = np.empty(0, dtype=np.int64)

    def number(self, keys: list[int]) -> list[int]:
        """Each key's copy number (1 = its first time in the run, 2 = the second …), counting these keys in order."""
        if not keys:
            return []
        batch = np.array(keys, dtype=np.int64)
        order = np.argsort(batch, kind="stable")  # equal keys stay in file order
        ordered = batch[order]
        starts_group = np.empty(len(ordered), dtype=bool)
        starts_group[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
        starts = np.flatnonzero(starts_group)
        group = np.cumsum(starts_group) - 1
        unique, sizes = ordered[starts], np.diff(np.append(starts, len(ordered)))
        at = np.searchsorted(self.keys, unique)
        seen = at < len(self.keys)
        seen[seen] = self.keys[at[seen]] == unique[seen]
        before = np.zeros(len(unique), dtype=np.int64)
        before[seen] = self.counts[at[seen]]
        copies = np.empty(len(ordered), dtype=np.int64)
        copies[order] = np.arange(len(ordered)) - starts[group] + before[group] + 1
        self.counts[at[seen]] += sizes[seen]
        fresh = ~seen
        self.keys = np.insert(self.keys, at[fresh], unique[fresh])
        self.counts = np.insert(self.counts, at[fresh], sizes[fresh])
        return copies.tolist()
