"""Log a community contact in a few taps: the outreach librarian's quick form, phone-width first."""

from datetime import datetime

import streamlit as st

import ui
from ui import drafts
from crmcore.outreach import contacts, duplicates, interactions, organizations
from crmcore.outreach.kinds import KINDS
from crmcore.outreach.tags import all_tags
from ui import outreach as widgets

actor = ui.actor()
db = ui.db()
st.title("Log a contact")
# Widget keys carry a generation: after a successful log the next one gets fresh, empty widgets (the
# browser keeps a widget's value while its key stays the same); after an error the typing is kept.
gen = st.session_state.setdefault("ql-gen", 0)

done = st.session_state.pop("ql-done", None)
if done:
    st.success(done, icon=":material/check_circle:")
    for name, matches in st.session_state.pop("ql-duplicates", []):
        widgets.duplicate_warning(name, matches)

with db.read() as session:
    orgs = organizations.organization_choices(session, actor=actor)
    people = contacts.contact_choices(session, actor=actor)
    tags = all_tags(session, actor=actor)

with st.form("quick-log", border=False):
    kind = st.pills("Type", list(KINDS), format_func=KINDS.get, default="meeting", required=True, key=f"ql-kind-{gen}")
    org_pick = st.multiselect(
        "Organizations", list(orgs), format_func=lambda v: orgs.get(v, v), accept_new_options=True, placeholder="Pick, or type a new name", key=f"ql-orgs-{gen}"
    )
    person_pick = st.multiselect(
        "People", list(people), format_func=lambda v: people.get(v, v), accept_new_options=True, placeholder="Pick, or type First Last", key=f"ql-people-{gen}"
    )
    with drafts.kept("outreach-notes"):  # survives a reload until logged
        notes = st.text_area("Notes", height=100, key=f"ql-notes-{gen}")
    with st.expander("Outcome, tags, follow-up, numbers, when"):
        with drafts.kept("outreach-outcome"):
            outcome = st.text_input("Outcome", key=f"ql-outcome-{gen}")
        tag_pick = st.multiselect("Tags", tags, accept_new_options=True, key=f"ql-tags-{gen}")
        follow_up = st.date_input("Follow up on", value=None, key=f"ql-follow-up-{gen}")
        left, right = st.columns(2)
        cards = left.number_input("Cards issued", min_value=0, step=1, key=f"ql-cards-{gen}")
        signups = right.number_input("Sign-ups", min_value=0, step=1, key=f"ql-signups-{gen}")
        day = left.date_input("Date", value="today", key=f"ql-date-{gen}")
        at = right.time_input("Time (blank: now)", value=None, key=f"ql-time-{gen}")
    submitted = st.form_submit_button("Log it", type="primary", icon=":material/add_task:", width="stretch")

if submitted:
    org_ids, new_orgs = widgets.pick_new(org_pick, orgs)
    person_ids, new_people = widgets.pick_new(person_pick, people)
    now = datetime.now(ui.zone())  # the library's time: staff type times as the library's clocks show them
    when = now if day == now.date() and at is None else ui.typed_time(day, at or now.time().replace(tzinfo=None))
    with ui.user_errors():
        with db.write() as session:
            # Flag a newly typed organization that looks like one already on file (checked before it exists).
            flagged = [(n, duplicates.similar_organizations(session, actor=actor, name=n)) for n in new_orgs]
            flagged += [(n, duplicates.similar_contacts(session, actor=actor, first_name=None, last_name=n)) for n in new_people]
            interaction = interactions.log_interaction(
                session,
                actor=actor,
                kind=kind,
                occurred_at=when,
                organization_ids=org_ids,
                new_organizations=new_orgs,
                contact_ids=person_ids,
                new_contacts=new_people,
                notes=notes,
                outcome=outcome,
                tags=tag_pick,
                follow_up_on=follow_up,
                cards_issued=cards,
                signups=signups,
            )
        ui.refresh_after_write()
        who = ", ".join([*(orgs[i] for i in org_ids), *new_orgs, *(people[i] for i in person_ids), *new_people])
        st.session_state["ql-done"] = f"Logged {ui.md(KINDS[kind].lower())} with {ui.md(who)} (#{interaction.id})."
        st.session_state["ql-duplicates"] = [(n, matches) for n, matches in flagged if matches]
        st.session_state["ql-gen"] = gen + 1
        st.rerun()
