"""Possible duplicate organizations and contacts, strongest first, a page at a time: merged on confirmation,
or marked "not a duplicate" (never suggested again)."""

import streamlit as st

import ui
from crmcore.admin.permissions import Perm
from crmcore.outreach import duplicates

PER_PAGE = 20
actor = ui.actor()
db = ui.db()
can_edit = actor.can(Perm.EDIT_OUTREACH)
st.title("Duplicates")
st.caption(
    "Strongest first: the same email, then the same name, then a shared phone with a like name (a phone alone is not enough). "
    "A merge keeps every interaction, person, tag and task of both records; the one merged away is archived."
)

done = st.session_state.pop("dup-done", None)
if done:
    st.success(done)

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


for what in duplicates.KINDS:
    page_key = f"dup-page-{what}"
    with db.read() as session:
        shown = duplicates.suggestions(session, actor=actor, kind=what, page=st.session_state.get(page_key, 1), per_page=PER_PAGE)
    st.subheader(f"{what.title()}s ({shown['total']:,})")
    if not shown["pairs"]:
        st.caption(f"No possible duplicate {what}s.")
    for pair in shown["pairs"]:
        with st.container(border=True):
            st.markdown(f"**{ui.md(pair['keep_name'])}** and **{ui.md(pair['other_name'])}** · {ui.md(pair['reason'])}")
            if can_edit:
                left, middle, right = st.columns(3)
                key = f"{what}-{pair['keep_id']}-{pair['other_id']}"
                if left.button("Keep the first", key=f"keep-first-{key}", help="Merge the second into the first"):
                    st.session_state["dup-pending"] = (what, pair["keep_id"], pair["keep_name"], pair["other_id"], pair["other_name"])
                    st.rerun()
                if middle.button("Keep the second", key=f"keep-second-{key}", help="Merge the first into the second"):
                    st.session_state["dup-pending"] = (what, pair["other_id"], pair["other_name"], pair["keep_id"], pair["keep_name"])
                    st.rerun()
                if right.button("Not a duplicate", key=f"not-dup-{key}", help="They are different: never suggest this pair again"):
                    with ui.user_errors():
                        with db.write() as session:
                            duplicates.not_a_duplicate(session, actor=actor, kind=what, first_id=pair["keep_id"], second_id=pair["other_id"])
                        st.session_state["dup-done"] = f"{ui.md(pair['keep_name'])} and {ui.md(pair['other_name'])} will not be suggested again."
                    st.rerun()
    if shown["pages"] > 1:
        back, where, forward = st.columns([1, 2, 1])
        if back.button("Previous", key=f"dup-prev-{what}", disabled=shown["page"] == 1):
            st.session_state[page_key] = shown["page"] - 1
            st.rerun()
        where.caption(f"Page {shown['page']} of {shown['pages']}")
        if forward.button("Next", key=f"dup-next-{what}", disabled=shown["page"] == shown["pages"]):
            st.session_state[page_key] = shown["page"] + 1
            st.rerun()
