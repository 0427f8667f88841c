"""Campaigns → New materials: the catalogue feed of new items the {{ recommendations }} block draws on,
and the library's picks (for patrons whose interests are not known)."""

import pandas as pd
import streamlit as st

import ui
from crmcore.recommendations import catalogue

st.title("New materials")
st.caption(
    "New items from the catalogue feed (import it on the Imports page as a catalogue feed). A message with "
    "{{ recommendations }} lists up to a few of them in each patron's favourite categories, nearest their home branch, "
    "with why. Titles a patron borrowed are never kept: interests are categories only."
)
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("materials-done", None):
    st.success(message)

with ui.user_errors():
    with db.read() as session:
        rows = catalogue.items(session, actor=me)
    if not rows:
        st.info("The catalogue feed is empty: import a file of new items (Imports → Catalogue feed of new materials).")
        st.stop()
    frame = pd.DataFrame(rows)
    st.subheader(f"In the feed ({len(rows):,})")
    ui.table(frame.drop(columns=["id"]).assign(pick=frame["pick"].map({True: "yes", False: ""})), hide_index=True)
    names = {r["id"]: f"{r['title']} ({r['added on']:%d %b %Y})" for r in rows}
    with st.form("materials-picks"):
        st.subheader("The library's picks")
        st.caption("Recommended to patrons whose interests are not known, when their campaign says so.")
        picked = st.multiselect("Picks", list(names), default=[r["id"] for r in rows if r["pick"]], format_func=lambda i: names[i], key="materials-picks-choice")
        save = st.form_submit_button("Save the picks", type="primary")
    if save:
        with db.write() as session:
            n = catalogue.set_picks(session, actor=me, item_ids=picked)
        st.session_state["materials-done"] = f"The library's picks are saved ({n:,})."
        st.rerun()
