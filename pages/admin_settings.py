"""Administration → Settings: the run-time settings, validated by crmcore; SMTP as configured."""

import pandas as pd
import streamlit as st

import ui
from crmcore.admin import config, settings

st.title("Settings")
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("settings-done", None):
    st.success(message)

with db.read() as session:
    current = settings.get_all(session)

with st.form("settings"):
    entered = {}
    for key, spec in settings.SPECS.items():
        label = key.replace("_", " ").capitalize()
        if isinstance(spec.default, int):
            entered[key] = st.number_input(label, value=int(current[key]), step=1, help=spec.help, key=f"setting-{key}")
        else:
            entered[key] = st.text_input(label, value=str(current[key]), help=spec.help, key=f"setting-{key}")
    save = st.form_submit_button("Save settings", type="primary")
if save:
    changed = {key: value for key, value in entered.items() if value != current[key]}
    with ui.user_errors():
        with db.write() as session:  # all or nothing: one bad value saves none
            for key, value in changed.items():
                settings.put(session, actor=me, key=key, value=value)
        if changed:
            ui.refresh_after_write()  # cached figures follow the new values (other processes: crmcore.admin.settings.version)
        st.session_state["settings-done"] = f"Saved {len(changed)} change(s)." if changed else "Nothing changed."
        st.rerun()

st.subheader("Outgoing mail (SMTP)")
st.caption(
    "Mail settings are deployment configuration: set them as environment variables or in .streamlit/secrets.toml "
    "and restart. The password is never shown; this page only says whether one is set."
)
host = config.get("CRM_SMTP_HOST")
smtp = {
    "CRM_SMTP_HOST": host or "(not set: messages are written to the outbox folder as .eml files)",
    "CRM_SMTP_PORT": config.get("CRM_SMTP_PORT", "587"),
    "CRM_SMTP_USER": config.get("CRM_SMTP_USER") or "(not set)",
    "CRM_SMTP_PASSWORD": "set" if config.get("CRM_SMTP_PASSWORD") else "not set",
    "CRM_SMTP_STARTTLS": config.get("CRM_SMTP_STARTTLS") or "(default)",
    "CRM_MAIL_FROM": config.get("CRM_MAIL_FROM") or "(not set)",
}
st.dataframe(pd.DataFrame({"setting": list(smtp), "value": list(smtp.values())}), hide_index=True, width="stretch")
