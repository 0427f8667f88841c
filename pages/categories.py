"""Administration → Item categories: the material types and genres an import's category may hold."""

import pandas as pd
import streamlit as st

import ui
from crmcore.library import categories


def done(message: str) -> None:
    """Show `message` on the fresh page (after the write is committed)."""
    st.session_state["categories-done"] = message
    st.rerun()


st.title("Item categories")
st.caption(
    "An activity file's item category and a circulation file's material type must be one of these terms "
    "(capitals do not matter: the term's spelling is stored). A value that is not here, such as a title, "
    "is rejected with its line, so titles are never stored. Removing a term keeps what was imported with it."
)
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("categories-done", None):
    st.success(message)

with ui.user_errors():
    with db.read() as session:
        terms = categories.list_terms(session, actor=me)
    for column, (group, label) in zip(st.columns(len(categories.GROUPS)), categories.GROUPS.items()):
        names = [t.name for t in terms if t.group == group]
        with column:
            st.subheader(f"{label} ({len(names)})")
            ui.table(pd.DataFrame({"term": names}), hide_index=True, width="stretch", height=300)

    groups = list(categories.GROUPS)
    left, right = st.columns(2)
    with left, st.form("category-add", clear_on_submit=True):
        name = st.text_input("New term", max_chars=categories.MAX_LEN, help="A material type (DVD, Kit …) or a genre (Mystery …), never a title.")
        group = st.selectbox("Group", groups, format_func=lambda g: categories.GROUPS[g])
        add = st.form_submit_button("Add term", type="primary")
    with right, st.form("category-remove"):
        by_label = {f"{t.name} ({categories.GROUPS[t.group].lower()})": t.id for t in terms}
        chosen = st.selectbox("Term", list(by_label), index=None, placeholder="Choose a term")
        remove = st.form_submit_button("Remove term")

    try:
        if add:
            with db.write() as session:
                made = categories.add_term(session, actor=me, name=name, group=group)
            done(f"{ui.md(made.name)} added to {categories.GROUPS[made.group].lower()}.")
        if remove:
            if chosen is None:
                raise ValueError("Choose the term to remove.")
            with db.write() as session:
                gone = categories.remove_term(session, actor=me, term_id=by_label[chosen])
            done(f"{ui.md(gone)} removed: a file holding it now has those rows rejected.")
    except ValueError as exc:
        st.error(ui.md(exc))
