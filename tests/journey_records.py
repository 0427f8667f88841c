"""A small hand-made library for journey tests: patrons whose triggers and changes fall on known days."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import insert, select, update

from crmcore.admin import settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.journeys import editing
from crmcore.journeys.definitions import TEMPLATES
from crmcore.library import consent
from crmcore.models import ActivityEvent, Branch, CurrentConsent, Patron

D0 = date(2026, 1, 5)
TOPICS = ("services", "newsletter", "events")


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def moment(n: int) -> datetime:
    return datetime.combine(day(n), time(6, 0), tzinfo=timezone.utc)


# name: patron fields (days relative to D0); consent: topics granted
PATRONS = {
    "A": {"registered_on": 2},                      # welcome 2, 9, 32 (never active); first use 32
    "B": {"registered_on": 10},                     # welcome 10, 17; active on 20, so no nudge at 40
    "C": {"last_activity_on": -200},                # we miss you 0, 30
    "D": {"last_activity_on": -170},                # lapsed from day 10: we miss you 10; back on 25: exits
    "E": {"expires_on": 40, "last_activity_on": -5},  # card renewal 10, 33, 41
    "F": {"expires_on": 50, "last_activity_on": -5},  # card renewal 20; renews on 30: exits
    "G": {"last_activity_on": -10},                 # attends on 50 and 100: after the event 51, 101
    "I": {"registered_on": 5, "consent": ()},       # no consent: nothing
    "J": {"registered_on": 3},                      # welcome 3; withdraws on 6: nothing more
}
# day: (patron, change)
EVENTS = {
    20: [("B", "activity")], 25: [("D", "activity")], 30: [("F", "renew")], 50: [("G", "attend")], 100: [("G", "attend")], 6: [("J", "withdraw")],
}
EXPECTED = {  # (journey template, day) per patron, before the holdout is taken out
    "A": [("welcome", 2), ("welcome", 9), ("welcome", 32), ("first_use", 32)],
    "B": [("welcome", 10), ("welcome", 17)],
    "C": [("we_miss_you", 0), ("we_miss_you", 30)],
    "D": [("we_miss_you", 10)],
    "E": [("card_renewal", 10), ("card_renewal", 33), ("card_renewal", 41)],
    "F": [("card_renewal", 20)],
    "G": [("after_event", 51), ("after_event", 101)],
    "I": [],
    "J": [("welcome", 3)],
}


def build_library(db) -> dict[str, int]:
    """The patrons above (ids by name), with consent, and the five templates as active journeys."""
    with db.write() as s:
        branch = Branch(code="MAIN", name="Main")
        s.add(branch)
        s.flush()
        ids = {}
        for name, spec in PATRONS.items():
            fields = {k: day(v) for k, v in spec.items() if k != "consent"}
            p = Patron(ils_id=f"J-{name}", first_name=name, email=f"{name.lower()}@example.test", branch_id=branch.id, **fields)
            if "last_activity_on" in fields:
                p.first_activity_on = fields["last_activity_on"]
            s.add(p)
            s.flush()
            ids[name] = p.id
            for topic in spec.get("consent", TOPICS):
                s.execute(insert(CurrentConsent).values(patron_id=p.id, channel="email", topic=topic, granted=True, updated_at=moment(-30)))
        settings.put(s, actor=CLI_ACTOR, key="frequency_cap_per_7_days", value=50)
    return ids


def start_templates(db, *, holdout_pct: float = 10.0) -> dict[str, int]:
    journeys = {}
    with db.write() as s:
        for key, spec in TEMPLATES.items():
            journeys[key] = editing.create(s, actor=CLI_ACTOR, name=spec["label"], template=key, holdout_pct=holdout_pct).id
            editing.activate(s, actor=CLI_ACTOR, journey_id=journeys[key])
    return journeys


def apply_events(db, ids: dict[str, int], n: int) -> None:
    """What the day's imports (or the patron) changed."""
    for name, change in EVENTS.get(n, []):
        pid = ids[name]
        with db.write() as s:
            if change == "withdraw":
                consent.record(s, patron_id=pid, channel="email", topic="services", granted=False, source="preference page", by=consent.PATRON, at=moment(n))
                continue
            if change == "renew":
                s.execute(update(Patron).where(Patron.id == pid).values(expires_on=day(n + 365)))
                continue
            kind = "event_attendance" if change == "attend" else "checkout"
            s.add(ActivityEvent(patron_id=pid, occurred_on=day(n), kind=kind))
            first = s.scalar(select(Patron.first_activity_on).where(Patron.id == pid))
            s.execute(update(Patron).where(Patron.id == pid).values(last_activity_on=day(n), first_activity_on=first or day(n)))
