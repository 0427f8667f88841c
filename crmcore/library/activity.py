"""Activity rollups: monthly per-patron counts rebuilt from raw events, set-based, on both backends.

Raw `activity_event` rows are deleted by retention after some months; `activity_monthly` and the
patron's `first_activity_on` / `last_activity_on` outlive them. So a rebuild only ever touches months
that raw events still cover, and the two patron dates only move outwards (first earlier, last later).
Retention must therefore delete raw events by whole months (everything before the first of a month).

An import that stores new raw events for a few patrons (a day's activity) does not rebuild their months: it adds
the new events' counts to the rollups (`add_events`), which held every earlier raw event, so the rows are the
ones a rebuild would give, without reading each of those patrons' events again.

Known limit: a rebuild from a month before the retention cutoff (activity imported for a month older than the
window, by an import of more than `incremental.MAX_SHARE` of the patrons, or retention's own check) starts at
the earliest raw event and so also rebuilds the months in between whose raw events retention already deleted:
their rollups are lost. Such a rebuild should leave the purged months' rollups alone and add the new events
to them instead, as `add_events` does.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, case, delete, func, insert, select, true, update
from sqlmodel import Session

from crmcore import kpis
from crmcore.bulk import BulkWriter
from crmcore.kpis import incremental
from crmcore.kpis.summaries import month_start
from crmcore.models import ActivityEvent, ActivityMonthly, Patron

KINDS = ("checkout", "renewal", "digital_loan", "pc_session", "event_attendance", "visit", "survey_response")
# What staff read for each kind (tables, chart legends, segment rules).
KIND_LABELS = {"checkout": "checkout", "renewal": "renewal", "digital_loan": "digital loan", "pc_session": "computer session",
               "event_attendance": "event attendance", "visit": "visit", "survey_response": "survey response"}

_event = ActivityEvent.__table__
_monthly = ActivityMonthly.__table__
_patron = Patron.__table__


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def rebuild_rollups(session: Session, *, since: date | None = None, patrons=None, rebuild_now: bool = True) -> None:
    """Recompute `activity_monthly` for the months from `since` on (default: every month raw events cover)
    and widen the patrons' first/last activity dates to what the raw events show (only ever outwards: a last
    activity date a patron import took from the ILS, `ils_last_activity_on`, stays when it is the later one);
    then the dashboard summaries. With `patrons` (ids: the only patrons whose raw events changed), only theirs,
    and the summaries follow them incrementally (crmcore.kpis.incremental; `rebuild_now` as there)."""
    ids = sorted({int(i) for i in patrons}) if patrons is not None else None
    if ids is not None and not incremental.few_enough(session, len(ids)):
        ids = None  # most patrons changed: one set-based pass beats taking them out one by one
    earliest_raw = session.execute(select(func.min(_event.c.occurred_on))).scalar()
    if ids is None:
        if earliest_raw is not None:
            _rebuild(session, since, earliest_raw, None)
        _refresh_dashboard(session)
        return
    with incremental.patrons_changing(session, ids, rollups_from=first_of_month(since) if since else None, rebuild_now=rebuild_now):
        if earliest_raw is not None:
            for start in range(0, len(ids), incremental.CHUNK):
                _rebuild(session, since, earliest_raw, ids[start : start + incremental.CHUNK])



def _rebuild(session: Session, since: date | None, earliest_raw: date, ids: list[int] | None) -> None:
    """rebuild_rollups' work, for every patron (ids None) or these."""
    # Months before the earliest raw event were purged by retention: their rollups cannot be rebuilt.
    start = max(first_of_month(since), first_of_month(earliest_raw)) if since else first_of_month(earliest_raw)
    # When every raw event is in range, no filter: a full scan beats millions of index lookups.
    in_range = _event.c.occurred_on >= start if start > earliest_raw or ids is not None else true()
    if ids is not None:
        in_range = and_(in_range, _event.c.patron_id.in_(ids))

    session.execute(delete(_monthly).where(_monthly.c.month >= start, _monthly.c.patron_id.in_(ids) if ids is not None else true()))
    month = month_start(_event.c.occurred_on)
    branch = func.coalesce(_event.c.branch_id, 0)
    grouped = (
        select(_event.c.patron_id, month, _event.c.kind, branch, func.sum(_event.c.count))
        .where(in_range)
        .group_by(_event.c.patron_id, month, _event.c.kind, branch)
    )
    session.execute(
        insert(_monthly).from_select(["patron_id", "month", "kind", "branch_id", "count"], grouped)
    )

    span = (
        select(
            _event.c.patron_id.label("patron_id"),
            func.min(_event.c.occurred_on).label("first_on"),
            func.max(_event.c.occurred_on).label("last_on"),
        )
        .where(in_range)
        .group_by(_event.c.patron_id)
        .subquery()
    )
    first, last = _patron.c.first_activity_on, _patron.c.last_activity_on
    session.execute(
        update(_patron)
        .where(_patron.c.id == span.c.patron_id)
        .where(
            # Only rows that change: an UPDATE of a million unchanged rows is not free.
            (first.is_(None)) | (last.is_(None)) | (span.c.first_on < first) | (span.c.last_on > last)
        )
        .values(
            first_activity_on=case((and_(first.is_not(None), first <= span.c.first_on), first), else_=span.c.first_on),
            last_activity_on=case((and_(last.is_not(None), last >= span.c.last_on), last), else_=span.c.last_on),
        )
    )
    widen_last_months(session, since=start, patrons=ids)


