"""Activity rollups: monthly per-patron counts rebuilt from raw events, set-based, on both backends.

Raw `activity_event` rows are deleted by retention after some months; `activity_monthly` and the
patron's `first_activity_on` / `last_activity_on` outlive them. So a rebuild only ever touches months
that raw events still cover, and the two patron dates only move outwards (first earlier, last later).
Retention must therefore delete raw events by whole months (everything before the first of a month).

Known limit: a rebuild from a month before the retention cutoff (activity imported for a month older than the
window) starts at the earliest raw event and so also rebuilds the months in between whose raw events
retention already deleted: their rollups are lost (for every patron in a full rebuild, for the patrons given
rows in an incremental one). Such a rebuild should leave the purged months' rollups alone and add the new
events to them instead.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, case, delete, func, insert, select, true, update
from sqlmodel import Session

from crmcore import kpis
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

