"""B8: the daily evaluation of the five journey templates, all active (enrolment, exits, every step, the
messages queued), against hand SQL of the same five enrolment queries on the same database.

Each repetition starts from a fresh copy of the data set with the five journeys just activated, so every
run is the heaviest day: the first, when everyone the triggers find enters at once. The product's
entered counts must equal the hand SQL's before a time is reported.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from sqlalchemy import func, select, text

from bench.common import Context, Row, check_agree, median_time, scratch_copy
from crmcore.admin.auth import CLI_ACTOR

WHAT = "journeys: daily evaluation of the five templates"
TARGET = "≤ 10 s"

_CONSENT = """p.erased_at IS NULL AND EXISTS (SELECT 1 FROM current_consent c
    WHERE c.patron_id = p.id AND c.channel = 'email' AND c.topic = :topic AND c.granted)"""
HAND_SQL = {
    "welcome": ("services", "p.registered_on BETWEEN :today_minus_6 AND :today"),
    "first_use": ("services", "p.registered_on BETWEEN :today_minus_36 AND :today_minus_30 AND p.last_activity_on IS NULL"),
    "we_miss_you": ("newsletter", "p.last_activity_on <= :today_minus_180"),
    "card_renewal": ("services", "p.expires_on BETWEEN :today_plus_24 AND :today_plus_30"),
    "after_event": ("events", """EXISTS (SELECT 1 FROM activity_event e WHERE e.patron_id = p.id AND e.kind = 'event_attendance'
                                 AND e.occurred_on BETWEEN :today_minus_7 AND :today_minus_1)"""),
}


def hand_counts(db, today) -> dict[str, int]:
    params = {f"today_minus_{n}": today - timedelta(days=n) for n in (1, 6, 7, 30, 36, 180)}
    params |= {"today": today, "today_plus_24": today + timedelta(days=24), "today_plus_30": today + timedelta(days=30)}
    with db.read() as session:
        return {key: session.execute(text(f"SELECT count(*) FROM patron p WHERE {where} AND {_CONSENT}"), {**params, "topic": topic}).scalar_one()
                for key, (topic, where) in HAND_SQL.items()}


def _activated(base):
    from crmcore.journeys import editing
    from crmcore.journeys.definitions import TEMPLATES

    db = scratch_copy(base, "b8-journeys.db")
    ids = {}
    with db.write() as session:
        for key, spec in TEMPLATES.items():
            ids[key] = editing.create(session, actor=CLI_ACTOR, name=f"B8 {spec['label']}", template=key).id
            editing.activate(session, actor=CLI_ACTOR, journey_id=ids[key])
    return db, ids


def run(ctx: Context) -> list[Row]:
    from crmcore.journeys import evaluation
    from crmcore.models import JourneyEnrolment

    base = ctx.db()
    now = datetime.combine(datetime.now(timezone.utc).date(), time(5, 0), tzinfo=timezone.utc)
    state: dict = {}

    def setup() -> None:
        if "db" in state:
            state["db"].dispose()
        state["db"], state["ids"] = _activated(base)

    product_s, _ = median_time(lambda: evaluation.evaluate(state["db"], now=now), reps=ctx.reps, setup=setup)
    with state["db"].read() as session:
        entered = {key: session.scalar(select(func.count()).where(JourneyEnrolment.journey_id == jid)) for key, jid in state["ids"].items()}
    hand_s, hand = median_time(lambda: hand_counts(base, now.date()), reps=ctx.reps)
    check_agree("B8 journey enrolments", entered, hand)
    row = Row("B8", f"{WHAT} ({sum(entered.values()):,} entered)", product_s, hand_s, TARGET, extra={"entered": entered})
    row.met = product_s <= 10
    return [row]
