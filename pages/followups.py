"""My follow-ups: overdue, due and coming follow-ups and tasks, and one's own requests past their due time; complete, snooze, reassign; new tasks;
the calendar of them (download, or a subscription link a calendar app polls)."""

from datetime import date, timedelta

import streamlit as st

import ui
from crmcore.admin.permissions import Perm
from crmcore.inbox import tickets
from crmcore.outreach import calendar, organizations, tasks

STATUS_ICONS = {"overdue": ":material/error:", "due today": ":material/today:", "upcoming": ":material/event:", "no date": ":material/radio_button_unchecked:"}

actor = ui.actor()
db = ui.db()
can_edit = actor.can(Perm.EDIT_OUTREACH)
st.title("My follow-ups")

with db.read() as session:
    items = tasks.my_followups(session, actor=actor)
    staff = tasks.assignable_staff(session, actor=actor)
    orgs = organizations.organization_choices(session, actor=actor)
    token = calendar.feed_token(session, actor=actor)
    feed = calendar.feed_url(session, token) if token else None
    ics = calendar.my_calendar(session, actor=actor)
    late_requests = tickets.overdue(session, actor=actor)


counts = {status: sum(1 for i in items if i["status"] == status) for status in STATUS_ICONS}
st.caption(f"{counts['overdue'] + len(late_requests)} overdue · {counts['due today']} due today · {counts['upcoming']} in the next 7 days · {counts['no date']} without a date")
if not items and not late_requests:
    st.info("Nothing to follow up. Set a follow-up date when you log a contact, or add a task below.")
for request in late_requests:
    with st.container(border=True):
        st.markdown(f"{STATUS_ICONS['overdue']} **{ui.md(request['reference'] + ' · ' + request['subject'])}**")
        st.caption(ui.md(f"request from {request['requester']} · overdue since {ui.local(request['due'])}"))
        st.page_link("pages/requests.py", label="Open the request", icon=":material/inbox:", query_params={"request": str(request["id"])})
for item in items:
    ref = {"kind": item["kind"], "item_id": item["id"]}
    key = f"{item['kind']}-{item['id']}"
    with st.container(border=True):
        st.markdown(f"{STATUS_ICONS[item['status']]} **{ui.md(item['title'])}**")
        st.caption(ui.md(f"{item['status']}{' · due ' + str(item['due_on']) if item['due_on'] else ''} · {'follow-up' if item['kind'] == 'follow_up' else 'task'}"))
        if item["notes"]:
            st.text(item["notes"])
        if can_edit:
            done, day, week, hand = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
            if done.button("Done", key=f"done-{key}", icon=":material/check:", type="primary"):
                ui.act(tasks.complete, **ref)
            if day.button("+1 day", key=f"day-{key}"):
                ui.act(tasks.snooze, **ref, until=max(date.today(), item["due_on"] or date.today()) + timedelta(days=1))
            if week.button("+1 week", key=f"week-{key}"):
                ui.act(tasks.snooze, **ref, until=max(date.today(), item["due_on"] or date.today()) + timedelta(days=7))
            others = {k: v for k, v in staff.items() if k != actor.id}
            with hand.popover("Reassign", icon=":material/forward:"):
                to = st.selectbox("Give to", list(others), format_func=others.get, key=f"to-{key}", index=None)
                if st.button("Reassign", key=f"reassign-{key}", disabled=to is None):
                    ui.act(tasks.reassign, **ref, assignee_id=to)

if can_edit:
    with st.expander("New task", icon=":material/add:"):
        with st.form("new-task", clear_on_submit=False):
            title = st.text_input("Task", key="task-title")
            due = st.date_input("Due", value=None, key="task-due")
            assignee = st.selectbox("For", list(staff), format_func=staff.get, index=list(staff).index(actor.id) if actor.id in staff else 0, key="task-assignee")
            org = st.selectbox("Organization (optional)", list(orgs), format_func=orgs.get, index=None, key="task-org")
            notes = st.text_area("Notes", key="task-notes")
            if st.form_submit_button("Add task", type="primary"):
                ui.act(tasks.create_task, title=title, due_on=due, assignee_id=assignee, organization_id=org, notes=notes)

st.subheader("Calendar")
st.download_button("Download my follow-ups (.ics)", ics, "liaison-follow-ups.ics", "text/calendar", icon=":material/calendar_month:")
if feed:
    st.caption("Subscribe in your calendar app (Google Calendar: Other calendars → From URL; Outlook: Add calendar → Subscribe from web). Keep this link private: anyone with it can read the feed.")
    st.code(feed, language=None)
    reset, stop = st.columns(2)
    if reset.button("New link (old one stops working)", key="feed-reset"):
        with db.write() as session:
            calendar.subscribe(session, actor=actor, reset=True)
        st.rerun()
    if stop.button("Stop the subscription", key="feed-stop"):
        with db.write() as session:
            calendar.unsubscribe(session, actor=actor)
        st.rerun()
elif st.button("Create a subscription link", icon=":material/link:", key="feed-create"):
    with db.write() as session:
        calendar.subscribe(session, actor=actor)
    st.rerun()
