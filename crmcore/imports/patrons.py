"""Patron imports: upsert on the ILS id, unchanged rows left alone, consent from notice preferences."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from itertools import repeat
from typing import Any

from sqlmodel import Session

from crmcore import kpis
from crmcore.bulk import BulkWriter
from crmcore.imports.batch import Batch, BatchResult, Rejected, digest, digests
from crmcore.imports.codes import Codes
from crmcore.library import consent
from crmcore.models import Branch, ConsentRecord, CurrentConsent, Patron, Zone

PATRON = Patron.__table__
CONSENT, CURRENT = ConsentRecord.__table__, CurrentConsent.__table__
# Liaison field → patron column (zone and branch arrive as codes and become ids).
COLUMNS = {
    "ils_id": "ils_id", "first_name": "first_name", "last_name": "last_name", "email": "email", "phone": "phone",
    "birth_year": "birth_year", "age_band": "age_band", "zone": "zone_id", "branch": "branch_id",
    "patron_type": "patron_type", "registered_on": "registered_on", "expires_on": "expires_on",
    "interests": "interests", "history_opt_in": "history_opt_in",
}
DATES = {"registered_on", "expires_on"}
TEXT_FIELDS = {f for f in COLUMNS if f not in DATES and f not in ("birth_year", "history_opt_in")}
CHANNEL_WORDS = {
    "email": "email", "emailpro": "email", "e-mail": "email",
    "sms": "sms", "mobile": "sms", "text": "sms", "smsalertnumber": "sms",
    "phone": "phone", "phonepro": "phone", "telephone": "phone",
    "mail": "mail", "post": "mail", "letter": "mail", "address": "mail",
}


class PatronImport:
    kind = "patrons"
    bulk_tables = (PATRON, CONSENT, CURRENT)  # a first load goes in without their secondary indexes

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        self.fields = [f for f in COLUMNS if f in mapping["columns"] or f == "ils_id"]
        self.topics = mapping.get("consent_topics", ["services"])
        for topic in self.topics:
            consent.check("email", topic)
        self.id_columns = bool(mapping.get("id_columns"))
        self.id_from_row = bool(mapping.get("id_from_row")) and not self.id_columns
        self.source = f"import: {file_name}"[:200]
        self.now = now
        self.branches, self.zones = Codes(Branch.__table__), Codes(Zone.__table__)
        self.consents_recorded = 0
        self.changed = 0
        self._summaries: Future | None = None

    def prepare(self, batch: Batch) -> Batch:
        """Cross-field work, column by column: the ILS id (read or generated), the consent wanted, the row hash."""
        columns = batch.columns
        if self.id_columns:
            failed = {k: ("ils_id", "the columns the id is made from are all empty") for k, parts in enumerate(batch.id_parts) if not any(parts)}
            columns["ils_id"] = [None if k in failed else "gen-" + digest(*(p.lower() for p in parts))[:24] for k, parts in enumerate(batch.id_parts)]
            batch.drop(failed)
        elif self.id_from_row:
            columns["ils_id"] = [f"row-{ordinal}" for ordinal in batch.ordinals]
        consent_columns = [columns.get(f) or [None] * len(batch) for f in ("contact_method", "consent_email", "consent_sms")]
        chosen: dict[tuple, tuple[tuple, str]] = {}  # (method, email, sms) → (sorted (channel, wanted) pairs, hash suffix)
        for key in set(zip(*consent_columns)):
            wanted = tuple(sorted(self._wanted_consent(*key).items()))
            chosen[key] = (wanted, "".join(f"\x1f{pair}" for pair in wanted))
        stated = [chosen[key] for key in zip(*consent_columns)]
        columns["consent"] = [wanted for wanted, _suffix in stated]
        # The same hash as digest(*field values, *consent pairs), one column at a time.
        texts = [_as_text(columns[f], f in TEXT_FIELDS) for f in self.fields]
        lines = [line + suffix for line, (_wanted, suffix) in zip(map("\x1f".join, zip(*texts)), stated)]
        columns["row_hash"] = digests(lines)
        return batch

    def _wanted_consent(self, method: str | None, email: bool | None, sms: bool | None) -> dict[str, bool]:
        wanted: dict[str, bool] = {}
        if method is not None:
            chosen = CHANNEL_WORDS.get(method.strip().lower())
            wanted = {c: c == chosen for c in consent.CHANNELS}
        for channel, stated in (("email", email), ("sms", sms)):
            if stated is not None:
                wanted[channel] = stated
        return wanted

    def write(self, session: Session, batch: Batch, *, dry_run: bool) -> BatchResult:
        writer, result = BulkWriter(session.connection()), BatchResult()
        columns = batch.columns
        keys = columns["ils_id"]
        existing = writer.lookup(PATRON, "ils_id", ["id", "row_hash", "erased_at"], keys)
        if not existing and len(set(keys)) == len(keys):  # a batch of patrons all new to Liaison
            changed = list(range(len(keys)))
            result.new = len(changed)
        else:
            changed = self._changed(batch, existing, result)
        pick = (lambda column: column) if len(changed) == len(keys) else (lambda column: [column[k] for k in changed])
        self.branches.resolve(session, set(pick(columns["branch"])) if "branch" in columns else (), dry_run=dry_run)
        self.zones.resolve(session, set(pick(columns["zone"])) if "zone" in columns else (), dry_run=dry_run)
        if dry_run or not changed:
            return result
        self.changed += len(changed)
        rows = {f: pick(columns[f]) for f in (*self.fields, "row_hash", "consent")}
        self._upsert(writer, rows)
        self._record_consent(writer, rows["ils_id"], rows["consent"], existing)
        return result

    def _changed(self, batch: Batch, existing: dict, result: BatchResult) -> list[int]:
        """The rows to write (new or different); erased patrons rejected, unchanged ones counted."""
        seen: dict[str, str] = {}
        changed = []
        for k, (ils_id, row_hash) in enumerate(zip(batch.columns["ils_id"], batch.columns["row_hash"])):
            before = seen.get(ils_id) or (existing[ils_id][1] if ils_id in existing else None)
            if ils_id in existing and existing[ils_id][2] is not None:
                result.rejected.append(Rejected(batch.lines[k], "ils_id", "this patron was erased in Liaison and is not re-imported"))
                continue
            if before == row_hash:
                result.unchanged += 1
                continue
            if ils_id in existing or ils_id in seen:
                result.updated += 1
            else:
                result.new += 1
            seen[ils_id] = row_hash
            changed.append(k)
        return changed

    def _upsert(self, writer: BulkWriter, rows: dict[str, list]) -> None:
        columns = [COLUMNS[f] for f in self.fields] + ["row_hash", "created_at", "updated_at"]
        keep = ["created_at"]
        if "history_opt_in" not in self.fields:
            columns.append("history_opt_in")
            keep.append("history_opt_in")
        stamp = writer.timestamp(PATRON, "created_at", self.now)
        values = []
        for f in self.fields:
            if f == "branch":
                values.append(map(self.branches.ids.get, rows[f]))  # every code has its id by now
            elif f == "zone":
                values.append(map(self.zones.ids.get, rows[f]))
            elif f in DATES:
                values.append(writer.dates(rows[f]))
            else:
                values.append(rows[f])
        tail = [repeat(stamp), repeat(stamp)] + ([repeat(False)] if "history_opt_in" not in self.fields else [])
        writer.upsert(PATRON, columns, list(zip(*values, rows["row_hash"], *tail)), key="ils_id", keep=keep)

    def _record_consent(self, writer: BulkWriter, keys: list[str], stated: list[tuple], existing: dict) -> None:
        """Consent records for every stated channel × topic that differs from the patron's current consent.

        The same records crmcore.library.consent.record appends (history row + current row, source and date),
        written set-based: a first import of a million patrons states hundreds of thousands of them.
        """
        stating = [(key, wanted) for key, wanted in zip(keys, stated) if wanted]
        if not stating:
            return
        ids = {k: row[0] for k, row in existing.items()}
        ids.update({k: row[0] for k, row in writer.lookup(PATRON, "ils_id", ["id"], [k for k, _w in stating if k not in ids]).items()})
        current: dict[tuple[int, str, str], bool] = {}
        known = [ids[k] for k, _w in stating if k in existing]
        for start in range(0, len(known), 2000):
            query = CURRENT.select().where(CURRENT.c.patron_id.in_(known[start : start + 2000]))
            current.update({(r.patron_id, r.channel, r.topic): r.granted for r in writer.conn.execute(query)})
        stamp = writer.timestamp(CONSENT, "recorded_at", self.now)
        records = [
            (patron_id, channel, topic, want, stamp, self.source, consent.WORDING_VERSION)
            for patron_id, wanted in ((ids[k], w) for k, w in stating)
            for channel, want in wanted
            for topic in self.topics
            if want != current.get((patron_id, channel, topic), False)
        ]
        columns = ["patron_id", "channel", "topic", "granted", "recorded_at", "source", "wording_version"]
        writer.insert(CONSENT, columns, records)
        later = "excluded.updated_at >= current_consent.updated_at"
        writer.insert(CURRENT, ["patron_id", "channel", "topic", "granted", "updated_at"], [r[:5] for r in records],
                      conflict=f"ON CONFLICT (patron_id, channel, topic) DO UPDATE SET granted = excluded.granted, updated_at = excluded.updated_at WHERE {later}")
        self.consents_recorded += len(records)

    def loaded(self, db) -> None:
        """Every batch is written: work out the dashboard summaries from a read snapshot in the background,
        overlapping a first load's index builds (which run in the database, outside Python's lock)."""
        if self.changed and self._summaries is None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-summaries")
            self._summaries = pool.submit(_compute_summaries, db)
            pool.shutdown(wait=False)

    def finish(self, db, *, dry_run: bool) -> list[str]:
        notes = []
        for what, codes in (("branches", self.branches), ("zones", self.zones)):
            if codes.created:
                shown = ", ".join(codes.created[:20]) + (" …" if len(codes.created) > 20 else "")
                notes.append(f"{'Would create' if dry_run else 'Created'} {len(codes.created)} {what}: {shown}.")
        if self.consents_recorded:
            notes.append(f"{self.consents_recorded:,} consent records written (source {self.source!r}).")
        if self.changed and not dry_run:
            self.loaded(db)
            summaries = self._summaries.result()
            with db.write() as session:
                summaries.store(session)  # registrations, lifecycle states and penetration follow the patrons
            notes.append("Dashboard figures updated.")
        return notes


def _compute_summaries(db) -> kpis.Summaries:
    with db.read() as session:
        return kpis.compute_summaries(session)


def _as_text(values: list, text: bool) -> list[str]:
    """A column as the row hash spells it: "" for missing, str() of anything else."""
    if text:
        return values if None not in values else ["" if v is None else v for v in values]
    return ["" if v is None else str(v) for v in values]
