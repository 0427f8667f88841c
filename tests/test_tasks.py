"""Follow-ups and tasks: due/overdue logic, complete, snooze, reassign; the iCalendar feed parsed back."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from icalendar import Calendar
from sqlmodel import select

from crmcore.admin import auth
from crmcore.admin.permissions import PermissionDenied
from crmcore.models import AuditLog, Interaction, Task
from crmcore.outreach import calendar, interactions, tasks

TODAY = date(2024, 6, 10)


def follow_up(db, actor, due, **fields):
    with db.write() as s:
        return interactions.log_interaction(s, actor=actor, kind="meeting", new_organizations=[fields.pop("org", "PTA")], follow_up_on=due, **fields).id


def task(db, actor, due, **fields):
    with db.write() as s:
        return tasks.create_task(s, actor=actor, title=fields.pop("title", "Send flyer"), due_on=due, **fields).id


def mine(db, actor, **kw):
    with db.read() as s:
        return [(r["kind"], r["id"], r["status"]) for r in tasks.my_followups(s, actor=actor, today=TODAY, **kw)]


def test_my_followups_are_overdue_due_and_upcoming_soonest_first(db, staff):
    me = staff["outreach"]
    overdue = follow_up(db, me, TODAY - timedelta(days=3))
    due = task(db, me, TODAY)
    soon = follow_up(db, me, TODAY + timedelta(days=7))
    follow_up(db, me, TODAY + timedelta(days=8))  # beyond the horizon
    undated = task(db, me, None)
    task(db, staff["manager"], TODAY)  # someone else's
    done = follow_up(db, me, TODAY - timedelta(days=1))
    with db.write() as s:
        tasks.complete(s, actor=me, kind="follow_up", item_id=done)
    assert mine(db, me) == [("follow_up", overdue, "overdue"), ("task", due, "due today"), ("follow_up", soon, "upcoming"), ("task", undated, "no date")]
    with db.read() as s:
        assert tasks.overdue_count(s, today=TODAY) == 1
        titles = [r["title"] for r in tasks.my_followups(s, actor=me, today=TODAY)]
    assert titles[0] == "Follow up: meeting with PTA"


def test_complete_snooze_and_reassign_are_audited(db, staff):
    me, other = staff["outreach"], staff["manager"]
    fid = follow_up(db, me, TODAY - timedelta(days=2))
    tid = task(db, me, TODAY)
    with db.write() as s:
        tasks.snooze(s, actor=me, kind="follow_up", item_id=fid, until=TODAY + timedelta(days=1), today=TODAY)
        tasks.reassign(s, actor=me, kind="task", item_id=tid, assignee_id=other.id)
    assert mine(db, me) == [("follow_up", fid, "upcoming")]
    assert mine(db, other) == [("task", tid, "due today")]
    with db.write() as s:
        tasks.complete(s, actor=other, kind="task", item_id=tid)
        tasks.reassign(s, actor=me, kind="follow_up", item_id=fid, assignee_id=other.id)
    assert mine(db, me) == [] and mine(db, other) == [("follow_up", fid, "upcoming")]
    with db.read() as s:
        assert s.get(Task, tid).done_at is not None
        assert s.get(Interaction, fid).follow_up_assignee_id == other.id
        actions = list(s.exec(select(AuditLog.action).where(AuditLog.action.contains(".", autoescape=True)).order_by(AuditLog.id)))
    assert [a for a in actions if a.split(".")[0] in ("task", "follow_up")] == ["task.create", "follow_up.snooze", "task.reassign", "task.complete", "follow_up.reassign"]


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda s, a, ids: tasks.snooze(s, actor=a, kind="task", item_id=ids["task"], until=TODAY - timedelta(days=1), today=TODAY), "is in the past"),
        (lambda s, a, ids: tasks.reassign(s, actor=a, kind="task", item_id=ids["task"], assignee_id=ids["viewer"]), "cannot see outreach records"),
        (lambda s, a, ids: tasks.reassign(s, actor=a, kind="task", item_id=ids["task"], assignee_id=9999), "no active staff member with id 9999"),
        (lambda s, a, ids: tasks.create_task(s, actor=a, title=" "), "title: required"),
        (lambda s, a, ids: tasks.complete(s, actor=a, kind="chore", item_id=1), "neither 'task' nor 'follow_up'"),
    ],
)
def test_bad_follow_up_actions_say_why(db, staff, call, message):
    ids = {"task": task(db, staff["outreach"], TODAY), "viewer": staff["viewer"].id}
    with pytest.raises(ValueError, match=message), db.write() as s:
        call(s, staff["outreach"], ids)
    assert mine(db, staff["outreach"]) == [("task", ids["task"], "due today")]


def test_completing_an_unknown_item_is_a_lookup_error(db, staff):
    with pytest.raises(LookupError, match="No open task with id 42"), db.write() as s:
        tasks.complete(s, actor=staff["outreach"], kind="task", item_id=42)


def test_a_disabled_assignee_is_refused(db, staff):
    with db.write() as s:
        auth.set_active(s, actor=staff["admin"], username="manager", active=False)
    with pytest.raises(ValueError, match="no active staff member"), db.write() as s:
        tasks.create_task(s, actor=staff["outreach"], title="x", assignee_id=staff["manager"].id)


def _parse(content: bytes) -> dict[str, dict]:
    cal = Calendar.from_ical(content)
    return {str(e.get("uid")): e for e in cal.walk("VEVENT")}


def test_calendar_holds_follow_ups_tasks_and_outreach_events_and_no_notes(db, staff):
    me = staff["outreach"]
    when = datetime(2024, 6, 12, 16, 30, tzinfo=timezone.utc)
    fid = follow_up(db, me, TODAY + timedelta(days=2), org="Lincoln, PTA; \"Parents\"", notes="secret note", occurred_at=when)
    tid = task(db, me, TODAY + timedelta(days=5), title="Bring <b>flyers</b>")
    task(db, me, None, title="Undated")
    task(db, staff["manager"], TODAY, title="Not mine")
    with db.read() as s:
        content = calendar.my_calendar(s, actor=me, today=TODAY)
    events = _parse(content)
    assert set(events) == {f"follow-up-{fid}@liaison", f"task-{tid}@liaison", f"interaction-{fid}@liaison"}
    follow = events[f"follow-up-{fid}@liaison"]
    assert follow.decoded("dtstart") == TODAY + timedelta(days=2) and str(follow["summary"]) == 'Follow up: meeting with Lincoln, PTA; "Parents"'
    assert str(events[f"task-{tid}@liaison"]["summary"]) == "Bring <b>flyers</b>"
    meeting = events[f"interaction-{fid}@liaison"]
    assert meeting.decoded("dtstart") == when and str(meeting["summary"]) == 'Meeting: Lincoln, PTA; "Parents"'
    assert b"secret note" not in content


def test_a_feed_is_served_for_its_token_until_it_is_reset_or_access_is_lost(db, staff):
    me = staff["outreach"]
    follow_up(db, me, date.today() + timedelta(days=1))
    with db.write() as s:
        token = calendar.subscribe(s, actor=me)
        assert calendar.subscribe(s, actor=me) == token
        url = calendar.feed_url(s, token)
    assert url == f"http://127.0.0.1:8501/calendars/{token}.ics" and len(token) >= 32
    with db.read() as s:
        assert len(_parse(calendar.feed(s, token=token))) == 2
        assert calendar.feed(s, token=token[:-1]) is None
    with db.write() as s:
        new = calendar.subscribe(s, actor=me, reset=True)
    with db.read() as s:
        assert new != token and calendar.feed(s, token=token) is None and calendar.feed(s, token=new) is not None
    with db.write() as s:
        auth.set_role(s, actor=staff["admin"], username="outreach", role="viewer")  # lost access to outreach
    with db.read() as s:
        assert calendar.feed(s, token=new) is None

def test_interaction_names_name_organizations_and_contacts_for_staff_who_see_outreach(db, staff):
    me = staff["outreach"]
    with db.write() as s:
        iid = interactions.log_interaction(s, actor=me, kind="meeting", new_organizations=["PTA"], new_contacts=[{"first_name": "Ana", "last_name": "Diaz"}]).id
        other = interactions.log_interaction(s, actor=me, kind="visit", new_organizations=["Food bank"]).id
    with db.read() as s:
        assert tasks.interaction_names(s, actor=me, ids=[iid]) == {iid: ["PTA", "Ana Diaz"]}
        assert tasks.interaction_names(s, actor=me, ids=[]) == {}
        assert set(tasks.interaction_names(s, actor=me, ids=[iid, other])) == {iid, other}
        with pytest.raises(PermissionDenied):
            tasks.interaction_names(s, actor=staff["viewer"], ids=[iid])