class NewEvents:
    """Raw events as an import stores them, kept as the rollups take them: the count per patron × month × kind ×
    branch, and each patron's first and last day. Past `LIMIT` keys, `counts` is None: the import rebuilds
    the patrons' rollups from the raw events instead (it is no longer a day's activity)."""

    LIMIT = 250_000

    def __init__(self) -> None:
        self.counts: dict[tuple[int, date, str, int], int] | None = {}
        self.days: dict[int, list[date]] = {}  # patron id -> [first day, last day]
        self.earliest: date | None = None

    def add(self, rows) -> None:
        """Rows stored: (patron id, day, kind, branch id or None, count)."""
        counts, days = self.counts, self.days
        for patron, day, kind, branch, count in rows:
            if counts is not None:
                key = (patron, day.replace(day=1), kind, branch or 0)
                counts[key] = counts.get(key, 0) + count
            span = days.get(patron)
            if span is None:
                days[patron] = [day, day]
            elif day < span[0]:
                span[0] = day
            elif day > span[1]:
                span[1] = day
            if self.earliest is None or day < self.earliest:
                self.earliest = day
        if counts is not None and len(counts) > self.LIMIT:
            self.counts = None

    def patron_ids(self) -> list[int]:
        return sorted(self.days)


def add_events(session: Session, events: NewEvents) -> None:
    """After new raw events were stored (`events`): the rollups, the patrons' first and last activity dates and
    last months per kind, and the dashboard summaries, as `rebuild_rollups(since=their first month,
    patrons=theirs)` leaves them, by adding the new counts to the rollups instead of re-reading those patrons'
    months of raw events (which the rollups held already). That rebuild itself for many patrons or keys."""
    ids = events.patron_ids()
    if not ids:
        return
    since = first_of_month(events.earliest)
    if events.counts is None or not incremental.few_enough(session, len(ids)):
        rebuild_rollups(session, since=since, patrons=ids)
        return
    rows = [(*key, count) for key, count in events.counts.items()]
    with incremental.patrons_changing(session, ids, rollups_from=since, added=[(p, m, k, c) for p, m, k, _b, c in rows]):
        writer = BulkWriter(session.connection())
        writer.insert(_monthly, ["patron_id", "month", "kind", "branch_id", "count"], [(p, writer.date(m), k, b, c) for p, m, k, b, c in rows],
                      conflict="ON CONFLICT (patron_id, month, kind, branch_id) DO UPDATE SET count = activity_monthly.count + excluded.count")
        latest: dict[int, dict[str, date]] = {}
        for p, m, k, _b, _c in rows:
            kinds = latest.setdefault(p, {})
            if k not in kinds or m > kinds[k]:
                kinds[k] = m
        _widen_patrons(session, writer, events.days, latest)


_DATES = ("first_activity_on", "last_activity_on", *(f"last_{k}_month" for k in KINDS))


def _widen_patrons(session: Session, writer: BulkWriter, days: dict[int, list[date]], latest: dict[int, dict[str, date]]) -> None:
    """Move these patrons' first and last activity dates and last months per kind outwards to `days` (patron ->
    [first, last]) and `latest` (patron -> kind -> month; none: unchanged), in one UPDATE per patron row."""
    ids = sorted(days)
    values = [(p, writer.date(days[p][0]), writer.date(days[p][1]), *(writer.date(latest.get(p, {}).get(k)) for k in KINDS)) for p in ids]
    if writer.sqlite:
        # SQLite's min() and max() of two values are NULL when either is: coalesce keeps the one there is.
        sets = [f"{c} = coalesce({'min' if c == 'first_activity_on' else 'max'}({c}, :{c}), {c}, :{c})" for c in _DATES]
        session.connection().exec_driver_sql(f"UPDATE patron SET {', '.join(sets)} WHERE id = :id", [dict(zip(("id", *_DATES), v)) for v in values])
        return
    # PostgreSQL: one statement over arrays, not one per patron (LEAST and GREATEST pass over NULLs).
    sets = [f"{c} = {'LEAST' if c == 'first_activity_on' else 'GREATEST'}(patron.{c}, v.{c})" for c in _DATES]
    session.connection().exec_driver_sql(
        f"UPDATE patron SET {', '.join(sets)} FROM unnest(%s::integer[], {', '.join(['%s::date[]'] * len(_DATES))}) AS v(id, {', '.join(_DATES)}) "
        "WHERE patron.id = v.id",
        tuple(list(c) for c in zip(*values)),
    )


def last_month_column(kind: str):
    """The patron column holding the first day of the patron's last month with activity of `kind`."""
    return _patron.c[f"last_{kind}_month"]


def widen_last_months(session: Session, *, since: date | None = None, patrons: list[int] | None = None) -> None:
    """Move each patron's (or these patrons') last month per kind forward to what the rollups from `since` on
    show (never back: rollups before `since` were not touched)."""
    month, kind = _monthly.c.month, _monthly.c.kind
    latest = (
        select(_monthly.c.patron_id, *(func.max(case((kind == k, month))).label(k) for k in KINDS))
        .where(month >= since if since else true(), _monthly.c.patron_id.in_(patrons) if patrons is not None else true())
        .group_by(_monthly.c.patron_id)
        .subquery()
    )
    values = {}
    for k in KINDS:
        column, seen = last_month_column(k), latest.c[k]
        values[column.name] = case((seen > column, seen), else_=func.coalesce(column, seen))
    session.execute(update(_patron).where(_patron.c.id == latest.c.patron_id).values(values))


def _refresh_dashboard(session: Session) -> None:
    # The dashboard's summary tables are derived from these rollups and the patrons: keep them in step.
    kpis.refresh_summaries(session)

