"""The outreach pages under AppTest: quick-log, merge and follow-up flows assert on the database afterwards;
user text (names, notes, tags) is rendered escaped everywhere, for a corpus of XSS payloads."""

from __future__ import annotations

import re
from hashlib import sha1
from datetime import date, timedelta

import pytest
from sqlmodel import select

from crmcore.models import (
    CalendarFeed,
    Contact,
    Interaction,
    InteractionContact,
    InteractionOrganization,
    InteractionTag,
    Organization,
    Tag,
    Task,
)
from crmcore.outreach import calendar, contacts, duplicates, interactions, organizations, tasks

XSS = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "javascript:alert(document.cookie)",
    "[click me](javascript:alert(1))",
    "![pixel](https://evil.example/p.png)",
    "&lt;b&gt;entity&lt;/b&gt; &amp; <b>bold</b>",
    "**bold** _it_ `code` # heading",
]


def ql(at, name):
    """The quick-log widget key of the form now shown (keys carry a generation, fresh after each log)."""
    return f"ql-{name}-{at.session_state['ql-gen']}"


def button(at, label):
    return next(b for b in at.button if b.label == label)


def test_quick_log_with_an_existing_and_a_new_organization_and_a_new_person(app, db, staff):
    with db.write() as s:
        pta = organizations.create_organization(s, actor=staff["outreach"], name="Lincoln PTA").id
    at = app(role="outreach", page="pages/outreach_log.py").run()
    at.button_group(key=ql(at, "kind")).set_value("event_table")
    at.multiselect(key=ql(at, "orgs")).set_value([pta, "Farmers Market"])
    at.multiselect(key=ql(at, "people")).set_value(["Maria Lopez"])
    at.text_area(key=ql(at, "notes")).input("Met the PTA at the market")
    at.multiselect(key=ql(at, "tags")).set_value(["summer"])
    at.number_input(key=ql(at, "cards")).set_value(12)
    at.date_input(key=ql(at, "follow-up")).set_value(date.today() + timedelta(days=3))
    button(at, "Log it").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Logged event table with Lincoln PTA, Farmers Market, Maria Lopez" in at.success[0].value
    assert at.session_state["ql-gen"] == 1 and at.multiselect(key=ql(at, "orgs")).value == [] and at.text_area(key=ql(at, "notes")).value == ""
    with db.read() as s:
        interaction = s.exec(select(Interaction)).one()
        org_names = set(s.exec(select(Organization.name).join(InteractionOrganization).where(InteractionOrganization.interaction_id == interaction.id)))
        person = s.exec(select(Contact).join(InteractionContact).where(InteractionContact.interaction_id == interaction.id)).one()
        tag = s.exec(select(Tag.name).join(InteractionTag)).one()
    assert (interaction.kind, interaction.staff_id, interaction.cards_issued, interaction.notes) == ("event_table", staff["outreach"].id, 12, "Met the PTA at the market")
    assert interaction.follow_up_on == date.today() + timedelta(days=3) and interaction.follow_up_assignee_id == staff["outreach"].id
    assert org_names == {"Lincoln PTA", "Farmers Market"} and (person.first_name, person.last_name) == ("Maria", "Lopez") and tag == "summer"


def test_quick_log_without_anyone_says_what_is_missing_and_keeps_the_notes(app, db, staff):
    at = app(role="outreach", page="pages/outreach_log.py").run()
    at.text_area(key=ql(at, "notes")).input("half-typed note")
    button(at, "Log it").click().run()
    assert "pick or add at least one organization or person" in at.error[0].value
    assert at.text_area(key=ql(at, "notes")).value == "half-typed note"
    with db.read() as s:
        assert s.exec(select(Interaction)).all() == []


