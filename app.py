"""Liaison: the frame. Page config, the sign-in gate, and the pages the signed-in role may use."""

from pathlib import Path

import streamlit as st

import ui
from crmcore.admin import backup
from crmcore.admin.permissions import Perm

# The tab icon is a file served by this app: a ":material/…:" icon would make every page fetch it from fonts.gstatic.com.
st.set_page_config(page_title="Liaison", page_icon=str(Path(__file__).parent / "ui" / "favicon.png"), layout="wide")


def sign_in_page() -> None:
    st.title("Liaison")
    st.caption("Patron relationships for your library. Sign in with your staff account.")
    with st.form("sign-in"):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        error = ui.sign_in(username, password, next_path=ui.asked_for(page))
        if error:
            st.error(error)
        else:
            st.caption("Signed in: opening your page…")


public = [st.Page(p.path, title=p.title, icon=p.icon, visibility="hidden") for p in ui.PUBLIC_PAGES]
actor = ui.actor()
if actor is None:
    # Every page's own address shows the sign-in form, so a bookmark or a reload lands there after signing in.
    gates = [st.Page(sign_in_page, title=spec.title, url_path=Path(spec.path).stem, visibility="hidden") for spec in ui.PAGES]
    page = st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/login:", default=True), *gates, *public], position="hidden")
else:
    sections: dict[str, list] = {}
    account = []  # linked under the signed-in name, not in the menu (a longer menu hides pages behind "View more")
    for spec in ui.PAGES:
        if spec.section == ui.ACCOUNT:
            account.append(st.Page(spec.path, title=spec.title, icon=spec.icon, visibility="hidden"))
        elif spec.perm is None or actor.can(spec.perm):
            sections.setdefault(spec.section, []).append(st.Page(spec.path, title=spec.title, icon=spec.icon))
    # expanded: every page of the role is listed (collapsed, Streamlit hides all but a few behind "View N more").
    page = st.navigation({**sections, "": [*account, *public]}, expanded=True)
    if actor.can(Perm.BACKUP):
        with ui.user_errors():  # a backup folder that cannot be read says so here, and the pages still open
            if trouble := backup.health(actor=actor):
                st.error(ui.md(trouble), icon=":material/database:")  # on every page, until the database and its backups are sound
    with st.sidebar:
        st.caption(f"Signed in as **{ui.md(actor.username)}** ({actor.role})")
        for spec in account:
            st.page_link(spec, label=spec.title, icon=spec.icon)
        if st.button("Sign out", icon=":material/logout:"):
            ui.sign_out()
            st.rerun()
page.run()
