"""Patron directory: search, then open a profile. Personal data is masked by crmcore for roles without it."""

import pandas as pd
import streamlit as st

import ui
from crmcore.admin.permissions import Perm
from crmcore.library import consent, patrons

PAGE_SIZE = 50

st.title("Patrons")
actor = ui.actor()
db = ui.db()
pii = actor.can(Perm.VIEW_PII)
with db.read() as session:
    filters = patrons.choices(session, actor=actor)

if not pii:
    st.info("Names, emails and phone numbers are masked for your role. Search by ILS id, zone or branch.", icon=":material/lock:")
search_by = list(patrons.SEARCH_BY) if pii else ["ils_id"]
with st.form("patron-search"):
    cols = st.columns([1, 2, 1, 1])
    by = cols[0].selectbox("Search by", search_by, format_func=patrons.SEARCH_BY.get)
    query = cols[1].text_input("Search for", placeholder="ILS id" if not pii else "ILS id, last name (or first and last), email or phone")
    zone = cols[2].selectbox("Zone", [None, *filters["zones"]], format_func=lambda z: "All zones" if z is None else filters["zones"][z])
    branch = cols[3].selectbox("Home branch", [None, *filters["branches"]], format_func=lambda b: "All branches" if b is None else filters["branches"][b])
    if st.form_submit_button("Search", type="primary", icon=":material/search:"):
        st.session_state["patron_search"] = {"by": by, "query": query, "zone_id": zone, "branch_id": branch}
        st.session_state["patron_offset"] = 0
        st.session_state.pop("patron_open", None)

params = st.session_state.get("patron_search")
if params:
    offset = st.session_state.get("patron_offset", 0)
    result = None
    with ui.user_errors():  # read, then the audit entry of the names shown in a short write of its own
        result = patrons.search_shown(db, actor=actor, limit=PAGE_SIZE, offset=offset, **params)
    if result is not None:
        rows = result["rows"]
        if not rows:
            st.write("No patron matches.")
        else:
            st.caption(f"Patrons {offset + 1}–{offset + len(rows)}" + (" (more on the next page)" if result["more"] else ""))
            st.caption("Click a row to open the patron's profile.")
            picked = ui.table(pd.DataFrame(rows).drop(columns="id"), hide_index=True, width="stretch",
                                  on_select="rerun", selection_mode="single-row", key=f"patron-rows-{offset}")
            if picked.selection.rows:
                st.session_state["patron_open"] = rows[picked.selection.rows[0]]["id"]
            nav = st.columns([1, 1, 4])
            if offset and nav[0].button("Previous page", icon=":material/chevron_left:"):
                st.session_state["patron_offset"] = max(0, offset - PAGE_SIZE)
                st.rerun()
            if result["more"] and nav[1].button("Next page", icon=":material/chevron_right:"):
                st.session_state["patron_offset"] = offset + PAGE_SIZE
                st.rerun()
            labels = {r["id"]: f"{r['ILS id']} · {r['Name']}" for r in rows}
            with st.form("patron-open"):  # the same by keyboard
                chosen = st.selectbox("Patron", list(labels), format_func=labels.get)
                if st.form_submit_button("Open profile", icon=":material/badge:"):
                    st.session_state["patron_open"] = chosen

patron_id = st.session_state.get("patron_open")
if patron_id is not None:
    record = None
    with ui.user_errors(), db.write() as session:
        record = patrons.profile(session, actor=actor, patron_id=patron_id)
    if record is not None:
        st.divider()
        details = record["details"]
        st.subheader(ui.md(details["Name"]))
        if record["erased"]:
            st.warning("This patron's personal data was erased on request; only anonymous counts remain.")
        left, right = st.columns(2)
        left.dataframe(pd.DataFrame({"": list(details), "Value": [str(v) if v is not None else "—" for v in details.values()]}), hide_index=True, width="stretch")
        right.markdown("**Interests:** " + (ui.md(", ".join(record["interests"])) if record["interests"] else "none recorded"))
        matrix = pd.DataFrame(record["consent"]).T.map(lambda v: "yes" if v else "withdrawn" if v is False else "—")
        right.markdown("**Consent now** (channel × topic)")
        right.dataframe(matrix, width="stretch")
        st.markdown("**Activity by month** (from the monthly rollups; no titles are ever kept)")
        if record["activity"]:
            ui.table(pd.DataFrame(record["activity"]), hide_index=True, width="stretch")
        else:
            st.write("No activity recorded in the last 24 months.")
        if actor.can(Perm.VIEW_PII) and not record["erased"]:
            with st.expander("Record the patron's own choice (they asked at the desk, by phone, email or letter)"):
                with st.form("patron-consent-request"):
                    c1, c2, c3, c4 = st.columns(4)
                    channel = c1.selectbox("Channel", consent.CHANNELS, key="req-channel")
                    topic = c2.selectbox("Topic", consent.TOPICS, key="req-topic")
                    choice = c3.radio("The patron wants", ["to receive these", "no more of these"], key="req-choice")
                    way = c4.selectbox("They asked", consent.REQUEST_WAYS, key="req-way")
                    st.caption("This is the patron's own decision: a later import will not change it.")
                    if st.form_submit_button("Record their choice"):
                        done = False
                        with ui.user_errors(), db.write() as session:
                            patrons.record_patron_request(session, actor=actor, patron_id=patron_id, channel=channel, topic=topic,
                                                          granted=choice == "to receive these", way=way)
                            done = True
                        if done:
                            st.session_state["patron-request-done"] = True
                            st.rerun()
        if st.session_state.pop("patron-request-done", False):
            st.success("The patron's choice is recorded.")
        with st.expander(f"Consent history ({len(record['consent_history'])} records)"):
            if record["consent_history"]:
                ui.table(pd.DataFrame(record["consent_history"]), hide_index=True, width="stretch")
            else:
                st.write("No consent recorded: this patron receives no messages.")
