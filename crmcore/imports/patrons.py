"""Patron imports: upsert on the ILS id, unchanged rows left alone, consent from notice preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from crmcore import consent, kpis
from crmcore.imports.batch import BatchResult, Rejected, digest
from crmcore.imports.bulk import Codes, Writer
from crmcore.imports.cleaning import RowError
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
        self.mapping = mapping
        self.fields = [f for f in COLUMNS if f in mapping["columns"] or f == "ils_id"]
        self.consent_fields = [f for f in ("contact_method", "consent_email", "consent_sms") if f in mapping["columns"]]
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

    def prepare(self, ordinal: int, values: dict[str, Any], id_parts: list[str]) -> dict[str, Any]:
        """Cross-field checks: the ILS id (read or generated), the consent wanted, the row hash."""
        if self.id_columns:
            if not any(id_parts):
                raise RowError("ils_id", "the columns the id is made from are all empty")
            values["ils_id"] = "gen-" + digest(*(p.lower() for p in id_parts))[:24]
        elif self.id_from_row:
            values["ils_id"] = f"row-{ordinal}"
        values["consent"] = self._wanted_consent(values)
        values["row_hash"] = digest(*(values.get(f) for f in self.fields), *sorted(values["consent"].items()))
        return values

    def _wanted_consent(self, values: dict[str, Any]) -> dict[str, bool]:
        wanted: dict[str, bool] = {}
        method = values.get("contact_method")
        if method is not None:
            chosen = CHANNEL_WORDS.get(method.strip().lower())
            wanted = {c: c == chosen for c in consent.CHANNELS}
        for channel in ("email", "sms"):
            if values.get(f"consent_{channel}") is not None:
                wanted[channel] = values[f"consent_{channel}"]
        return wanted

    def write(self, session: Session, rows: list[tuple[int, dict[str, Any]]], *, dry_run: bool) -> BatchResult:
        writer, result = Writer(session), BatchResult()
        existing = writer.lookup(PATRON, "ils_id", ["id", "row_hash", "erased_at"], (v["ils_id"] for _l, v in rows))
        seen: dict[str, str] = {}
        changed: list[dict[str, Any]] = []
        for line, values in rows:
            ils_id, row_hash = values["ils_id"], values["row_hash"]
            before = seen.get(ils_id) or (existing[ils_id][1] if ils_id in existing else None)
            if ils_id in existing and existing[ils_id][2] is not None:
                result.rejected.append(Rejected(line, "ils_id", "this patron was erased in Liaison and is not re-imported"))
                continue
            if before == row_hash:
                result.unchanged += 1
                continue
            if ils_id in existing or ils_id in seen:
                result.updated += 1
            else:
                result.new += 1
            seen[ils_id] = row_hash
            changed.append(values)
        self.branches.resolve(session, (v.get("branch") for v in changed), dry_run=dry_run)
        self.zones.resolve(session, (v.get("zone") for v in changed), dry_run=dry_run)
        if dry_run or not changed:
            return result
        self.changed += len(changed)
        self._upsert(writer, changed)
        self._record_consent(writer, changed, existing)
        return result

    def _upsert(self, writer: Writer, changed: list[dict[str, Any]]) -> None:
        columns = [COLUMNS[f] for f in self.fields] + ["row_hash", "created_at", "updated_at"]
        keep = ["created_at"]
        if "history_opt_in" not in self.fields:
            columns.append("history_opt_in")
            keep.append("history_opt_in")
        stamp = writer.timestamp(PATRON, "created_at", self.now)
        tail = (stamp, stamp) + ((False,) if "history_opt_in" not in self.fields else ())
        rows = []
        for values in changed:
            row = []
            for f in self.fields:
                value = values.get(f)
                if f == "branch":
                    value = self.branches.id(value)
                elif f == "zone":
                    value = self.zones.id(value)
                elif f in DATES:
                    value = writer.date(value)
                row.append(value)
            rows.append((*row, values["row_hash"], *tail))
        writer.upsert(PATRON, columns, rows, key="ils_id", keep=keep)

    def _record_consent(self, writer: Writer, changed: list[dict[str, Any]], existing: dict) -> None:
        """Consent records for every stated channel × topic that differs from the patron's current consent.

        The same records crmcore.consent.record appends (history row + current row, source and date),
        written set-based: a first import of a million patrons states hundreds of thousands of them.
        """
        stating = [v for v in changed if v["consent"]]
        if not stating:
            return
        ids = {k: row[0] for k, row in existing.items()}
        new_ids = [v["ils_id"] for v in stating if v["ils_id"] not in ids]
        ids.update({k: row[0] for k, row in writer.lookup(PATRON, "ils_id", ["id"], new_ids).items()})
        current: dict[tuple[int, str, str], bool] = {}
        known = [ids[v["ils_id"]] for v in stating if v["ils_id"] in existing]
        for start in range(0, len(known), 2000):
            query = CURRENT.select().where(CURRENT.c.patron_id.in_(known[start : start + 2000]))
            current.update({(r.patron_id, r.channel, r.topic): r.granted for r in writer.session.connection().execute(query)})
        stamp = writer.timestamp(CONSENT, "recorded_at", self.now)
        records = []
        for values in stating:
            patron_id = ids[values["ils_id"]]
            for channel, want in values["consent"].items():
                for topic in self.topics:
                    if want != current.get((patron_id, channel, topic), False):
                        records.append((patron_id, channel, topic, want, stamp, self.source, consent.WORDING_VERSION))
        columns = ["patron_id", "channel", "topic", "granted", "recorded_at", "source", "wording_version"]
        writer.insert(CONSENT, columns, records)
        later = "excluded.updated_at >= current_consent.updated_at"
        writer.insert(CURRENT, ["patron_id", "channel", "topic", "granted", "updated_at"], [r[:5] for r in records],
                      conflict=f"ON CONFLICT (patron_id, channel, topic) DO UPDATE SET granted = excluded.granted, updated_at = excluded.updated_at WHERE {later}")
        self.consents_recorded += len(records)

    def finish(self, db, *, dry_run: bool) -> list[str]:
        notes = []
        for what, codes in (("branches", self.branches), ("zones", self.zones)):
            if codes.created:
                shown = ", ".join(codes.created[:20]) + (" …" if len(codes.created) > 20 else "")
                notes.append(f"{'Would create' if dry_run else 'Created'} {len(codes.created)} {what}: {shown}.")
        if self.consents_recorded:
            notes.append(f"{self.consents_recorded:,} consent records written (source {self.source!r}).")
        if self.changed and not dry_run:
            with db.write() as session:
                kpis.refresh_summaries(session)  # registrations, lifecycle states and penetration follow the patrons
            notes.append("Dashboard figures updated.")
        return notes
