"""iCalendar (.ics) of a staff member's follow-ups, tasks and outreach events, and subscribable feeds.

A calendar app subscribes to a URL it polls: each subscribed staff member gets one named by a random
secret token, /calendars/<token>.ics, which the app's own HTTP route (crmcore.web) answers with `feed`,
built at each request, so it is always current and every app replica serves it. Anyone holding the URL
can read the feed, so it carries titles, dates and the names of organizations and people, never
interaction notes; resetting the link revokes the old one at once, and so does losing access.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta, timezone

from icalendar import Calendar, Event
from sqlalchemy import delete
from sqlmodel import Session, select

from crmcore.admin import auth, settings
from crmcore.admin.permissions import Actor, Perm, Role, allowed, require
from crmcore.models import CalendarFeed, Interaction, StaffUser
from crmcore.outreach import tasks
from crmcore.outreach.kinds import KINDS
from crmcore.privacy import audit

FEED_PATH = "/calendars/"
PAST_DAYS = 90  # outreach events this far back stay in the calendar
FUTURE_DAYS = 365


def _summary(kind: str, names: list[str]) -> str:
    return f"{KINDS.get(kind, kind)}: {', '.join(sorted(names)) or '—'}"


def _build_calendar(session: Session, *, actor: Actor, today: date | None = None) -> bytes:
    """The .ics of the actor: open follow-ups and dated tasks (all-day) and their outreach events."""
    today = today or date.today()
    staff_id = actor.id
    user = session.get(StaffUser, staff_id)
    cal = Calendar()
    cal.add("prodid", "-//Liaison//Outreach follow-ups//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"Liaison outreach: {user.display_name or user.username}" if user else "Liaison outreach")
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    stamp = datetime.now(timezone.utc)
    for item in tasks.my_followups(session, actor=actor, horizon_days=FUTURE_DAYS, today=today):
        if item["due_on"] is None:
            continue
        event = Event()
        event.add("uid", f"{item['kind'].replace('_', '-')}-{item['id']}@liaison")
        event.add("dtstamp", stamp)
        event.add("summary", item["title"])
        event.add("dtstart", item["due_on"])
        event.add("dtend", item["due_on"] + timedelta(days=1))
        event.add("categories", ["Follow-up" if item["kind"] == "follow_up" else "Task"])
        cal.add_component(event)
    window = (datetime.combine(today - timedelta(days=PAST_DAYS), datetime.min.time(), timezone.utc), datetime.combine(today + timedelta(days=FUTURE_DAYS), datetime.min.time(), timezone.utc))
    interactions = list(
        session.exec(select(Interaction).where(Interaction.staff_id == staff_id, Interaction.occurred_at >= window[0], Interaction.occurred_at < window[1]))
    )
    names = tasks.interaction_names(session, actor=actor, ids=[i.id for i in interactions])
    for interaction in interactions:
        event = Event()
        event.add("uid", f"interaction-{interaction.id}@liaison")
        event.add("dtstamp", stamp)
        event.add("summary", _summary(interaction.kind, names.get(interaction.id, [])))
        event.add("dtstart", interaction.occurred_at)
        event.add("dtend", interaction.occurred_at + timedelta(hours=1))
        event.add("categories", ["Outreach"])
        cal.add_component(event)
    return cal.to_ical()


def my_calendar(session: Session, *, actor: Actor, today: date | None = None) -> bytes:
    """The actor's own .ics, for a one-off download."""
    require(actor, Perm.VIEW_OUTREACH)
    return _build_calendar(session, actor=actor, today=today)


def feed_token(session: Session, *, actor: Actor) -> str | None:
    """The actor's feed token, or None before they subscribe."""
    require(actor, Perm.VIEW_OUTREACH)
    feed = session.get(CalendarFeed, actor.id)
    return feed.token if feed else None


def subscribe(session: Session, *, actor: Actor, reset: bool = False) -> str:
    """Create the actor's feed (or, with `reset`, replace its token so the old URL stops working); audited."""
    require(actor, Perm.VIEW_OUTREACH)
    feed = session.get(CalendarFeed, actor.id)
    if feed is not None and not reset:
        return feed.token
    if feed is None:
        feed = CalendarFeed(staff_id=actor.id, token="")
    old = feed.token
    feed.token = secrets.token_urlsafe(24)
    session.add(feed)
    session.flush()
    audit.record(session, actor=actor, action="calendar.reset" if old else "calendar.subscribe", entity="staff_user", entity_id=actor.id)
    return feed.token


def unsubscribe(session: Session, *, actor: Actor) -> None:
    """Delete the actor's feed: its URL stops working at once."""
    require(actor, Perm.VIEW_OUTREACH)
    session.exec(delete(CalendarFeed).where(CalendarFeed.staff_id == actor.id))
    audit.record(session, actor=actor, action="calendar.unsubscribe", entity="staff_user", entity_id=actor.id)


def feed_url(session: Session, token: str) -> str:
    """The address a calendar app subscribes to (the public URL setting + the feed's path)."""
    return f"{settings.get(session, 'public_url').rstrip('/')}{FEED_PATH}{token}.ics"


def feed(session: Session, *, token: str) -> bytes | None:
    """The .ics a subscription URL serves, or None when no active feed has this token (revoked, reset, or
    the staff member disabled or no longer allowed to see outreach)."""
    found = session.exec(select(CalendarFeed, StaffUser).join(StaffUser, StaffUser.id == CalendarFeed.staff_id).where(CalendarFeed.token == token)).first()
    if found is None:
        return None
    user = found[1]
    if not user.is_active or not allowed(Role(user.role), Perm.VIEW_OUTREACH):
        return None
    return _build_calendar(session, actor=auth.actor_for(user))  # the token stands for its staff member