def test_quick_log_flags_a_new_organization_that_looks_like_an_existing_one(app, db, staff):
    with db.write() as s:
        organizations.create_organization(s, actor=staff["outreach"], name="Lincoln Elementary PTA")
        contacts.create_contact(s, actor=staff["outreach"], first_name="Maria", last_name="Lopez")
    at = app(role="outreach", page="pages/outreach_log.py").run()
    at.multiselect(key=ql(at, "orgs")).set_value(["Lincoln Elementary P.T.A."])
    at.multiselect(key=ql(at, "people")).set_value(["Maria Lopes"])
    button(at, "Log it").click().run()
    assert at.success and "may be a duplicate of: Lincoln Elementary PTA \\(similar name\\)" in at.warning[0].value
    assert "Maria Lopes may be a duplicate of: Maria Lopez \\(similar name\\)" in at.warning[1].value


def test_create_organization_page_refuses_a_bad_email_then_creates_and_flags_a_duplicate(app, db, staff):
    with db.write() as s:
        organizations.create_organization(s, actor=staff["outreach"], name="Food Bank", phone="202-555-0100")
        organizations.create_organization(s, actor=staff["outreach"], name="Springfield Food Bank", phone="202-555-0100")
    at = app(role="outreach", page="pages/organizations.py").run()
    at.text_input(key="new-org-name").input("Springfield Food Pantry")
    at.text_input(key="new-org-email").input("pantry@")
    at.text_input(key="new-org-phone").input("(202) 555-0100")
    button(at, "Create").click().run()
    assert "email: 'pantry@' is not a valid email address" in at.error[0].value
    at.text_input(key="new-org-email").input("pantry@example.org")
    button(at, "Create").click().run()
    assert not at.error and "duplicate of: Springfield Food Bank \\(same phone, similar name\\)" in at.warning[0].value  # a phone alone is not enough
    with db.read() as s:
        made = s.exec(select(Organization).where(Organization.name == "Springfield Food Pantry")).one()
    assert (made.email, made.phone, made.created_by_id) == ("pantry@example.org", "+12025550100", staff["outreach"].id)
    assert at.selectbox(key="org-open").value == made.id


def test_merge_from_the_duplicates_page_keeps_the_interactions(app, db, staff):
    with db.write() as s:
        keep = organizations.create_organization(s, actor=staff["outreach"], name="Rotary Club", email="info@rotary.example.org").id
        dup = organizations.create_organization(s, actor=staff["outreach"], name="Springfield Rotary", email="INFO@rotary.example.org").id
        for _ in range(2):
            interactions.log_interaction(s, actor=staff["outreach"], kind="meeting", organization_ids=[dup])
    at = app(role="outreach", page="pages/duplicates.py").run()
    assert any("same email" in m.value for m in at.markdown)
    button(at, "Keep the first").click().run()
    button(at, "Merge").click().run()
    assert not at.exception and "Merged Springfield Rotary into Rotary Club" in at.success[0].value
    with db.read() as s:
        linked = s.exec(select(InteractionOrganization.organization_id)).all()
        merged = s.get(Organization, dup)
    assert linked == [keep, keep] and merged.merged_into_id == keep and merged.archived
    assert "No possible duplicate organizations." in [c.value for c in at.caption]


def test_the_duplicates_page_shows_twenty_at_a_time_and_forgets_a_pair_marked_not_a_duplicate(app, db, staff):
    with db.write() as s:
        ids = [organizations.create_organization(s, actor=staff["outreach"], name=f"Club {sha1(str(n).encode()).hexdigest()[:10]}", email=f"club{n // 2}@example.org").id for n in range(46)]
    at = app(role="outreach", page="pages/duplicates.py").run()
    assert "Organizations (23)" in [h.value for h in at.subheader]
    assert sum("same email" in m.value for m in at.markdown) == 20 and "Page 1 of 2" in [c.value for c in at.caption]
    button(at, "Next").click().run()
    assert sum("same email" in m.value for m in at.markdown) == 3 and "Page 2 of 2" in [c.value for c in at.caption]
    button(at, "Previous").click().run()
    assert "Page 1 of 2" in [c.value for c in at.caption]
    next(b for b in at.button if b.key == f"not-dup-organization-{ids[0]}-{ids[1]}").click().run()
    assert not at.exception and f"Club {sha1(b'0').hexdigest()[:10]} and Club {sha1(b'1').hexdigest()[:10]} will not be suggested again." in at.success[0].value
    assert "Organizations (22)" in [h.value for h in at.subheader]
    with db.read() as s:
        assert (ids[0], ids[1]) not in {(p["keep_id"], p["other_id"]) for p in duplicates.organization_duplicates(s, actor=staff["outreach"])}


