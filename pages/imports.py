"""Imports (admin): upload a file, check its first rows, map its columns, dry-run, import, get the error file."""

from pathlib import Path

import streamlit as st

import ui
from crmcore import imports
from crmcore.imports import mapping as mappings
from crmcore.imports import uploads
from crmcore.imports.values import DATE_ORDERS
from crmcore.library.activity import KINDS as ACTIVITY_KINDS
from crmcore.library.consent import TOPICS

NOT_MAPPED = "(not mapped)"
BY_HAND = "(map by hand)"

st.title("Imports")
st.caption(
    "Patrons, activity, event attendance, zones and organizations from the files your systems export. "
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
    for slot in ("import-upload", "import-upload-geojson"):
        if st.session_state.get(slot):
            uploads.discard(Path(st.session_state.pop(slot)))
    st.session_state["import-picker"] = st.session_state.get("import-picker", 0) + 1


def mapping_form(kind: str, header: list[str], base: dict, key: str) -> dict:
    """Widgets for every field of the kind; returns the mapping they describe."""
    options = [NOT_MAPPED, *header]
    columns = {}
    grid = st.columns(2)
    for i, (field, spec) in enumerate(mappings.FIELDS[kind].items()):
        current = base.get("columns", {}).get(field)
        index = options.index(current) if current in options else 0
        label = spec.label + (" *" if spec.required else "")
        chosen = grid[i % 2].selectbox(label, options, index=index, key=f"{key}-{field}")
        if chosen != NOT_MAPPED:
            columns[field] = chosen
    out = {"columns": columns}
    orders = list(DATE_ORDERS)
    out["date_order"] = st.radio("Dates are written", orders, index=orders.index(base.get("date_order", "iso")), format_func=DATE_ORDERS.get, horizontal=True, key=f"{key}-order")
    if kind == "patrons":
        id_choice = st.radio("Patron id", ["from the ILS id column", "made from columns", "the row number"], horizontal=True, key=f"{key}-idmode",
                             index=1 if base.get("id_columns") else 2 if base.get("id_from_row") else 0)
        if id_choice == "made from columns":
            out["id_columns"] = st.multiselect("Columns the id is made from", header, default=[c for c in base.get("id_columns", []) if c in header], key=f"{key}-idcols")
        elif id_choice == "the row number":
            out["id_from_row"] = True
        out["consent_topics"] = st.multiselect("The opt-in columns (Email opt-in, Text message opt-in) cover the topics", list(TOPICS),
                                               default=base.get("consent_topics", mappings.OPT_IN_TOPICS), key=f"{key}-topics")
        codes = {}
        for field, label in (("consent_email", "Email opt-in"), ("consent_sms", "Text message opt-in")):
            if field in columns:
                code = st.text_input(f"{label}: Koha patron attribute code, when the column is Koha's patron_attributes (leave empty for a yes/no column)",
                                     value=base.get("attribute_codes", {}).get(field, ""), key=f"{key}-attr-{field}")
                if code.strip():
                    codes[field] = code.strip()
        if codes:
            out["attribute_codes"] = codes
        st.caption("A notice preference (how overdue and hold notices go) is not a marketing opt-in: it sets the preferred channel and "
                   "grants library services only. Consent changes only when the file's value changed since the last import, and never "
                   "over a choice the patron made themselves.")
    if kind == "activity":
        kinds = list(ACTIVITY_KINDS)
        out["default_kind"] = st.selectbox("Kind when the file has no kind column", kinds, index=kinds.index(base.get("default_kind", "checkout")), key=f"{key}-kind")
    if kind == "zones":
        out["census_columns"] = st.multiselect("Other census figures to keep", header, default=[c for c in base.get("census_columns", []) if c in header], key=f"{key}-census")
    return out


def show_summary(summary) -> None:
    (st.info if summary.dry_run else st.success)(ui.md(summary.describe()))
    st.dataframe([summary.counts()], hide_index=True)
    if summary.rejected:
        st.warning(f"{len(summary.rejected):,} rows were rejected. The error file lists each one's line, field and reason.")
        ui.personal_download("Download error file (CSV)", file_name=f"{Path(summary.file_name).stem}-errors.csv", content_type="text/csv",
                             make=summary.errors_csv, key="errors-csv")  # rejected rows may hold names and addresses
        st.dataframe(summary.errors_frame().head(200), hide_index=True)


kind = st.selectbox("What are you importing?", list(imports.KIND_LABELS), format_func=imports.KIND_LABELS.get, key="import-kind")
picker = st.session_state.get("import-picker", 0)  # a new key empties the pickers after an import
uploaded = st.file_uploader("File (comma, semicolon or tab separated; any common encoding)", type=["csv", "tsv", "txt"], key=f"import-file-{picker}")
shapes = st.file_uploader("Zone shapes (GeoJSON, optional)", type=["geojson", "json"], key=f"import-geojson-{picker}") if kind == "zones" else None
if uploaded is None and st.session_state.get("import-upload"):
    uploads.discard(Path(st.session_state.pop("import-upload")))  # the file was removed from the picker

if uploaded is not None:
    with ui.user_errors():
        path = saved_upload(uploaded, "import-upload")
        inspection = imports.inspect(path, name=uploaded.name)
        st.subheader("First rows")
        st.caption(ui.md(f"{uploaded.name}: {inspection.format.describe()}"))
        st.dataframe(inspection.first_rows, hide_index=True)

        st.subheader("Map the columns")
        with database.read() as session:
            saved = mappings.saved(session, actor=actor, kind=kind)
        presets = [name for name, (preset_kind, _m) in mappings.PRESETS.items() if preset_kind == kind]
        sources = [BY_HAND, *presets, *saved]
        suggested = inspection.suggested_preset if inspection.suggested_preset in sources else BY_HAND
        source = st.selectbox("Start from a preset or a saved mapping", sources, index=sources.index(suggested), key=f"import-source-{kind}")
        base = mappings.preset(source)[1] if source in presets else saved.get(source, {})
        chosen = mapping_form(kind, inspection.format.header, base, key=f"map-{kind}-{source}")

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
            geojson = saved_upload(shapes, "import-upload-geojson") if shapes is not None else None

            def report(fraction: float, summary) -> None:
                bar.progress(fraction, text=f"{summary.total:,} rows read — {summary.new:,} new, {summary.updated:,} updated, {len(summary.rejected):,} rejected")

            try:
                st.session_state["import-summary"] = imports.run_import(
                    database, actor=actor, kind=kind, path=path, file_name=uploaded.name, mapping=chosen, dry_run=action == "dry", geojson=geojson, progress=report
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
    st.dataframe(imports.recent_runs(session, actor=actor), hide_index=True)
