"""Enrolment: patrons whose trigger fired enter a journey, set-based (one INSERT … SELECT per journey,
never a loop over patrons), exactly once per re-entry round (the unique journey × patron × round).

Entering needs current consent for the channel and topic of the journey's first message, for holdout and
recipients alike, so that the two groups compare; a deterministic share (the journey's holdout) is held
out: they go through the steps and are sent nothing.

How the statement is shaped decides its cost at 1,000,000 patrons (SQLite's planner does not weigh the
two orders itself): a time trigger narrows patrons to a window of days by an index, so consent is
looked up for each candidate; a segment trigger ("no activity for 180 days") can match a third of the
library, so the set of consenting patrons drives and the segment is checked for each of them (0.5 s
instead of 4 s for We miss you on SQLite), a cost bounded by the consenting set whatever the segment.
Attending a program is found from the week's attendance rows (an index on date and kind), not by
probing each patron's activity.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, exists, false, func, insert, literal, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from crmcore.campaigns.drafts import _holdout_sql
from crmcore.campaigns.rules.compiler import compile_rules
from crmcore.campaigns.sending import _consent_granted
from crmcore.journeys.definitions import first_send
from crmcore.models import ActivityEvent, CurrentConsent, Journey, JourneyEnrolment, JourneyVersion, Patron, Segment

# A time trigger looks back this many days, so that a day the worker missed (or an import that came late)
# still enrols its patrons, once.
LOOKBACK_DAYS = 7


def plus_days(session: Session, column, days: int):
    """SQL: the date `days` after a date column, on either backend."""
    if session.get_bind().dialect.name == "sqlite":
        return func.date(column, literal(f"{int(days):+d} days"))
    return column + literal(int(days))


def trigger_clause(session: Session, trigger: dict[str, Any], today: date):
    """SQL over the patron table: whose trigger fires today."""
    kind, days = trigger["kind"], int(trigger.get("days") or 0)
    first, last = today - timedelta(days=days + LOOKBACK_DAYS - 1), today - timedelta(days=days)
    if kind == "registered":
        clause = Patron.registered_on.between(first, last)
    elif kind == "first_activity":
        clause = Patron.first_activity_on.between(first, last)
    elif kind == "card_expiry":
        clause = Patron.expires_on.between(today + timedelta(days=days - LOOKBACK_DAYS + 1), today + timedelta(days=days))
    elif kind == "attended":
        clause = Patron.id.in_(select(ActivityEvent.patron_id).where(ActivityEvent.kind == "event_attendance", ActivityEvent.occurred_on.between(first, last)))
    else:  # segment: a saved segment, or the template's own rule
        rules = trigger.get("rule")
        if trigger.get("segment_id") is not None:
            segment = session.get(Segment, trigger["segment_id"])
            if segment is None:
                return false()
            rules = segment.rules
        return compile_rules(rules, today=today)
    if trigger.get("rule") is not None:
        clause = and_(clause, compile_rules(trigger["rule"], today=today))
    return clause


def _consenting(trigger: dict[str, Any], channel: str, topic: str):
    """SQL: the patron consents to the channel and topic, shaped for the trigger (see the module's docstring)."""
    if trigger["kind"] != "segment":
        return _consent_granted(Patron.id, channel, topic)
    return Patron.id.in_(select(CurrentConsent.patron_id).where(CurrentConsent.channel == channel, CurrentConsent.topic == topic, CurrentConsent.granted.is_(True)))


def enrol(session: Session, *, journey: Journey, version: JourneyVersion, today: date) -> int:
    """Enrol everyone whose trigger fires today and who may enter (never before, or not within the
    re-entry days); returns how many entered."""
    definition = version.definition
    send = first_send(definition)
    earlier = aliased(JourneyEnrolment)
    blocking = [earlier.journey_id == journey.id, earlier.patron_id == Patron.id]
    if definition.get("reentry_days") is not None:
        recent = today - timedelta(days=int(definition["reentry_days"]))
        blocking.append(or_(earlier.state == "active", earlier.ended_on > recent))
    last_round = select(func.max(earlier.round)).where(earlier.journey_id == journey.id, earlier.patron_id == Patron.id).scalar_subquery()
    holdout = _holdout_sql(journey.id, Patron.id, journey.holdout_pct)
    chosen = select(
        literal(journey.id), literal(version.id), Patron.id, func.coalesce(last_round, 0) + 1, holdout,
        literal(today, JourneyEnrolment.__table__.c.entered_on.type), Patron.expires_on, literal(0),
        literal(today, JourneyEnrolment.__table__.c.due_on.type), literal("active"),
    ).where(
        trigger_clause(session, definition["trigger"], today),
        Patron.erased_at.is_(None),
        _consenting(definition["trigger"], send["channel"], send["topic"]),
        ~exists().where(*blocking),
    )
    columns = ["journey_id", "version_id", "patron_id", "round", "is_holdout", "entered_on", "expires_on_at_entry", "step", "due_on", "state"]
    # RETURNING to count: psycopg reports no row count for INSERT … SELECT.
    return len(session.execute(insert(JourneyEnrolment.__table__).from_select(columns, chosen).returning(JourneyEnrolment.__table__.c.id)).all())
