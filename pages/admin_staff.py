"""Administration → Staff: accounts, roles, passwords; the permission matrix, read-only."""

import pandas as pd
import streamlit as st

import ui
from crmcore.admin import auth
from crmcore.admin.permissions import ROLE_PERMISSIONS, Perm, Role

ROLES = [r.value for r in Role]


def done(message: str) -> None:
    """Show `message` on the fresh page (after the write is committed: st.rerun must not be inside it)."""
    st.session_state["staff-done"] = message
    st.rerun()


st.title("Staff accounts")
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("staff-done", None):
    st.success(message)

with ui.user_errors():
    with db.read() as session:
        users = auth.list_users(session, actor=me)
    table = [
        {"username": u.username, "name": u.display_name, "email": u.email, "role": u.role, "active": u.is_active, "locked until": u.locked_until, "last sign-in": u.last_login_at}
        for u in users
    ]
    ui.table(pd.DataFrame(table), hide_index=True, width="stretch")

    with st.expander("Add a staff account", icon=":material/person_add:"):
        with st.form("staff-create"):
            username = st.text_input("Username", help="Letters, digits, dots, dashes or underscores.")
            display_name = st.text_input("Display name")
            email = st.text_input("Email")
            role = st.selectbox("Role", ROLES, index=ROLES.index(Role.VIEWER))
            password = st.text_input("Initial password", type="password", help=f"At least {auth.MIN_PASSWORD_LENGTH} characters.")
            create = st.form_submit_button("Create account", type="primary")
    if create:
        with ui.user_errors():
            with db.write() as session:
                made = auth.create_user(session, actor=me, username=username, password=password, role=role, display_name=display_name or None, email=email or None)
            done(f"Account {ui.md(made.username)} created.")

    st.subheader("Change an account")
    chosen = st.selectbox("Account", [u.username for u in users], key="staff-account")
    user = next((u for u in users if u.username == chosen), None)
    if user is not None:
        tab_role, tab_password, tab_active = st.tabs(["Role", "Reset password", "Enable or disable"])
        with tab_role, st.form("staff-role"):
            new_role = st.selectbox("New role", ROLES, index=ROLES.index(user.role))
            change_role = st.form_submit_button("Change role")
        with tab_password, st.form("staff-password"):
            new_password = st.text_input("New password", type="password")
            reset = st.form_submit_button("Reset password")
        with tab_active:
            toggle = st.button("Disable account" if user.is_active else "Enable account", key="staff-toggle")
        with ui.user_errors():
            if change_role:
                with db.write() as session:
                    auth.set_role(session, actor=me, username=user.username, role=new_role)
                done(f"{ui.md(user.username)} is now {new_role}.")
            if reset:
                with db.write() as session:
                    auth.set_password(session, actor=me, username=user.username, password=new_password)
                done(f"Password of {ui.md(user.username)} reset; the account is unlocked.")
            if toggle:
                with db.write() as session:
                    auth.set_active(session, actor=me, username=user.username, active=not user.is_active)
                done(f"{ui.md(user.username)} is {'disabled' if user.is_active else 'enabled'}.")

st.subheader("What each role may do")
st.caption("The permission matrix is part of the code (crmcore/admin/permissions.py), shown here read-only.")
matrix = pd.DataFrame({role.value: [perm in ROLE_PERMISSIONS[role] for perm in Perm] for role in Role}, index=[p.value.replace("_", " ") for p in Perm])
ui.table(matrix, width="stretch")
