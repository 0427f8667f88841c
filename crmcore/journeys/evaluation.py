"""The worker's journey jobs: the daily evaluation of every active journey (time triggers, exits, steps)
and the same after each import (event triggers: a registration, a first activity, a program attended).

Each journey is evaluated in two transactions: the enrolment, then the exits and every step. A crash in
either leaves the journey as it was before that transaction began; one between them leaves patrons
entered at their first step, which the next evaluation takes on (entering and each step happen once
whatever runs again). On PostgreSQL the journey's row is locked with SKIP LOCKED in each, so several
workers never evaluate one journey at once. The steps run on committed enrolments because PostgreSQL
re-checks every foreign key of a row updated in the transaction that inserted it (150,000 rows a first
day at 1,000,000 patrons: seconds).

The first day of a journey enrols everyone its trigger finds at once (150,000 patrons at 1,000,000): on
PostgreSQL the planner would plan the steps for the empty tables it last sampled and rescan per row, so
the statistics of a table the evaluation has grown past autovacuum's own threshold are re-sampled there
and then (autovacuum sees no uncommitted rows, and comes later). Its just-in-time compiler is off for these
transactions: at 1,000,000 patrons the statements' cost estimates pass its thresholds, and compiling each
took longer (0.5 to 1.7 s) than the rows it was compiled for (a setting of the transaction, not the server's).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update

from crmcore.db import Database
from crmcore.journeys import definitions
from crmcore.journeys.enrolment import enrol
from crmcore.journeys.steps import advance, exits, hold, release
from crmcore.models import ImportRun, Journey, JourneyEnrolment, JourneyVersion, Segment, utcnow

log = logging.getLogger("liaison.journeys")


def latest_version(session, journey_id: int) -> JourneyVersion | None:
    return session.scalars(select(JourneyVersion).where(JourneyVersion.journey_id == journey_id).order_by(JourneyVersion.number.desc()).limit(1)).first()


def _locked(session, journey_id: int) -> Journey | None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))  # see the module's docstring
    return session.scalars(select(Journey).where(Journey.id == journey_id, Journey.status == "active").with_for_update(skip_locked=True)).first()


def evaluate_journey(db: Database, *, journey_id: int, now: datetime | None = None) -> dict[str, Any] | None:
    """Evaluate one active journey as of `now`; None if it is not active or another worker holds it."""
    now = now or utcnow()
    today = now.date()
    with db.write() as session:
        journey = _locked(session, journey_id)
        if journey is None:
            return None
        version = latest_version(session, journey_id)
        try:
            definitions.validate(version.definition, segment_exists=lambda sid: session.get(Segment, sid) is not None)
        except ValueError as exc:
            # A segment deleted since activation: the journey stops taking patrons, with the reason kept.
            journey.status = "paused"
            session.add(journey)
            hold(session, journey_id=journey_id)  # as a pause by staff: what is queued waits
            log.error("journey %s paused: %s", journey_id, type(exc).__name__)
            return {"paused": str(exc)}
        done: dict[str, Any] = {"entered": enrol(session, journey=journey, version=version, today=today)}
    with db.write() as session:
        journey = _locked(session, journey_id)
        if journey is None:  # paused in between, or another worker took it on
            return {k: v for k, v in done.items() if v}
        _restat(session, "journey_enrolment", done["entered"])
        for reason, n in exits(session, journey=journey, definition=version.definition, today=today).items():
            done[f"exited ({reason})"] = n
        in_use = set(session.scalars(select(JourneyEnrolment.version_id).where(JourneyEnrolment.journey_id == journey_id, JourneyEnrolment.state == "active").distinct()))
        for old in sorted(in_use):
            kept = version if old == version.id else session.get(JourneyVersion, old)
            for key, n in advance(session, journey=journey, version=kept, today=today, now=now).items():
                done[key] = done.get(key, 0) + n
        if released := release(session, journey_id=journey_id, now=now):  # held at a resume for the weekly cap, now within it
            done["released"] = released
        session.execute(update(Journey).where(Journey.id == journey_id).values(last_evaluated_on=today))
    if done.get("messages"):
        with db.write() as session:  # after the commit: its lock is not held through another journey
            _restat(session, "message", done["messages"])
    return {k: v for k, v in done.items() if v}


_RESTATTED = ("journey_enrolment", "message")


def _restat(session, table: str, changed: int) -> None:
    """PostgreSQL: re-sample `table`'s planner statistics when `changed` rows (this transaction's) pass
    autovacuum's analyze threshold (50 rows and 10 % of the rows last sampled)."""
    if table not in _RESTATTED or session.get_bind().dialect.name != "postgresql":
        return
    sampled = session.execute(text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}).scalar()
    if changed > 50 + 0.1 * max(sampled or 0, 0):
        session.execute(text(f"ANALYZE {table}"))  # a name from _RESTATTED, never from input


def evaluate(db: Database, *, now: datetime | None = None) -> dict[str, Any]:
    """The worker job: evaluate every active journey (daily, and after each import)."""
    with db.read() as session:
        ids = list(session.scalars(select(Journey.id).where(Journey.status == "active").order_by(Journey.id)))
    out = {}
    for journey_id in ids:
        result = evaluate_journey(db, journey_id=journey_id, now=now)
        if result:
            out[journey_id] = result
    return out


_last_import_seen: dict[str, datetime] = {}


def after_imports(db: Database, *, now: datetime | None = None) -> dict[str, Any]:
    """The worker job for event triggers (a registration, a first activity, a program attended): when an
    import has finished since the last look, evaluate, so that its patrons enter the same day. Evaluating
    again is harmless (enrolment and steps happen once), so a restarted worker simply looks again."""
    with db.read() as session:
        finished = session.scalar(select(func.max(ImportRun.finished_at)).where(ImportRun.status == "done", ImportRun.dry_run.is_(False)))
    if finished is None or _last_import_seen.get(db.url) == finished:
        return {}
    _last_import_seen[db.url] = finished
    return evaluate(db, now=now)
