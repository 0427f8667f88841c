"""Administration → Privacy requests: a patron's access export (JSON, HTML) and erasure."""

import pandas as pd
import streamlit as st

import ui
from crmcore.privacy import rights
from crmcore.signups import prospects

st.title("Privacy requests")
st.caption(
    "Right of access: export everything held about one patron. Erasure: remove the patron's personal data and consent "
    "history; anonymous counts stay, and the e-mail address is kept only as a hash so it is never mailed again."
)
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("privacy-done", None):
    st.success(message)


def forget_pending() -> None:
    st.session_state.pop("privacy-pending", None)


# Kept in session state so that the dialog stays open across reruns until confirmed or dismissed.
@st.dialog("Erase this patron?", on_dismiss=forget_pending)
def confirm_erase(patron_id: int, ils_id: str) -> None:
    st.warning("Erasure cannot be undone. Type the patron's ILS id to confirm.")
    typed = st.text_input("ILS id", key="privacy-confirm-ils")
    if st.button("Erase", type="primary", key="privacy-confirm"):
        with ui.user_errors():
            if typed.strip() != ils_id:
                raise ValueError("The ILS id typed does not match: nothing was erased.")
            with db.write() as session:
                result = rights.erase(session, actor=me, patron_id=patron_id)
            forget_pending()
            ui.refresh_after_write()
            kept = f" {result['contacts_unlinked']} community contact record(s) were linked to this patron: review them under Outreach." if result["contacts_unlinked"] else ""
            st.session_state["privacy-done"] = f"Patron {patron_id} erased ({result['consent_records_deleted']} consent records removed).{kept}"
            st.session_state.pop("privacy-export", None)
            st.rerun()


with ui.user_errors():
    query = st.text_input("Find the patron: ILS id, e-mail address, or the start of the last name", key="privacy-query")
    if query.strip():
        with db.write() as session:  # a lookup shows personal data: it is audited
            found = rights.find_patrons(session, actor=me, query=query)
        if not found:
            st.info("No patron matches.")
        else:
            ui.table(pd.DataFrame(found), hide_index=True, width="stretch")
            labels = {p["id"]: f"{p['ils_id']} (id {p['id']})" for p in found}
            patron_id = st.selectbox("Patron", list(labels), format_func=labels.get, key="privacy-patron")
            chosen = next(p for p in found if p["id"] == patron_id)
            left, right = st.columns(2)
            def export(render):
                def make() -> bytes:
                    with db.write() as session:  # audited, each time it is made
                        return render(rights.access_export(session, actor=me, patron_id=patron_id))
                return make

            with left:
                ui.personal_download("Access export (JSON)", file_name=f"patron-{patron_id}.json", content_type="application/json",
                                     make=export(rights.to_json), key="privacy-json")
                ui.personal_download("Access export (readable HTML)", file_name=f"patron-{patron_id}.html", content_type="text/html",
                                     make=export(rights.to_html), key="privacy-html")
            if right.button("Erase…", icon=":material/delete_forever:", disabled=chosen["erased"], key="privacy-erase-button"):
                st.session_state["privacy-pending"] = (patron_id, chosen["ils_id"])
            if (pending := st.session_state.get("privacy-pending")) and pending[0] == patron_id:
                confirm_erase(*pending)

st.subheader("Someone who signed up without a card")
st.caption("People who signed up for news on the library's form (Campaigns → Sign-ups) are found by their email address.")
with ui.user_errors():
    address = st.text_input("Their email address", key="privacy-prospect-email")
    if address.strip():
        with db.write() as session:  # shows personal data: audited
            held = prospects.access(session, actor=me, email=address)
        if held is None:
            st.info("Nobody signed up with this address.")
        else:
            st.json(held)
            ui.personal_download("Access export (JSON)", file_name="sign-up.json", content_type="application/json",
                                 make=lambda: rights.to_json(held), key="privacy-prospect-json")
            sure = st.checkbox("Erase this sign-up: it cannot be undone, and the address is never mailed again", key="privacy-prospect-sure")
            if st.button("Erase sign-up", icon=":material/delete_forever:", disabled=not sure, key="privacy-prospect-erase"):
                with db.write() as session:
                    prospects.erase(session, actor=me, email=address)
                st.session_state["privacy-done"] = "The sign-up was erased."
                st.rerun()
