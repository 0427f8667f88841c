"""Possible duplicate organizations and contacts (similar name, same email or phone), merged on confirmation."""

import streamlit as st

import ui
from crmcore.admin.permissions import Perm
from crmcore.outreach import duplicates

actor = ui.actor()
db = ui.db()
can_edit = actor.can(Perm.EDIT_OUTREACH)
st.title("Duplicates")
st.caption("A merge keeps every interaction, person, tag and task of both records; the one merged away is archived.")

done = st.session_state.pop("dup-done", None)
if done:
    st.success(done)

with db.read() as session:
    sections = {
        "organization": duplicates.organization_duplicates(session, actor=actor),
        "contact": duplicates.contact_duplicates(session, actor=actor),
    }
MERGE = {"organization": duplicates.merge_organizations, "contact": duplicates.merge_contacts}


pending = st.session_state.get("dup-pending")
if pending and can_edit:
    # The confirmation step: nothing is merged until this second click.
    what, keep_id, keep_name, merge_id, merge_name = pending
    with st.container(border=True):
        st.warning(f"Merge **{ui.md(merge_name)}** into **{ui.md(keep_name)}**? Its interactions, people, tags and tasks move over; it is then archived.")
        yes, no = st.columns(2)
        if yes.button("Merge", type="primary", key="dup-confirm"):
            st.session_state.pop("dup-pending")
            with ui.user_errors():
                with db.write() as session:
                    MERGE[what](session, actor=actor, keep_id=keep_id, merge_id=merge_id)
                ui.refresh_after_write()
                st.session_state["dup-done"] = f"Merged {ui.md(merge_name)} into {ui.md(keep_name)}."
            st.rerun()
        if no.button("Cancel", key="dup-cancel"):
            st.session_state.pop("dup-pending")
            st.rerun()


for what, pairs in sections.items():
    st.subheader(f"{what.title()}s ({len(pairs)})")
    if not pairs:
        st.caption(f"No possible duplicate {what}s.")
    for pair in pairs:
        with st.container(border=True):
            st.markdown(f"**{ui.md(pair['keep_name'])}** and **{ui.md(pair['other_name'])}** · {ui.md(pair['reason'])}")
            if can_edit:
                left, right = st.columns(2)
                key = f"{what}-{pair['keep_id']}-{pair['other_id']}"
                if left.button("Keep the first", key=f"keep-first-{key}", help="Merge the second into the first"):
                    st.session_state["dup-pending"] = (what, pair["keep_id"], pair["keep_name"], pair["other_id"], pair["other_name"])
                    st.rerun()
                if right.button("Keep the second", key=f"keep-second-{key}", help="Merge the first into the second"):
                    st.session_state["dup-pending"] = (what, pair["other_id"], pair["other_name"], pair["keep_id"], pair["keep_name"])
                    st.rerun()
