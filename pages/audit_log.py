"""Administration → Audit log: who did what, when; filter and export. Read-only."""

from datetime import timedelta

import streamlit as st

import ui
from crmcore.models import utcnow
from crmcore.privacy import audit

st.title("Audit log")
st.caption("Sign-ins, failed sign-ins, views and exports of personal data, imports, launches, setting changes, erasures … The log cannot be edited.")
db, me = ui.db(), ui.actor()

with ui.user_errors():
    with db.read() as session:
        options = audit.choices(session, actor=me)
    left, middle, right = st.columns(3)
    staff = left.selectbox("Staff member", ["(anyone)", *options["staff"]], key="audit-staff")
    action = middle.selectbox("Action", ["(any)", *options["actions"]], key="audit-action")
    today = utcnow().date()
    period = right.date_input("From – to (UTC)", value=(today - timedelta(days=30), today), key="audit-dates")
    since, until = (tuple(period) + (None, None))[:2] if isinstance(period, (tuple, list)) else (period, None)
    filters = {"staff": None if staff == "(anyone)" else staff, "action": None if action == "(any)" else action, "since": since, "until": until}
    with db.read() as session:
        entries = audit.search(session, actor=me, **filters)
    st.caption(f"{len(entries):,} entries (newest first; at most {audit.MAX_ROWS:,})")
    ui.table(ui.local_frame(entries, "at"), hide_index=True, width="stretch")  # in the library's time zone

    def export() -> bytes:
        # Runs only when the button is clicked, so that only a real export is audited.
        with db.write() as session:
            return audit.export_csv(session, actor=me, **filters)

    ui.personal_download("Export CSV", file_name="audit-log.csv", content_type="text/csv", make=export, key="audit-export")
