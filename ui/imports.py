"""The Imports page's mapping form: which column feeds which field, how dates and ids are written, what means 'missing'.

It returns the mapping (the format `crmcore.imports.mapping.clean_mapping` checks); it reads nothing but the header.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from crmcore.imports import mapping as mappings
from crmcore.imports.values import DATE_ORDERS
from crmcore.library.activity import KINDS as ACTIVITY_KINDS
from crmcore.library.consent import TOPICS

NOT_MAPPED = "(not mapped)"
NO_MONTH = "(no month column: January)"
ONE_COLUMN, TWO_COLUMNS, FIXED_YEAR = "one column", "year and month in two columns", "month column with a fixed year"
USUAL_PROPERTIES = "(the usual code properties: code, GEOID, ZCTA5CE20 …)"
# The id choice per kind: its label and what "from the column" means there.
ID_CHOICES = {
    "patrons": ("Patron id", "from the ILS id column"),
    "attendance": ("Event id", "from the event id column"),
    "activity": ("Transaction id", "from the transaction id column (or none)"),
}
MADE, ROW_NUMBER = "made from columns", "the row number"
ROW_NUMBER_WARNING = "Row-number ids need the file in the same order every time: a re-sorted file updates the wrong records."
CENSUS_MISSING = ["-1", "-3", "-9"]  # what national surveys write for 'not reported', 'not applicable' …


def mapping_form(kind: str, header: list[str], base: dict, key: str, geojson_properties: dict[str, list[str]] | None = None) -> dict:
    """Widgets for every field of the kind and its options; returns the mapping they describe."""
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
    out: dict = {"columns": columns}
    if base.get("missing_columns"):
        out["missing_columns"] = base["missing_columns"]  # clean_mapping forgets those mapped by hand since
    orders = list(DATE_ORDERS)
    out["date_order"] = st.radio("Dates are written", orders, index=orders.index(base.get("date_order", "iso")), format_func=DATE_ORDERS.get, horizontal=True, key=f"{key}-order")
    if year_month := _dates(kind, header, base, key):
        out["year_month"] = year_month
    if kind in ID_CHOICES:
        out.update(_ids(kind, header, base, key))
    missing = st.text_input("Values that mean 'missing' (comma-separated)", value=", ".join(base.get("missing_values") or (CENSUS_MISSING if kind == "zones" else [])),
                            placeholder="-1, -3, -9", key=f"{key}-missing",
                            help="Cells equal to one of these are empty in every mapped column, as blanks, 'None', 'NULL' and 'N/A' are already.")
    if values := [v.strip() for v in missing.split(",") if v.strip()]:
        out["missing_values"] = values
    if kind == "patrons":
        out.update(_consent(columns, base, key))
    if kind in ("activity", "circulation"):
        kinds = list(ACTIVITY_KINDS)
        out["default_kind"] = st.selectbox("Kind when the file has no kind column", kinds, index=kinds.index(base.get("default_kind", "checkout")), key=f"{key}-default-kind")
    if kind == "zones":
        out["census_columns"] = st.multiselect("Other census figures to keep", header, default=[c for c in base.get("census_columns", []) if c in header], key=f"{key}-census")
        if geojson_properties is not None:
            props = [USUAL_PROPERTIES, *geojson_properties]
            current = base.get("geojson_property")
            prop = st.selectbox("The GeoJSON property holding the zone code", props, index=props.index(current) if current in props else 0, key=f"{key}-property",
                                format_func=lambda p: p if p == USUAL_PROPERTIES else f"{p} (e.g. {', '.join(geojson_properties[p]) or 'no values'})")
            if prop != USUAL_PROPERTIES:
                out["geojson_property"] = prop
    if kind == "library_survey":
        year = st.number_input("Fiscal year (0 = from the year column or the file name)", min_value=0, max_value=2100, step=1,
                               value=int(base.get("fiscal_year") or 0), key=f"{key}-fiscal-year")
        if year:
            out["fiscal_year"] = int(year)
    return out


def _dates(kind: str, header: list[str], base: dict, key: str) -> dict:
    """For each date field: one column, year and month in two columns, or a month column with a fixed year."""
    out = {}
    ways = [ONE_COLUMN, TWO_COLUMNS, FIXED_YEAR]
    for field, spec in mappings.FIELDS[kind].items():
        if spec.type != "date":
            continue
        before = (base.get("year_month") or {}).get(field) or {}
        way = st.radio(f"{spec.label} is in", ways, horizontal=True, key=f"{key}-{field}-way",
                       index=2 if before.get("year_value") else 1 if before.get("year") else 0)
        if way == ONE_COLUMN:
            continue
        left, right = st.columns(2)
        if way == TWO_COLUMNS:
            year = left.selectbox(f"{spec.label}: year column", header, index=header.index(before["year"]) if before.get("year") in header else 0, key=f"{key}-{field}-year")
            months = [NO_MONTH, *header]
            month = right.selectbox(f"{spec.label}: month column", months, index=months.index(before["month"]) if before.get("month") in months else 0, key=f"{key}-{field}-month")
            out[field] = {"year": year, "month": None if month == NO_MONTH else month}
        else:
            year = left.number_input(f"{spec.label}: the year", min_value=mappings.FIRST_YEAR, max_value=date.today().year + 1, step=1,
                                     value=int(before.get("year_value") or date.today().year), key=f"{key}-{field}-year-value")
            month = right.selectbox(f"{spec.label}: month column", header, index=header.index(before["month"]) if before.get("month") in header else 0, key=f"{key}-{field}-month-only")
            out[field] = {"year_value": int(year), "month": month}
    return out


def _ids(kind: str, header: list[str], base: dict, key: str) -> dict:
    label, from_column = ID_CHOICES[kind]
    choice = st.radio(label, [from_column, MADE, ROW_NUMBER], horizontal=True, key=f"{key}-idmode",
                      index=1 if base.get("id_columns") else 2 if base.get("id_from_row") else 0)
    if choice == MADE:
        return {"id_columns": st.multiselect("Columns the id is made from", header, default=[c for c in base.get("id_columns", []) if c in header], key=f"{key}-idcols")}
    if choice == ROW_NUMBER:
        st.warning(ROW_NUMBER_WARNING, icon=":material/sort:")
        return {"id_from_row": True}
    return {}


def _consent(columns: dict, base: dict, key: str) -> dict:
    out: dict = {}
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
    return out
