"""Patron imports: upsert on the ILS id, unchanged rows left alone, consent as the ILS states it.

An ILS notice preference (how overdue and hold notices go) is not a marketing opt-in: it sets the
patron's preferred channel and grants only the services topic on it. Other topics come from explicit
opt-in columns (Email opt-in, Text message opt-in) for the topics the mapping names. A consent change is
recorded only when what the ILS states changed since the last import of that patron (an edge, kept in
`patron.ils_consent`), and never over the patron's own choice (`consent.applies`).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from itertools import repeat
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session

from crmcore import kpis
from crmcore.bulk import BulkWriter
from crmcore.imports.batch import Batch, BatchResult, Rejected, digest, digests
from crmcore.imports.codes import Codes
from crmcore.imports.mapping import OPT_IN_TOPICS
from crmcore.library import consent
from crmcore.models import Branch, ConsentRecord, CurrentConsent, Patron, Zone
from crmcore.signups import prospects

PATRON = Patron.__table__
CONSENT, CURRENT = ConsentRecord.__table__, CurrentConsent.__table__
# Liaison field → patron column (zone and branch arrive as codes and become ids).
COLUMNS = {
    "ils_id": "ils_id", "first_name": "first_name", "last_name": "last_name", "email": "email", "phone": "phone",
    "birth_year": "birth_year", "age_band": "age_band", "zone": "zone_id", "branch": "branch_id",
    "patron_type": "patron_type", "registered_on": "registered_on", "expires_on": "expires_on",
    "interests": "interests", "history_opt_in": "history_opt_in",
    # What an anonymised usage export says instead of names and addresses (non_resident arrives as resident).
    "last_activity": "ils_last_activity_on", "has_email": "has_email", "resident": "resident",
    "lifetime_checkouts": "lifetime_checkouts", "lifetime_renewals": "lifetime_renewals",
    "language": "language",
}
DATES = {"registered_on", "expires_on", "last_activity"}
OWN_CHOICES = {"history_opt_in": "history_stopped_by_patron", "interests": "interests_cleared_by_patron"}  # column → the patron's flag
NOT_TEXT = {"birth_year", "history_opt_in", "has_email", "resident", "lifetime_checkouts", "lifetime_renewals"}
TEXT_FIELDS = {f for f in COLUMNS if f not in DATES and f not in NOT_TEXT}
# Row-number ids: when more than this share of the rows whose id is already stored differ from the stored
# patron, the file is probably sorted differently from the last one and the ids matched the wrong patrons.
ROW_ID_DIFFER_SHARE = 0.5
ROW_ID_WARNING = ("Most rows differ from the stored patrons with the same row numbers: if this file is sorted differently from the "
                  "last one, row-number ids matched the wrong patrons. Use an id column, or ids made from columns.")
CHANNEL_WORDS = {
    "email": "email", "emailpro": "email", "e-mail": "email",
    "sms": "sms", "mobile": "sms", "text": "sms", "smsalertnumber": "sms",
    "phone": "phone", "phonepro": "phone", "telephone": "phone",
    "mail": "mail", "post": "mail", "letter": "mail", "address": "mail", "print": "mail", "paper": "mail",
}
NO_CHANNEL_WORDS = {"none", "no", "nothing", "do not contact", "no notices"}
NOT_UNDERSTOOD = "?"
SERVICES = "services"


def notice_channel(word: str | None) -> str | None:
    """The channel a notice preference names, None for "no channel", NOT_UNDERSTOOD for anything else."""
    cleaned = (word or "").strip().lower()
    if cleaned in CHANNEL_WORDS:
        return CHANNEL_WORDS[cleaned]
    return None if cleaned in NO_CHANNEL_WORDS else NOT_UNDERSTOOD


def stated_text(wanted: tuple) -> str:
    """How `patron.ils_consent` keeps what an import stated: "email/services=1;sms/services=0"."""
    return ";".join(f"{channel}/{topic}={int(on)}" for (channel, topic), on in wanted)


def parse_stated(text: str | None) -> dict[tuple[str, str], bool]:
    out = {}
    for part in (text or "").split(";"):
        pair, _, on = part.partition("=")
        channel, _, topic = pair.partition("/")
        if topic:
            out[(channel, topic)] = on == "1"
    return out


class PatronImport:
    kind = "patrons"
    bulk_tables = (PATRON, CONSENT, CURRENT)  # a first load goes in without their secondary indexes

    def __init__(self, *, mapping: dict[str, Any], file_name: str, now: datetime, **_: Any):
        # A field comes from a column, from year and month columns, or (resident) from its negation.
        self.flip_resident = "non_resident" in mapping["columns"]
        mapped = set(mapping["columns"]) | set(mapping.get("year_month") or {}) | ({"resident"} if self.flip_resident else set())
        self.fields = [f for f in COLUMNS if f in mapped or f == "ils_id"]
        self.topics = mapping.get("consent_topics", OPT_IN_TOPICS)  # what the opt-in columns cover
        for topic in self.topics:
            consent.check("email", topic)
        self.id_columns = bool(mapping.get("id_columns"))
        self.id_from_row = bool(mapping.get("id_from_row")) and not self.id_columns
        self.source = f"import: {file_name}"[:200]
        self.now = now
        self.branches, self.zones = Codes(Branch.__table__), Codes(Zone.__table__)
        self.consents_recorded = 0
        self.consents_kept = 0  # changes the file stated that the patron's own choice stood against
        self.states_consent = any(f in mapping["columns"] for f in ("contact_method", "consent_email", "consent_sms"))
        self.notice_values: dict[str | None, int] = {}  # notice-preference value as written → rows
        # Patron columns worked out from the consent fields, written only when the mapping has those.
        self.derived = (["preferred_channel"] if "contact_method" in mapping["columns"] else []) + (["ils_consent"] if self.states_consent else [])
        self.changed = 0
        self.stored_seen = 0  # rows whose id was already stored (row-number ids)
        self.stored_differ = 0  # … and that differ from the stored patron
        self._summaries: Future | None = None
        self._widened = False

    def prepare(self, batch: Batch) -> Batch:
        """Cross-field work, column by column: the ILS id (read or generated), the consent wanted, the row hash."""
        columns = batch.columns
        if self.id_columns:
            failed = {k: ("ils_id", "the columns the id is made from are all empty") for k, parts in enumerate(batch.id_parts) if not any(parts)}
            columns["ils_id"] = [None if k in failed else "gen-" + digest(*(p.lower() for p in parts))[:24] for k, parts in enumerate(batch.id_parts)]
            batch.drop(failed)
        elif self.id_from_row:
            columns["ils_id"] = [f"row-{ordinal}" for ordinal in batch.ordinals]
        if self.flip_resident:  # "Outside of County: true" → not a resident
            columns["resident"] = [None if v is None else not v for v in columns.pop("non_resident")]
        consent_columns = [columns.get(f) or [None] * len(batch) for f in ("contact_method", "consent_email", "consent_sms")]
        chosen: dict[tuple, tuple[tuple, str]] = {}  # (method, email, sms) → (sorted ((channel, topic), wanted) pairs, hash suffix)
        for key in set(zip(*consent_columns)):
            wanted = tuple(sorted(self._wanted_consent(*key).items()))
            chosen[key] = (wanted, "".join(f"\x1f{pair}" for pair in wanted))
        stated = [chosen[key] for key in zip(*consent_columns)]
        columns["consent"] = [wanted for wanted, _suffix in stated]
        if "contact_method" in columns:
            channels = {method: notice_channel(method) for method in set(columns["contact_method"])}
            columns["preferred_channel"] = [channels[m] if channels[m] != NOT_UNDERSTOOD else None for m in columns["contact_method"]]
        # The same hash as digest(*field values, *consent pairs), one column at a time.
        texts = [_as_text(columns[f], f in TEXT_FIELDS) for f in self.fields]
        lines = [line + suffix for line, (_wanted, suffix) in zip(map("\x1f".join, zip(*texts)), stated)]
        columns["row_hash"] = digests(lines)
        return batch

    def _wanted_consent(self, method: str | None, email: bool | None, sms: bool | None) -> dict[tuple[str, str], bool]:
        """(channel, topic) → granted, as this row states it: services on the notice channel, the opt-in topics
        from the opt-in columns. A notice preference not understood states nothing (it is reported)."""
        wanted: dict[tuple[str, str], bool] = {}
        if method is not None and (chosen := notice_channel(method)) != NOT_UNDERSTOOD:
            wanted = {(c, SERVICES): c == chosen for c in consent.CHANNELS}
        for channel, stated in (("email", email), ("sms", sms)):
            if stated is not None:
                wanted.update({(channel, topic): stated for topic in self.topics})
        return wanted

    def write(self, session: Session, batch: Batch, *, dry_run: bool) -> BatchResult:
        writer, result = BulkWriter(session.connection()), BatchResult()
        columns = batch.columns
        keys = columns["ils_id"]
        existing = writer.lookup(PATRON, "ils_id", ["id", "row_hash", "erased_at", "ils_consent"], keys)
        if "contact_method" in columns:
            for value in columns["contact_method"]:
                self.notice_values[value] = self.notice_values.get(value, 0) + 1
        if not existing and len(set(keys)) == len(keys):  # a batch of patrons all new to Liaison
            changed = list(range(len(keys)))
            result.new = len(changed)
        else:
            changed = self._changed(batch, existing, result)
        if self.id_from_row and existing:
            stored = [k for k, key in enumerate(keys) if key in existing and existing[key][2] is None]
            self.stored_seen += len(stored)
            self.stored_differ += sum(existing[keys[k]][1] != columns["row_hash"][k] for k in stored)
        pick = (lambda column: column) if len(changed) == len(keys) else (lambda column: [column[k] for k in changed])
        self.branches.resolve(session, set(pick(columns["branch"])) if "branch" in columns else (), dry_run=dry_run)
        self.zones.resolve(session, set(pick(columns["zone"])) if "zone" in columns else (), dry_run=dry_run)
        if dry_run or not changed:
            return result
        self.changed += len(changed)
        rows = {f: pick(columns[f]) for f in (*self.fields, "row_hash", "consent", *self.derived) if f in columns}
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
        if self.states_consent:
            rows["ils_consent"] = [stated_text(wanted) for wanted in rows["consent"]]
        columns = [COLUMNS[f] for f in self.fields] + self.derived + ["row_hash", "created_at", "updated_at"]
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
        values += [rows[f] for f in self.derived]
        # What the patron chose on their preference page wins over what the ILS says later.
        writer.upsert(PATRON, columns, list(zip(*values, rows["row_hash"], *tail)), key="ils_id", keep=keep, guarded=OWN_CHOICES)

    def _record_consent(self, writer: BulkWriter, keys: list[str], stated: list[tuple], existing: dict) -> None:
        """Consent records for what the ILS states differently from the last import of each patron (an edge),
        where the change applies over the patron's current consent (never over the patron's own choice).

        The same records crmcore.library.consent.record appends (history row + current row, source, who
        decided and date), written set-based: a first import of a million patrons states hundreds of thousands.
        """
        edges = []  # (ils id, ((channel, topic), wanted) pairs that changed since the last import)
        for key, wanted in zip(keys, stated):
            before = parse_stated(existing[key][3]) if key in existing else {}
            changed = tuple((pair, on) for pair, on in wanted if before.get(pair) != on)
            if changed:
                edges.append((key, changed))
        if not edges:
            return
        ids = {k: row[0] for k, row in existing.items()}
        ids.update({k: row[0] for k, row in writer.lookup(PATRON, "ils_id", ["id"], [k for k, _w in edges if k not in ids]).items()})
        current: dict[tuple[int, str, str], tuple[bool, str]] = {}
        known = [ids[k] for k, _w in edges if k in existing]
        for start in range(0, len(known), 2000):
            query = CURRENT.select().where(CURRENT.c.patron_id.in_(known[start : start + 2000]))
            current.update({(r.patron_id, r.channel, r.topic): (r.granted, r.source_class) for r in writer.conn.execute(query)})
        stamp = writer.timestamp(CONSENT, "recorded_at", self.now)
        records = []
        for patron_id, changed in ((ids[k], w) for k, w in edges):
            for (channel, topic), want in changed:
                granted, by = current.get((patron_id, channel, topic), (None, None))
                if want == bool(granted):
                    continue
                if not consent.applies(by=consent.IMPORT, granted=want, current_class=by, current_granted=granted):
                    self.consents_kept += 1
                    continue
                records.append((patron_id, channel, topic, want, stamp, consent.IMPORT, self.source, consent.WORDING_VERSION))
        columns = ["patron_id", "channel", "topic", "granted", "recorded_at", "source_class", "source", "wording_version"]
        writer.insert(CONSENT, columns, records)
        later = "excluded.updated_at >= current_consent.updated_at"
        writer.insert(CURRENT, ["patron_id", "channel", "topic", "granted", "updated_at", "source_class"], [r[:6] for r in records],
                      key=("patron_id", "channel", "topic"), conflict="ON CONFLICT (patron_id, channel, topic) DO UPDATE SET granted = excluded.granted, updated_at = excluded.updated_at, "
                      f"source_class = excluded.source_class WHERE {later}")
        self.consents_recorded += len(records)

    def loaded(self, db) -> None:
        """Every batch is written: work out the dashboard summaries from a read snapshot in the background,
        overlapping a first load's index builds (which run in the database, outside Python's lock)."""
        if self.changed and "last_activity" in self.fields and not self._widened:
            with db.write() as session:
                _widen_last_activity(session)
            self._widened = True
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
        if self.notice_values:
            notes.append("Notice preference values: " + "; ".join(_notice_note(v, n) for v, n in sorted(self.notice_values.items(), key=lambda i: -i[1])) + ".")
        if self.id_from_row and self.stored_seen and self.stored_differ > ROW_ID_DIFFER_SHARE * self.stored_seen:
            notes.append(ROW_ID_WARNING)
        if self.consents_recorded:
            notes.append(f"{self.consents_recorded:,} consent records written (source {self.source!r}).")
        if self.consents_kept:
            notes.append(f"{self.consents_kept:,} consent changes in the file were not applied because the patron decided otherwise "
                         "(their own choice stands until they change it).")
        if self.changed and not dry_run and "email" in self.fields:
            with db.write() as session:  # people who signed up before they had a card: their consent follows them
                linked = prospects.link_patrons(session)
            if linked:
                notes.append(f"{linked:,} sign-ups linked to their patron by email address (their consent carried over).")
        if self.changed and not dry_run:
            self.loaded(db)
            summaries = self._summaries.result()
            with db.write() as session:
                summaries.store(session)  # registrations, lifecycle states and penetration follow the patrons
            notes.append("Dashboard figures updated.")
        return notes


def _widen_last_activity(session: Session) -> int:
    """Each patron's last activity becomes the later of what imported activity says and what the ILS reports
    (`ils_last_activity_on`); only ever later, as crmcore.library.activity's rebuild moves it. Patrons changed."""
    last, ils = PATRON.c.last_activity_on, PATRON.c.ils_last_activity_on
    result = session.execute(update(PATRON).where(ils.is_not(None), or_(last.is_(None), last < ils)).values(last_activity_on=ils))
    return result.rowcount or 0


def _compute_summaries(db) -> kpis.Summaries:
    with db.read() as session:
        return kpis.compute_summaries(session)


def _as_text(values: list, text: bool) -> list[str]:
    """A column as the row hash spells it: "" for missing, str() of anything else."""
    if text:
        return values if None not in values else ["" if v is None else v for v in values]
    return ["" if v is None else str(v) for v in values]


def _notice_note(value: str | None, rows: int) -> str:
    """One notice-preference value and what it became, for the import summary."""
    if value is None:
        return f"(empty) → nothing stated: {rows:,} rows"
    channel = notice_channel(value)
    became = {None: "no channel", NOT_UNDERSTOOD: "not understood, consent left as it was"}.get(channel, f"{channel} (library services only)")
    return f"{value!r} → {became}: {rows:,} rows"
