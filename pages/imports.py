"""Imports (admin): upload a file, check its first rows, map its columns, dry-run, import, get the error file."""

from pathlib import Path

import pandas as pd
import streamlit as st

import ui
from crmcore import imports
from crmcore.imports import mapping as mappings
from crmcore.imports import uploads, zones
from ui.imports import mapping_form

BY_HAND = "(map by hand)"
SLOTS = ("import-upload", "import-upload-geojson")

st.title("Imports")
st.caption(
    "Patrons, activity, event attendance, zones, organizations and the catalogue feed of new materials from the files your systems export. "
    "Only the columns you map are kept; every other column is dropped unread."
)
actor = ui.actor()
database = ui.db()


if "import-uploads-checked" not in st.session_state:  # once a session: uploads left behind by closed tabs or a crash
    uploads.remove_stale()
    st.session_state["import-uploads-checked"] = True


def saved_upload(uploaded, slot: str) -> Path:
    """The uploaded file on disk, private (crmcore reads files as streams); the one it replaces is deleted."""
    path = uploads.save(uploaded.getvalue(), name=uploaded.name)
    previous = st.session_state.get(slot)
    if previous and previous != str(path):
        uploads.discard(Path(previous))  # abandoned: a new file was chosen
    st.session_state[slot] = str(path)
    return path


def end_uploads() -> None:
    """The import ended (done or failed): its files are deleted and the file pickers emptied."""
    for slot in SLOTS:
        if st.session_state.get(slot):
            uploads.discard(Path(st.session_state.pop(slot)))
    st.session_state["import-picker"] = st.session_state.get("import-picker", 0) + 1


def show_summary(summary) -> None:
    (st.info if summary.dry_run else st.success)(ui.md(summary.describe()))
    ui.table([summary.counts()], hide_index=True)
    if summary.rejected:
        st.warning(f"{len(summary.rejected):,} rows were rejected. The error file lists each one's line, field and reason.")
        ui.personal_download("Download error file (CSV)", file_name=f"{Path(summary.file_name).stem}-errors.csv", content_type="text/csv",
                             make=summary.errors_csv, key="errors-csv")  # rejected rows may hold names and addresses
        ui.table(summary.errors_frame().head(200), hide_index=True)


kind = st.selectbox("What are you importing?", list(imports.KIND_LABELS), format_func=imports.KIND_LABELS.get, key="import-kind")
picker = st.session_state.get("import-picker", 0)  # a new key empties the pickers after an import
uploaded = st.file_uploader("File (comma, semicolon or tab separated; any common encoding)", type=["csv", "tsv", "txt"], key=f"import-file-{picker}")
shapes = st.file_uploader("Zone shapes (GeoJSON, optional)", type=["geojson", "json"], key=f"import-geojson-{picker}") if kind == "zones" else None
for slot, picked in zip(SLOTS, (uploaded, shapes)):
    if picked is None and st.session_state.get(slot):
        uploads.discard(Path(st.session_state.pop(slot)))  # the file was removed from the picker (or the kind changed)

if uploaded is not None:
    with ui.user_errors():
        path = saved_upload(uploaded, "import-upload")
        inspection = imports.inspect(path, name=uploaded.name)
        geojson = saved_upload(shapes, "import-upload-geojson") if shapes is not None else None
        properties = zones.geojson_properties(geojson) if geojson is not None else None

        st.subheader("Map the columns")
        st.caption(ui.md(f"{uploaded.name}: {inspection.format.describe()}"))
        header = inspection.format.header
        with database.read() as session:
            saved = mappings.saved(session, actor=actor, kind=kind)
        presets = [name for name, (preset_kind, _m) in mappings.PRESETS.items() if preset_kind == kind]
        sources = [BY_HAND, *presets, *saved]
        suggested = inspection.suggested_preset if inspection.suggested_preset in sources else BY_HAND
        source = st.selectbox("Start from a preset or a saved mapping", sources, index=sources.index(suggested), key=f"import-source-{kind}")
        base = mappings.fit_preset(kind, mappings.preset(source)[1], header) if source in presets else saved.get(source, {})
        if base.get("missing_columns"):
            st.caption(ui.md(f"This file has no {', '.join(base['missing_columns'].values())} column: those fields are left as they are."))
        chosen = mapping_form(kind, header, base, key=f"map-{kind}-{source}", geojson_properties=properties)

        st.subheader("First rows")
        shown = mappings.mapped_columns(chosen)
        if shown:
            st.caption("The mapped columns only: the others are never read.")
            ui.table(imports.first_rows(path, inspection.format, columns=shown), hide_index=True)
        else:
            st.caption("Map a column to see its first rows.")

        with st.form("save-mapping", border=False):
            cols = st.columns([3, 1])
            name = cols[0].text_input("Save this mapping as", placeholder="e.g. Koha nightly export")
            if cols[1].form_submit_button("Save mapping"):
                clean = mappings.clean_mapping(kind, chosen, inspection.format.header)
                with database.write() as session:
                    mappings.save(session, actor=actor, kind=kind, name=name, mapping=clean)
                st.success(ui.md(f"Mapping {name.strip()!r} saved."))

        dry, real = st.columns(2)
        action = "dry" if dry.button("Dry run (check only)", icon=":material/fact_check:") else None
        action = "import" if real.button("Import", type="primary", icon=":material/upload:") else action
        if action:
            bar = st.progress(0.0, text="Reading …")

            def report(fraction: float, summary) -> None:
                bar.progress(fraction, text=f"{summary.total:,} rows read — {summary.new:,} new, {summary.updated:,} updated, {len(summary.rejected):,} rejected")

            try:
                st.session_state["import-summary"] = imports.run_import(
                    database, actor=actor, kind=kind, path=path, file_name=uploaded.name, mapping=chosen, dry_run=action == "dry", geojson=geojson,
                    geojson_name=shapes.name if shapes is not None else None, progress=report
                )
            finally:
                if action == "import":  # a dry run keeps the file for the import that follows it
                    end_uploads()
            ui.refresh_after_write()
            if action == "import":
                st.rerun()  # the emptied pickers; the summary stays
if "import-summary" in st.session_state:
    show_summary(st.session_state["import-summary"])

st.subheader("Recent imports")
with ui.user_errors(), database.read() as session:
    runs = pd.DataFrame(imports.recent_runs(session, actor=actor))
    ui.table(ui.local_frame(runs), hide_index=True)  # times in the library's time zone
