"""Advancing enrolments, set-based: for each step of a version, one or two statements move every
patron due at it (never a loop over patrons).

A send step adds one message per enrolment to the campaign pipeline (the step's campaign, one per
version × step × re-entry round, so the unique campaign × patron makes each step at most once per
enrolment); the send loops (crmcore.campaigns.sending for mail, crmcore.texts.sending for texts, in
quiet hours) re-check consent when they send. Holdout enrolments get a "holdout" message, never sent.
Patrons without consent, address (a number, for a text) or permission to mail leave the journey;
recipients at the weekly frequency cap (shared with campaigns) wait a day.

While a journey is paused its queued messages are "held": no send loop claims them, and resuming
queues them again within the weekly cap; the daily evaluation releases the rest as the cap allows (`hold`,
`release`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, insert, literal, not_, or_, select, true, update
from sqlmodel import Session

from crmcore.campaigns import do_not_mail
from crmcore.admin import settings
from crmcore.campaigns.drafts import CAPPED_STATUSES, at_frequency_cap
from crmcore.campaigns.rules.compiler import compile_rules
from crmcore.campaigns.sending import _consent_granted
from crmcore.journeys.definitions import subject_of, words_of
from crmcore.journeys.enrolment import plus_days
from crmcore.models import Campaign, Journey, JourneyEnrolment, JourneyVersion, Message, MessageVariant, Patron, Suppression

E = JourneyEnrolment


def _patron(*conds):
    return exists().where(Patron.id == E.patron_id, *conds)


def _end(session: Session, where, *, today: date, state: str, reason: str | None = None) -> int:
    values: dict[str, Any] = {"state": state, "ended_on": today, "due_on": None}
    if reason:
        values["exit_reason"] = reason
    return session.execute(update(E).where(*where).values(**values)).rowcount or 0


def exits(session: Session, *, journey: Journey, definition: dict[str, Any], today: date) -> dict[str, int]:
    """End the active enrolments of this journey whose exit condition holds; counts by reason."""
    active = [E.journey_id == journey.id, E.state == "active"]
    conditions = {"erased": or_(E.patron_id.is_(None), _patron(Patron.erased_at.is_not(None)))}
    if "became_active" in (definition.get("exits") or []):
        # Implied by the first condition, the second lets the database start from the patrons active since the
        # earliest entry (by their index: on a first day, none) instead of reading every patron.
        since = session.scalar(select(func.min(E.entered_on)).where(*active))
        conditions["became_active"] = _patron(Patron.last_activity_on > E.entered_on, *([Patron.last_activity_on > since] if since else []))
    if "renewed" in (definition.get("exits") or []):
        conditions["renewed"] = _patron(Patron.expires_on > E.expires_on_at_entry)
    return {reason: n for reason, cond in conditions.items() if (n := _end(session, [*active, cond], today=today, state="exited", reason=reason))}


def step_campaigns(session: Session, *, journey: Journey, version: JourneyVersion, index: int, rounds: set[int]) -> None:
    """Make the campaign each (version, step, round) sends through, where it is not there yet."""
    step = version.definition["steps"][index]
    have = set(session.scalars(select(Campaign.journey_round).where(Campaign.journey_version_id == version.id, Campaign.journey_step == index)))
    made = []
    for round_ in sorted(rounds - have):
        made.append(Campaign(
            name=f"{journey.name} (version {version.number}), step {index + 1}" + (f", round {round_}" if round_ > 1 else ""),
            channel=step["channel"], topic=step["topic"], subject_template=subject_of(step), body_template=step["body"], status="journey",
            holdout_pct=journey.holdout_pct, journey_version_id=version.id, journey_step=index, journey_round=round_, created_by_id=journey.created_by_id,
            survey_id=step.get("survey_id"),
        ))
    session.add_all(made)
    session.flush()
    # The step's words in other languages become its campaign's variants: the send loops pick each patron's
    # as for any campaign (a version's steps never change once patrons have entered it).
    session.add_all(MessageVariant(owner="campaign", owner_id=campaign.id, language=code, subject=subject, body=body, updated_by_id=journey.created_by_id)
                    for campaign in made for code, (subject, body) in words_of(step).items())
    session.flush()


def _unreachable(session: Session, step: dict[str, Any]):
    """SQL over an enrolment: the step cannot go to its patron (gone, erased, no address or number, on the
    do-not-mail list, no consent for the channel and topic). The patron's side is one value looked up per
    enrolment by its key: as an EXISTS, PostgreSQL may hash the answer for every patron instead (the
    suppression hash of every address in the library, to send to the few thousand due today)."""
    if step["channel"] == "sms":  # a number on record; whether it can be texted (its form, the do-not-text list) is checked at send
        cannot = [Patron.phone.is_(None), Patron.phone == ""]
    else:
        do_not_mail.prepare(session)
        cannot = [Patron.email.is_(None), Patron.email == "", exists().where(Suppression.email_hash == do_not_mail.email_hash_sql(Patron.email))]
    patron_side = select(or_(Patron.erased_at.is_not(None), *cannot)).where(Patron.id == E.patron_id).scalar_subquery()
    return or_(func.coalesce(patron_side, true()), not_(_consent_granted(E.patron_id, step["channel"], step["topic"])))


def _send(session: Session, *, journey: Journey, version: JourneyVersion, index: int, due: list, today: date, now: datetime) -> dict[str, int]:
    step = version.definition["steps"][index]
    gone = _end(session, [*due, _unreachable(session, step)], today=today, state="exited", reason="no_consent")
    deferred = session.execute(
        update(E).where(*due, E.is_holdout.is_(False), at_frequency_cap(session, E.patron_id, now)).values(due_on=today + timedelta(days=1))
    ).rowcount or 0
    rounds = set(session.scalars(select(E.round).where(*due).distinct()))
    if not rounds:
        return {"left (no consent)": gone, "waiting (frequency cap)": deferred}
    step_campaigns(session, journey=journey, version=version, index=index, rounds=rounds)
    at = literal(now, Message.__table__.c.created_at.type)
    chosen = (
        select(Campaign.id, E.patron_id, case((E.is_holdout, "holdout"), else_="queued"), E.is_holdout, literal(0),
               case((E.is_holdout, None), else_=literal(now, Message.__table__.c.next_attempt_at.type)), at)
        .join(Campaign, and_(Campaign.journey_version_id == version.id, Campaign.journey_step == index, Campaign.journey_round == E.round))
        .where(*due, ~exists().where(Message.campaign_id == Campaign.id, Message.patron_id == E.patron_id))
    )
    columns = ["campaign_id", "patron_id", "status", "is_holdout", "attempts", "next_attempt_at", "created_at"]
    queued = len(session.execute(insert(Message.__table__).from_select(columns, chosen).returning(Message.__table__.c.id)).all())  # psycopg counts no INSERT … SELECT
    following = (version.definition["steps"][index + 1:] or [None])[0]
    if following is not None and following["kind"] == "wait":
        # Straight on into the wait: the same rows as the wait step would move next, in one pass, not two.
        waited = session.execute(update(E).where(*due).values(step=index + 2, due_on=plus_days(session, E.due_on, following["days"]))).rowcount or 0
    else:
        waited = 0
        session.execute(update(E).where(*due).values(step=index + 1))
    return {"messages": queued, "waited": waited, "left (no consent)": gone, "waiting (frequency cap)": deferred}


def advance(session: Session, *, journey: Journey, version: JourneyVersion, today: date, now: datetime) -> dict[str, int]:
    """Run every step due today for this version's enrolments, top to bottom (steps only lead further
    down, so one pass moves each patron as far as today allows); counts of what was done."""
    steps = version.definition["steps"]
    done: dict[str, int] = {}

    def add(key: str, n: int) -> None:
        if n:
            done[key] = done.get(key, 0) + n

    for index, step in enumerate([*steps, {"kind": "end"}]):
        due = [E.version_id == version.id, E.state == "active", E.step == index, E.due_on <= today]
        kind = step["kind"]
        if kind == "send":
            for key, n in _send(session, journey=journey, version=version, index=index, due=due, today=today, now=now).items():
                add(key, n)
        elif kind == "wait":
            add("waited", session.execute(update(E).where(*due).values(step=index + 1, due_on=plus_days(session, E.due_on, step["days"]))).rowcount or 0)
        elif kind == "branch":
            matches = _patron(compile_rules(step["rule"], today=today))
            add("branched", session.execute(update(E).where(*due, matches).values(step=index + 1)).rowcount or 0)
            if step.get("otherwise") is None:
                add("finished", _end(session, due, today=today, state="finished"))
            else:
                add("branched", session.execute(update(E).where(*due).values(step=step["otherwise"])).rowcount or 0)
        else:
            add("finished", _end(session, due, today=today, state="finished"))
    return done


def _messages_of(journey_id: int):
    return Message.campaign_id.in_(select(Campaign.id).join(JourneyVersion, JourneyVersion.id == Campaign.journey_version_id).where(JourneyVersion.journey_id == journey_id))


def hold(session: Session, *, journey_id: int) -> int:
    """Pausing: the journey's queued messages are held (claimed by no send loop, not lost); returns how many.
    Only "queued" ones: a message already "sending" finishes as it would (at most once), and one a worker
    has claimed but not marked is no longer "queued" when it tries, so it is left alone."""
    return session.execute(
        update(Message).where(_messages_of(journey_id), Message.status == "queued").values(status="held", lease_owner=None, lease_expires_at=None)
    ).rowcount or 0


def release(session: Session, *, journey_id: int, now: datetime) -> int:
    """Resuming: the held messages are queued again (consent is checked again when each is sent), within the
    weekly frequency cap shared with campaigns: a patron who had their cap's worth while the journey was paused
    keeps the rest held until the 7 days allow more (the daily evaluation releases them then). Returns how
    many were queued; each counts from now, when it is due (or later, for a retry already set)."""
    held_here = [_messages_of(journey_id), Message.status == "held"]
    if session.scalar(select(Message.id).where(*held_here).limit(1)) is None:
        return 0  # the daily evaluation's usual case: one cheap look
    cap = int(settings.get(session, "frequency_cap_per_7_days"))
    holding = select(Message.patron_id).where(*held_here)
    recent = (
        select(Message.patron_id.label("patron_id"), func.count().label("n"))
        .where(Message.patron_id.in_(holding), Message.status.in_(CAPPED_STATUSES),
               func.coalesce(Message.sent_at, Message.next_attempt_at, Message.created_at) >= now - timedelta(days=7))
        .group_by(Message.patron_id).subquery("recent")
    )
    ranked = (
        select(Message.id.label("id"), Message.patron_id.label("patron_id"),
               func.row_number().over(partition_by=Message.patron_id, order_by=Message.id).label("place"))
        .where(*held_here).subquery("ranked")
    )
    room = select(ranked.c.id).outerjoin(recent, recent.c.patron_id == ranked.c.patron_id).where(ranked.c.place <= cap - func.coalesce(recent.c.n, 0))
    due = literal(now, Message.__table__.c.next_attempt_at.type)
    return session.execute(
        update(Message).where(Message.id.in_(room), Message.status == "held")
        .values(status="queued", next_attempt_at=case((or_(Message.next_attempt_at.is_(None), Message.next_attempt_at < due), due), else_=Message.next_attempt_at))
    ).rowcount or 0


def held(session: Session, *, journey_id: int) -> int:
    """How many of the journey's messages are held."""
    return session.scalar(select(func.count()).select_from(Message).where(_messages_of(journey_id), Message.status == "held")) or 0