def test_follow_up_completion_snooze_reassign_and_new_task(app, db, staff):
    today = date.today()
    with db.write() as s:
        overdue = interactions.log_interaction(s, actor=staff["outreach"], kind="phone", new_organizations=["Food Bank"], follow_up_on=today - timedelta(days=2)).id
        task = tasks.create_task(s, actor=staff["outreach"], title="Send the flyer", due_on=today).id
    at = app(role="outreach", page="pages/followups.py").run()
    assert "1 overdue · 1 due today" in at.caption[0].value
    at.button(key=f"done-follow_up-{overdue}").click().run()
    at.button(key=f"week-task-{task}").click().run()
    with db.read() as s:
        assert s.get(Interaction, overdue).follow_up_done_at is not None
        assert s.get(Task, task).due_on == today + timedelta(days=7)
    at.selectbox(key=f"to-task-{task}").set_value(staff["manager"].id).run()
    at.button(key=f"reassign-task-{task}").click().run()
    at.text_input(key="task-title").input("Call the principal")
    at.date_input(key="task-due").set_value(today + timedelta(days=1))
    at.selectbox(key="task-assignee").set_value(staff["admin"].id)
    button(at, "Add task").click().run()
    assert not at.exception and not at.error
    with db.read() as s:
        assert s.get(Task, task).assignee_id == staff["manager"].id
        new = s.exec(select(Task).where(Task.title == "Call the principal")).one()
    assert (new.assignee_id, new.created_by_id, new.due_on) == (staff["admin"].id, staff["outreach"].id, today + timedelta(days=1))
    assert "Nothing to follow up" in at.info[0].value


def test_calendar_subscription_link_is_created_and_reset(app, db, staff):
    at = app(role="outreach", page="pages/followups.py").run()
    at.button(key="feed-create").click().run()
    with db.read() as s:
        token = s.get(CalendarFeed, staff["outreach"].id).token
        assert calendar.feed(s, token=token) is not None
    assert at.code[0].value == f"http://127.0.0.1:8501/calendars/{token}.ics"
    at.button(key="feed-reset").click().run()
    with db.read() as s:
        new = s.get(CalendarFeed, staff["outreach"].id).token
        assert new != token and calendar.feed(s, token=token) is None and calendar.feed(s, token=new) is not None
    assert at.code[0].value == f"http://127.0.0.1:8501/calendars/{new}.ics"
    at.button(key="feed-stop").click().run()
    with db.read() as s:
        assert s.get(CalendarFeed, staff["outreach"].id) is None and calendar.feed(s, token=new) is None


def _seed_payloads(db, staff):
    firsts = []
    with db.write() as s:
        for i, payload in enumerate(XSS):
            org = organizations.create_organization(s, actor=staff["outreach"], name=f"{payload} {i}", notes=payload, tags=[payload[:50]])
            person = contacts.create_contact(s, actor=staff["outreach"], first_name=payload, last_name=f"X{i}", organization_id=org.id, notes=payload, job_title=payload[:100])
            interactions.log_interaction(
                s, actor=staff["outreach"], kind="meeting", organization_ids=[org.id], contact_ids=[person.id], notes=payload, outcome=payload, tags=[payload[:50]], follow_up_on=date.today()
            )
            tasks.create_task(s, actor=staff["outreach"], title=payload, notes=payload, due_on=date.today())
            firsts.append((org.id, person.id))
    return firsts[0]  # the <script> one


def _assert_inert(at):
    """No markdown-rendering element may carry a payload raw, and none may allow HTML."""
    for kind in ("markdown", "caption", "success", "warning", "error", "info", "header", "title", "subheader"):
        for element in at.get(kind):
            body = getattr(element, "value", "") or ""
            assert not getattr(element.proto, "allow_html", False) or not any(p in body for p in XSS)
            for raw in ("<script>", "<img", "](javascript:", "![pixel]", "<b>", "**bold**"):
                assert not re.search(r"(?<!\\)" + re.escape(raw), body), (kind, body)


