"""Retention: raw activity older than the window (setting `retention_months`) is deleted, whole months at a time.

The monthly rollups (`activity_monthly`) and the patrons' first/last activity dates outlive the raw events,
so KPIs and segments read the same before and after. Before a month is deleted its rollups are checked
against the raw events, in the same transaction, and rebuilt if they do not match. Each run is audited.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, delete, func, or_, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.db import Database
from crmcore.library import activity
from crmcore.models import ActivityEvent, ActivityMonthly, Patron, utcnow
from crmcore.privacy import audit
from crmcore.surveys import responses as survey_responses

_event = ActivityEvent.__table__
_monthly = ActivityMonthly.__table__
_patron = Patron.__table__


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` after (negative: before) the month of `day`."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def cutoff(session: Session, *, today: date | None = None) -> date:
    """Raw events before this day (the first of a month) are outside the retention window."""
    today = today or utcnow().date()
    return add_months(today, -settings.get(session, "retention_months"))


def preview(db: Database, *, today: date | None = None) -> dict:
    """What a run would do now: the cutoff and how many raw events lie before it."""
    with db.read() as session:
        limit = cutoff(session, today=today)
        count = session.execute(select(func.count()).where(_event.c.occurred_on < limit)).scalar()
    return {"cutoff": limit.isoformat(), "events_before_cutoff": count}


def _rollups_missing(session: Session, month: date) -> int:
    """How many (patron, kind, branch) groups of raw events in `month` the rollups and patron dates do not match."""
    end = add_months(month, 1)
    in_month = and_(_event.c.occurred_on >= month, _event.c.occurred_on < end)
    branch = func.coalesce(_event.c.branch_id, 0)
    raw = (
        select(_event.c.patron_id, _event.c.kind, branch.label("branch_id"), func.sum(_event.c.count).label("n"))
        .where(in_month)
        .group_by(_event.c.patron_id, _event.c.kind, branch)
        .subquery()
    )
    joined = raw.outerjoin(
        _monthly,
        and_(_monthly.c.patron_id == raw.c.patron_id, _monthly.c.month == month, _monthly.c.kind == raw.c.kind, _monthly.c.branch_id == raw.c.branch_id),
    )
    groups = session.execute(select(func.count()).select_from(joined).where(or_(_monthly.c.count.is_(None), _monthly.c.count != raw.c.n))).scalar()
    first, last = _patron.c.first_activity_on, _patron.c.last_activity_on
    dates = session.execute(
        select(func.count())
        .select_from(_event.join(_patron, _patron.c.id == _event.c.patron_id))
        .where(in_month, or_(first.is_(None), last.is_(None), first > _event.c.occurred_on, last < _event.c.occurred_on))
    ).scalar()
    return groups + dates


def run(db: Database, *, actor: Actor | None = None, today: date | None = None) -> dict:
    """Delete raw events before the cutoff, month by month, after making sure the rollups hold them.

    `actor` None is the worker (the system); a staff member needs Perm.MANAGE_SETTINGS.
    """
    if actor is not None:
        require(actor, Perm.MANAGE_SETTINGS)
    with db.read() as session:
        limit = cutoff(session, today=today)
        earliest = session.execute(select(func.min(_event.c.occurred_on)).where(_event.c.occurred_on < limit)).scalar()
    deleted, months, rebuilt_from = 0, 0, None
    month = activity.first_of_month(earliest) if earliest else limit
    while month < limit:
        end = add_months(month, 1)
        # One transaction per month: check, rebuild if needed, delete; short write locks on SQLite.
        with db.write() as session:
            if _rollups_missing(session, month):
                activity.rebuild_rollups(session, since=month)
                rebuilt_from = rebuilt_from or month
            count = session.execute(delete(_event).where(_event.c.occurred_on >= month, _event.c.occurred_on < end)).rowcount
        deleted += count or 0
        months += 1 if count else 0
        month = end
    with db.write() as session:  # written survey answers are personal data: kept no longer than the events
        texts = survey_responses.purge_texts(session, before=limit)
    result = {
        "cutoff": limit.isoformat(),
        "events_deleted": deleted,
        "survey_texts_deleted": texts,
        "months_purged": months,
        "rollups_rebuilt_from": rebuilt_from.isoformat() if rebuilt_from else None,
    }
    with db.write() as session:
        audit.record(session, actor=actor, action="retention.run", entity="activity_event", detail=result)
    return result


def daily(db: Database) -> str:
    """The worker's job."""
    result = run(db)
    return f"retention: {result['events_deleted']} raw events before {result['cutoff']} deleted"
