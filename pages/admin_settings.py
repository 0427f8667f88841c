"""Administration → Settings: the run-time settings, validated by crmcore; branches (name, zone); SMTP as configured."""

import pandas as pd
import streamlit as st

import ui
from crmcore.admin import branches, config, settings

st.title("Settings")
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("settings-done", None):
    st.success(message)

with db.read() as session:
    current, logo_now = settings.get_all(session), settings.branding(session).logo_image()

with st.form("settings"):
    entered = {}
    for key, spec in settings.SPECS.items():
        label = settings.LABELS[key]
        if key == "library_logo":
            if logo_now:
                st.image(logo_now[0], caption="The logo now", width=160)
            upload = st.file_uploader("Library logo (PNG, JPEG or GIF)", type=["png", "jpg", "jpeg", "gif"], help=spec.help, key="setting-library_logo")
            remove = st.checkbox("Remove the logo", key="setting-library_logo-remove", disabled=not current[key])
            entered[key] = upload.getvalue() if upload is not None else "" if remove else current[key]
        elif key == "postal_address":
            entered[key] = st.text_area("Postal address", value=str(current[key]), help=spec.help, height=100, key=f"setting-{key}")
        elif isinstance(spec.default, bool):
            entered[key] = st.checkbox(label, value=bool(current[key]), help=spec.help, key=f"setting-{key}")
        elif isinstance(spec.default, int):
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

st.subheader("Branches")
st.caption(
    "Imports create a branch from its code. Give it a name, and the zone it stands in: the dashboard's program "
    "attendance per 1,000 residents by zone counts a branch's programs in its zone."
)
with db.read() as session:
    rows, zones = branches.list_branches(session, actor=me), branches.zone_names(session, actor=me)
if not rows:
    st.info("No branches yet: imports create them from the branch codes in their files.")
else:
    choices = {None: "(no zone)", **zones}
    with st.form("branches"):
        entered = []
        for row in rows:
            code, name, zone = st.columns([1, 3, 3])
            code.markdown(ui.md(row["code"]))
            entered.append((
                row["id"],
                name.text_input(f"Name of {ui.md(row['code'])}", value=row["name"], max_chars=branches.NAME_MAX, key=f"branch-name-{row['id']}"),
                zone.selectbox(f"Zone of {ui.md(row['code'])}", list(choices), index=list(choices).index(row["zone_id"]) if row["zone_id"] in choices else 0,
                               format_func=choices.get, key=f"branch-zone-{row['id']}"),
            ))
        save_branches = st.form_submit_button("Save branches")
    if save_branches:
        with ui.user_errors():
            with db.write() as session:  # all or nothing
                changed = sum(branches.update_branch(session, actor=me, branch_id=i, name=name, zone_id=zone) for i, name, zone in entered)
            if changed:
                ui.refresh_after_write()
            st.session_state["settings-done"] = f"Saved {changed} branch change(s)." if changed else "No branch changed."
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
ui.table(pd.DataFrame({"setting": list(smtp), "value": list(smtp.values())}), hide_index=True, width="stretch")