@pytest.mark.parametrize("page", ["pages/organizations.py", "pages/contacts.py", "pages/interactions.py", "pages/followups.py", "pages/duplicates.py", "pages/outreach_log.py"])
def test_xss_payloads_render_escaped(app, db, staff, page):
    org_id, person_id = _seed_payloads(db, staff)
    at = app(role="outreach", page=page).run()
    if page == "pages/organizations.py":
        at.selectbox(key="org-open").set_value(org_id).run()
    elif page == "pages/contacts.py":
        at.selectbox(key="contact-open").set_value(person_id).run()
    elif page == "pages/interactions.py":
        at.selectbox(key="ix-edit").set_value(min(outreach_ids(db))).run()
    assert not at.exception, [e.value for e in at.exception]
    _assert_inert(at)
    if page not in ("pages/duplicates.py", "pages/outreach_log.py"):  # these show the names in widgets only, or not at all
        shown = " ".join(e.value for kind in ("markdown", "caption", "header") for e in at.get(kind))
        assert "\\<script\\>" in shown


def outreach_ids(db):
    with db.read() as s:
        return list(s.exec(select(Interaction.id).order_by(Interaction.id.desc())))


def test_viewer_sees_kpis_without_names_and_no_staff_breakdown(app, db, staff):
    with db.write() as s:
        interactions.log_interaction(s, actor=staff["outreach"], kind="event_table", new_organizations=["Secret Org Name"], notes="secret note", cards_issued=7)
    at = app(role="viewer", page="pages/outreach_kpis.py").run()
    assert not at.exception and not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Interactions"] == "1" and metrics["Cards issued at outreach"] == "7" and metrics["Organizations touched"] == "1"
    assert [h.value for h in at.subheader] == ["Interactions per month, by type", "Requests from patrons and partners"]
    assert "Secret Org Name" not in str(at) and "secret note" not in str(at)
    assert [b.proto.label for b in at.get("download_button")] == ["Download CSV"] * 2  # the figures, and interactions by type
    assert any("okpi-figures-csv" in b.proto.id for b in at.get("download_button"))
    assert any(c.value.replace("\\", "").startswith("Summary: 1 interaction in") for c in at.caption)  # the chart's one-line summary
    manager = app(role="manager", page="pages/outreach_kpis.py").run()
    assert [h.value for h in manager.subheader] == ["Interactions per month, by type", "Interactions per month, by staff member", "Requests from patrons and partners"]
    assert any("okpi-by-staff-csv" in b.proto.id for b in manager.get("download_button")) and len(manager.get("download_button")) == 3
    said = [c.value.replace("\\", "") for c in manager.caption if c.value.startswith("Summary")]
    assert len(said) == 2 and said[0].startswith("Summary: 1 interaction in"), said  # each chart: one sentence and its CSV


def test_create_a_contact_linked_to_a_patron_then_archive_it(app, db, staff):
    from crmcore.models import Patron

    with db.write() as s:
        s.add(Patron(ils_id="P-100", last_name="Reyes"))
        org_id = organizations.create_organization(s, actor=staff["outreach"], name="Head Start").id
    at = app(role="outreach", page="pages/contacts.py").run()
    at.text_input(key="new-contact-first").input("Luz")
    at.text_input(key="new-contact-last").input("Reyes")
    at.selectbox(key="new-contact-org").set_value(org_id)
    at.text_input(key="new-contact-patron").input("P-100")
    button(at, "Create").click().run()
    assert not at.error and "Created Luz Reyes" in at.success[0].value
    with db.read() as s:
        person = s.exec(select(Contact)).one()
    assert (person.organization_id, person.patron_id is not None, person.created_by_id) == (org_id, True, staff["outreach"].id)
    assert at.selectbox(key="contact-open").value == person.id
    button(at, "Archive").click().run()
    with db.read() as s:
        assert s.get(Contact, person.id).archived
