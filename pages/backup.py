"""Administration → Backup: back up now, list backups, restore one (checked first, confirmed in a dialog)."""

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

import ui
from crmcore.admin import backup, restore

st.title("Backup and restore")
st.caption(
    "Backups are taken while Liaison runs (SQLite online backup, or PostgreSQL's own dump tool); the worker takes one a day. "
    "Each backup is verified before it counts. A restore accepts only a file holding exactly what Liaison's migrations create "
    "(no trigger, view, missing or extra table), whole and consistent; it is migrated and checked apart, and the current "
    "database is backed up before it is replaced."
)
db, me = ui.db(), ui.actor()
if message := st.session_state.pop("backup-done", None):
    st.success(message)


def forget_pending() -> None:
    st.session_state.pop("backup-pending", None)


# The pending restore is kept in session state so that the dialog stays open across reruns until
# it is confirmed, cancelled or dismissed.
@st.dialog("Restore this backup?", on_dismiss=forget_pending)
def confirm_restore(path: str, label: str) -> None:
    st.warning(f"This replaces the whole database with {ui.md(label)}. Everything changed since that backup is lost (the current database is backed up first). "
               "Everyone, you included, signs in again afterwards.")
    left, right = st.columns(2)
    if right.button("Cancel", key="backup-cancel"):
        forget_pending()
        st.rerun()
    if left.button("Restore now", type="primary", key="backup-confirm"):
        forget_pending()
        with ui.user_errors():
            result = restore.restore(db, actor=me, path=path)
            ui.refresh_after_write()
            st.session_state["backup-done"] = f"Restored {ui.md(label)}; the previous database was saved as {ui.md(result['previous_saved_as'])}."
            st.rerun()


with ui.user_errors():
    if st.button("Back up now", type="primary", icon=":material/backup:", key="backup-now"):
        with st.spinner("Backing up…"):
            made = backup.create_backup(db, actor=me)
        st.success(f"Backed up to {ui.md(made.name)} ({made.stat().st_size / 1e6:.1f} MB).")

    files = backup.list_backups(actor=me)
    st.subheader("Backups")
    st.caption(f"In {ui.md(str(backup.backup_dir()))}")
    if files:
        table = pd.DataFrame(
            {
                "file": [f["name"] for f in files],
                "size (MB)": [round(f["bytes"] / 1e6, 2) for f in files],
                "taken": [ui.local(datetime.fromtimestamp(f["modified"], timezone.utc)) for f in files],
            }
        )
        ui.table(table, hide_index=True, width="stretch")
        chosen = st.selectbox("Backup", [f["name"] for f in files], key="backup-choice")
        restore_col, download_col = st.columns(2)
        if restore_col.button("Restore the chosen backup…", key="backup-restore-listed"):
            st.session_state["backup-pending"] = (str(backup.backup_dir() / chosen), chosen)
        with download_col:  # a backup holds every patron's personal data: a one-use link, audited
            ui.personal_download(
                "Download the chosen backup", file_name=chosen, content_type="application/octet-stream",
                make=lambda: backup.backup_file(actor=me, name=chosen).read_bytes(), key="backup-download",
            )
    else:
        st.info("No backups yet.")

    st.subheader("Restore from a file")
    st.caption(
        f"Uploads up to {st.get_option('server.maxUploadSize')} MB. A bigger backup needs no upload: copy the .db or .dump file into "
        f"{ui.md(str(backup.backup_dir()))} on the server, reload this page and pick it under Backups above."
    )
    uploaded = st.file_uploader("Backup file (.db or .dump)", key="backup-upload")
    if uploaded is not None and st.button("Restore the uploaded file…", key="backup-restore-upload"):
        target = backup.save_upload(uploaded.name, uploaded.getvalue())
        st.session_state["backup-pending"] = (str(target), uploaded.name)

if pending := st.session_state.get("backup-pending"):
    confirm_restore(*pending)
