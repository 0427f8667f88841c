"""My account: change one's own password (every other signed-in browser of the account is signed out)."""

import streamlit as st

import ui
from crmcore.admin import auth

me = ui.actor()
st.title("My account")
st.caption(f"Your staff account: {ui.md(me.username)}, role {ui.md(me.role)}.")
if message := st.session_state.pop("account-done", None):
    st.success(message)

st.subheader("Change your password")
with st.form("own-password", clear_on_submit=True):
    current = st.text_input("Current password", type="password", autocomplete="current-password")
    new = st.text_input(f"New password (at least {auth.MIN_PASSWORD_LENGTH} characters)", type="password", autocomplete="new-password")
    repeated = st.text_input("New password again", type="password", autocomplete="new-password")
    submitted = st.form_submit_button("Change password", type="primary")
if submitted:
    with ui.user_errors():
        auth.change_own_password(ui.db(), actor=me, current_password=current, new_password=new, repeated=repeated, session_id=st.session_state.get(ui.SESSION))
        st.session_state["account-done"] = "Password changed. You stay signed in here; every other browser signed in to your account is signed out."
        st.rerun()

st.subheader("Your phone number")
with ui.db().read() as session:
    own_phone = auth.own_phone(session, actor=me)
st.caption("Where “Send a test to me” sends a text campaign's test. Only you see it and only you can change it.")
with st.form("own-phone"):
    typed = st.text_input("Phone number", value=own_phone or "", placeholder="+1 312 555 0101", autocomplete="tel", key="account-phone")
    saved = st.form_submit_button("Save phone number")
if saved:
    with ui.user_errors(), ui.db().write() as session:
        kept = auth.set_own_phone(session, actor=me, phone=typed)
        st.session_state["account-done"] = f"Phone number saved: {kept}." if kept else "Phone number removed."
    if "account-done" in st.session_state:
        del st.session_state["account-phone"]  # shown afresh as kept (E.164)
        st.rerun()
