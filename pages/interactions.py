"""Interactions: search and filter by date, type, tag, staff member and organization; export; edit one."""

from datetime import date, time, timedelta

import streamlit as st

import ui
from crmcore import labels
from crmcore.admin.permissions import Perm
from crmcore.outreach import interactions, organizations, tasks
from crmcore.outreach.kinds import KINDS
from crmcore.outreach.tags import all_tags
from ui import outreach as widgets

actor = ui.actor()
db = ui.db()
st.title("Interactions")

with db.read() as session:
    tags = all_tags(session, actor=actor)
    orgs = organizations.organization_choices(session, actor=actor)
    staff = tasks.assignable_staff(session, actor=actor)

top = st.columns([2, 2, 2])
period = top[0].date_input("Between", (date.today() - timedelta(days=90), date.today()), key="ix-period")
kinds = top[1].multiselect("Type", list(KINDS), format_func=KINDS.get, key="ix-kinds")
tag_pick = top[2].multiselect("Tags", tags, key="ix-tags")
bottom = st.columns([2, 2, 2])
staff_pick = bottom[0].multiselect("Logged by", list(staff), format_func=staff.get, key="ix-staff")
org_pick = bottom[1].multiselect("Organizations", list(orgs), format_func=orgs.get, key="ix-orgs")
text = bottom[2].text_input("Notes or outcome contain", key="ix-text")
ui.chosen_caption(("Type", kinds, KINDS.get), ("Tags", tag_pick, None), ("Logged by", staff_pick, staff.get), ("Organizations", org_pick, orgs.get))

start, end = (tuple(period) + (None, None))[:2] if period else (None, None)
# The days are the library's: from its midnight (an evening event is on the day it happened, not the UTC one).
start, end = (None if d is None else ui.typed_time(d, time.min) for d in (start, end))
with db.read() as session:
    rows = interactions.search_interactions(
        session, actor=actor, date_from=start, date_to=end, kinds=kinds, tags=tag_pick, staff_ids=staff_pick, organization_ids=org_pick, text=text
    )
frame = interactions.export_frame(rows)
frame["when"] = [ui.local(r["when"]) for r in rows]  # the library's time, with its zone
st.caption(f"{labels.plural(len(rows), 'interaction')} · {labels.plural(int(frame['cards_issued'].sum()), 'card')} issued · {labels.plural(int(frame['signups'].sum()), 'sign-up')}")
ui.table(frame, hide_index=True, width="stretch", column_config={"id": st.column_config.NumberColumn("#", width="small")})
ui.download_buttons(frame, name="interactions", key="ix-export", xlsx=True, personal=True)  # notes and names of people

if not actor.can(Perm.EDIT_OUTREACH) or not rows:
    st.stop()

st.subheader("Edit an interaction")
labels = {r["id"]: f"#{r['id']} {ui.local(r['when'], '%Y-%m-%d')} {r['type']}: {r['organizations'] or r['people']}" for r in rows}
picked = st.selectbox("Interaction", list(labels), format_func=labels.get, index=None, key="ix-edit")
if picked is None:
    st.stop()
row = next(r for r in rows if r["id"] == picked)
widgets.timeline([row])
with st.form(f"ix-edit-{picked}"):
    code = next(k for k, v in KINDS.items() if v == row["type"])
    values = {
        "kind": st.selectbox("Type", list(KINDS), index=list(KINDS).index(code), format_func=KINDS.get),
        "notes": st.text_area("Notes", row["notes"]),
        "outcome": st.text_input("Outcome", row["outcome"]),
        "tags": st.multiselect("Tags", sorted({*tags, *filter(None, row["tags"].split(", "))}), default=list(filter(None, row["tags"].split(", "))), accept_new_options=True),
        "follow_up_on": st.date_input("Follow up on", row["follow_up_on"]),
        "cards_issued": st.number_input("Cards issued", min_value=0, step=1, value=row["cards_issued"]),
        "signups": st.number_input("Sign-ups", min_value=0, step=1, value=row["signups"]),
    }
    if st.form_submit_button("Save", type="primary"):
        with ui.user_errors():
            with db.write() as session:
                interactions.update_interaction(session, actor=actor, interaction_id=picked, **values)
            ui.refresh_after_write()
            st.rerun()
