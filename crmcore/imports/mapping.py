"""What each kind of import can hold (the allowlist), presets for real exports, and saved mappings.

A mapping says which file column feeds which Liaison field. Only fields listed here exist: a column
that is not mapped to one of them is dropped while reading and never stored or logged. There is no
field for what a patron borrowed (titles, item identifiers) in any kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.imports.library_survey import check_year
from crmcore.imports.values import DATE_ORDERS
from crmcore.library import consent
from crmcore.library.activity import KINDS as ACTIVITY_KINDS
from crmcore.models import ImportMapping
from crmcore.privacy import audit

# The topics an explicit opt-in column (Email opt-in, Text message opt-in) grants or withdraws unless the
# mapping says otherwise. A notice preference is not an opt-in: it grants only the services topic.
OPT_IN_TOPICS = ["events", "new_materials", "newsletter"]

@dataclass(frozen=True)
class FieldSpec:
    label: str
    type: str = "text"  # text, code, word (where 'None' is a value), bool, date, year, int, email, phone, language
    required: bool = False
    max_len: int = 200
    years_ahead: int = 1  # a date's latest plausible year: next year, unless the field looks further ahead


KIND_LABELS = {
    "patrons": "Patrons (ILS export)",
    "activity": "Activity events (checkouts, visits, sessions …)",
    "circulation": "Circulation counts (no patrons: monthly by branch, kind and material type)",
    "attendance": "Event attendance (programs)",
    "zones": "Zones and census figures",
    "organizations": "Organizations and contacts",
    "library_survey": "Public Libraries Survey (IMLS, one fiscal year of library systems)",
    "catalogue": "Catalogue feed of new materials (no patrons)",
}

FIELDS: dict[str, dict[str, FieldSpec]] = {
    "patrons": {
        "ils_id": FieldSpec("ILS id (card number)", required=True, max_len=64),
        "first_name": FieldSpec("First name", max_len=120),
        "last_name": FieldSpec("Last name", max_len=120),
        "email": FieldSpec("Email", "email", max_len=254),
        "phone": FieldSpec("Phone", "phone", max_len=40),
        "birth_year": FieldSpec("Birth date or year", "year"),
        "age_band": FieldSpec("Age band", max_len=20),
        "zone": FieldSpec("Zone (ZIP, tract, district)", "code", max_len=40),
        "branch": FieldSpec("Home branch code", "code", max_len=40),
        "patron_type": FieldSpec("Patron type", max_len=40),
        "registered_on": FieldSpec("Registered on", "date"),
        "expires_on": FieldSpec("Card expires on", "date", years_ahead=100),
        "interests": FieldSpec("Interests", max_len=500),
        "history_opt_in": FieldSpec("Keeps reading history (opt-in)", "bool"),
        "contact_method": FieldSpec("Notice preference (email, sms, phone, print, none)", "word", max_len=20),
        "consent_email": FieldSpec("Email opt-in (yes/no)", "bool"),
        "consent_sms": FieldSpec("Text message opt-in (yes/no)", "bool"),
        "last_activity": FieldSpec("Last activity (a date, or year and month columns)", "date"),
        "has_email": FieldSpec("Has an email address (yes/no, without the address)", "bool"),
        "resident": FieldSpec("Resident of the service area (yes/no)", "bool"),
        "non_resident": FieldSpec("Outside the service area (yes/no, e.g. Outside of County)", "bool"),
        "lifetime_checkouts": FieldSpec("Lifetime checkouts (total to date)", "int"),
        "lifetime_renewals": FieldSpec("Lifetime renewals (total to date)", "int"),
        "language": FieldSpec("Preferred language (a code such as es or fr-CA, or its name)", "language", max_len=40),
    },
    "activity": {
        "patron": FieldSpec("Patron ILS id", required=True, max_len=64),
        "occurred_on": FieldSpec("Date", "date", required=True),
        "kind": FieldSpec("Kind (" + ", ".join(ACTIVITY_KINDS) + ")", max_len=30),
        "branch": FieldSpec("Branch code", "code", max_len=40),
        "count": FieldSpec("Count", "int"),
        "category": FieldSpec("Item category / genre (kept only with history opt-in)", max_len=80),
        "source_id": FieldSpec("Transaction id (tells identical rows apart)", max_len=64),
    },
    "circulation": {
        "month": FieldSpec("Month (a date, or year and month columns)", "date", required=True),
        "branch": FieldSpec("Branch code", "code", max_len=40),
        "kind": FieldSpec("Kind (" + ", ".join(ACTIVITY_KINDS) + ")", max_len=30),
        "material_type": FieldSpec("Material type (one of the item categories' material types)", max_len=80),
        "count": FieldSpec("Count (checkouts, renewals …; 1 when not mapped)", "int"),
    },
    "attendance": {
        "event_id": FieldSpec("Event id", required=True, max_len=64),
        "title": FieldSpec("Program title", max_len=300),
        "held_on": FieldSpec("Date", "date", required=True),
        "branch": FieldSpec("Branch / campus", "code", max_len=40),
        "categories": FieldSpec("Categories", max_len=300),
        "audiences": FieldSpec("Audiences", max_len=300),
        "registrations": FieldSpec("Registrations", "int"),
        "attendance": FieldSpec("Attendance (in person)", "int"),
        "attendance_online": FieldSpec("Attendance (online)", "int"),
    },
    "zones": {
        "code": FieldSpec("Zone code", "code", required=True, max_len=40),
        "name": FieldSpec("Name", max_len=200),
        "population": FieldSpec("Population", "int"),
        "households": FieldSpec("Households", "int"),
        "median_income": FieldSpec("Median income", "int"),
    },
    "organizations": {
        "name": FieldSpec("Organization name", required=True, max_len=200),
        "sector": FieldSpec("Sector", max_len=60),
        "email": FieldSpec("Organization email", "email", max_len=254),
        "phone": FieldSpec("Organization phone", "phone", max_len=40),
        "website": FieldSpec("Website", max_len=300),
        "address": FieldSpec("Address", max_len=300),
        "is_partner": FieldSpec("Partner", "bool"),
        "tags": FieldSpec("Tags (comma-separated)", max_len=300),
        "contact_first_name": FieldSpec("Contact first name", max_len=120),
        "contact_last_name": FieldSpec("Contact last name", max_len=120),
        "contact_email": FieldSpec("Contact email", "email", max_len=254),
        "contact_phone": FieldSpec("Contact phone", "phone", max_len=40),
        "contact_job_title": FieldSpec("Contact job title", max_len=120),
    },
    # The IMLS Public Libraries Survey, administrative entities (crmcore.imports.library_survey).
    "library_survey": {
        "fscs_key": FieldSpec("FSCS key (library system id)", "code", required=True, max_len=10),
        "name": FieldSpec("Library name", max_len=200),
        "state": FieldSpec("State", "code", max_len=4),
        "locale": FieldSpec("Locale code (city, suburb, town, rural)", "code", max_len=4),
        "fiscal_year": FieldSpec("Fiscal year (else the mapping's or the file name's)", "int"),
        "population": FieldSpec("Service-area population", "int"),
        "visits": FieldSpec("Visits", "int"),
        "circulation": FieldSpec("Total circulation", "int"),
        "e_circulation": FieldSpec("Electronic circulation", "int"),
        "registered": FieldSpec("Registered users", "int"),
        "programs": FieldSpec("Program sessions", "int"),
        "attendance": FieldSpec("Program attendance", "int"),
        "expenditure": FieldSpec("Operating expenditure", "int"),
        "branches": FieldSpec("Branch libraries", "int"),
    },
    "catalogue": {
        "link": FieldSpec("Catalogue link (http or https)", required=True, max_len=300),
        "title": FieldSpec("Title", required=True, max_len=300),
        "author": FieldSpec("Author", max_len=200),
        "material_type": FieldSpec("Material type (one of the item categories' material types)", max_len=80),
        "categories": FieldSpec("Categories (item categories, separated by ; or ,)", max_len=300),
        "branch": FieldSpec("Branch code", "code", max_len=40),
        "cover_url": FieldSpec("Cover image web address (optional)", max_len=300),
        "added_on": FieldSpec("Date added", "date"),
    },
}

# The Public Libraries Survey's administrative-entity columns (the record layout's names).
PLS_COLUMNS = {
    "fscs_key": "FSCSKEY", "name": "LIBNAME", "state": "STABR", "locale": "LOCALE_ADD", "population": "POPU_LSA", "visits": "VISITS",
    "circulation": "TOTCIR", "e_circulation": "ELMATCIR", "registered": "REGBOR", "programs": "TOTPRO", "attendance": "TOTATTEN",
    "expenditure": "TOTOPEXP", "branches": "BRANLIB",
}
PLS_MISSING = ["-1", "-3", "-4", "-9"]

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "Koha borrowers": (
        "patrons",
        {
            "columns": {
                "ils_id": "cardnumber", "first_name": "firstname", "last_name": "surname", "email": "email",
                "phone": "phone", "birth_year": "dateofbirth", "zone": "zipcode", "branch": "branchcode",
                "patron_type": "categorycode", "registered_on": "dateenrolled", "expires_on": "dateexpiry",
                "contact_method": "primary_contact_method", "language": "lang",
            },
            "date_order": "iso",
        },
    ),
    "Evergreen patron load": (
        "patrons",
        {
            "columns": {
                "ils_id": "usrname", "first_name": "first_given_name", "last_name": "family_name", "email": "email",
                "phone": "day_phone", "birth_year": "dob", "branch": "home_ou", "patron_type": "profile",
            },
            "date_order": "iso",
        },
    ),
    "LibCal events": (
        "attendance",
        {
            "columns": {
                "event_id": "Event ID", "title": "Title", "held_on": "Date", "branch": "Library/Campus",
                "categories": "Categories", "audiences": "Audiences", "registrations": "Confirmed Registrations",
                "attendance": "Actual Attendance In-Person", "attendance_online": "Actual Attendance Online",
            },
            "date_order": "mdy",
        },
    ),
    # As published: the survey's negative codes mean missing (-1, -9), not applicable (-3) or closed (-4).
    "IMLS Public Libraries Survey": ("library_survey", {"columns": PLS_COLUMNS, "missing_values": PLS_MISSING}),
    # Earlier years name the locale column LOCALE.
    "IMLS Public Libraries Survey (LOCALE column)": ("library_survey", {"columns": {**PLS_COLUMNS, "locale": "LOCALE"}, "missing_values": PLS_MISSING}),
}


def check_kind(kind: str) -> None:
    if kind not in FIELDS:
        raise ValueError(f"Unknown import kind {kind!r}; kinds are {', '.join(FIELDS)}.")


def suggest_preset(header: list[str]) -> str | None:
    """The preset whose required columns are all in the header (and most of the rest), if any."""
    present = set(header)
    best, best_share = None, 0.5
    for name, (kind, preset) in PRESETS.items():
        columns = preset["columns"]
        required = [c for f, c in columns.items() if FIELDS[kind][f].required]
        share = sum(c in present for c in columns.values()) / len(columns)
        if all(c in present for c in required) and share > best_share:
            best, best_share = name, share
    return best


def fit_preset(kind: str, mapping: dict[str, Any], header: list[str]) -> dict[str, Any]:
    """A preset applied to a file: the columns the header has, the required ones whatever (clean_mapping says
    when one is absent), and the optional ones not found under `missing_columns` for the run's summary."""
    check_kind(kind)
    present = set(header)
    columns, missing = {}, {}
    for field, column in mapping.get("columns", {}).items():
        if column in present or (field in FIELDS[kind] and FIELDS[kind][field].required):
            columns[field] = column
        else:
            missing[field] = column
    out = {**mapping, "columns": columns}
    if missing:
        out["missing_columns"] = missing
    return out


def mapped_columns(mapping: dict[str, Any]) -> list[str]:
    """The file columns a mapping reads (fields, year and month, ids, census figures), each once, in mapping order."""
    columns = list((mapping.get("columns") or {}).values())
    for parts in (mapping.get("year_month") or {}).values():
        columns += [parts.get("year"), parts.get("month")]
    columns += list(mapping.get("id_columns") or []) + list(mapping.get("census_columns") or [])
    return list(dict.fromkeys(c for c in columns if c and isinstance(c, str)))


def mapping_notes(mapping: dict[str, Any]) -> list[str]:
    """What a run's summary says about a cleaned mapping: the preset columns the file lacked."""
    missing = mapping.get("missing_columns") or {}
    if not missing:
        return []
    return [f"The preset's columns {', '.join(missing.values())} were not in the file; those fields were left as they are."]


def preset(name: str) -> tuple[str, dict[str, Any]]:
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; presets are {', '.join(PRESETS)}.")
    kind, mapping = PRESETS[name]
    return kind, {**mapping, "columns": dict(mapping["columns"])}


# The field an id made from columns or the row number fills, per kind (patrons: the ILS id; attendance: the
# event id; activity: the transaction id that tells identical rows apart).
ID_FIELDS = {"patrons": "ils_id", "attendance": "event_id", "activity": "source_id"}
FIRST_YEAR = 1900  # the earliest year a date of any import may have


def _year_month(fields: dict[str, FieldSpec], mapping: dict[str, Any], present: set[str]) -> dict[str, dict[str, Any]]:
    """The date fields that come from a year and a month column, or from a month column and a fixed year."""
    out = {}
    for field, parts in (mapping.get("year_month") or {}).items():
        if field not in fields or fields[field].type != "date":
            raise ValueError(f"Mapping: {field!r} is not a date field, so it cannot come from year and month columns.")
        if not isinstance(parts, dict):
            raise ValueError(f"Mapping: year_month for {fields[field].label} must say its \"year\" and \"month\" columns.")
        label = fields[field].label
        for column in (parts.get("year"), parts.get("month")):
            if column and column not in present:
                raise ValueError(f"Mapping: column {column!r} (for {label}) is not in the file.")
        if parts.get("year_value") not in (None, ""):
            try:
                year = int(str(parts["year_value"]).strip())
            except ValueError:
                raise ValueError(f"Mapping: the year for {label} must be a number, not {parts['year_value']!r}.") from None
            last = date.today().year + 1
            if not FIRST_YEAR <= year <= last:
                raise ValueError(f"Mapping: the year for {label} must be between {FIRST_YEAR} and {last}, not {year}.")
            if not parts.get("month"):
                raise ValueError(f"Mapping: {label} with a fixed year needs the month column.")
            out[field] = {"year_value": year, "month": parts["month"]}
        elif parts.get("year"):
            out[field] = {"year": parts["year"], "month": parts.get("month") or None}
        else:
            raise ValueError(f"Mapping: {label} from two columns needs the year column (or a fixed year_value).")
    return out


def _missing_values(raw: Any) -> list[str]:
    """The cells that mean 'missing' in this file (census codes such as -1, -3, -9): a list, or one comma-separated text."""
    if raw in (None, ""):
        return []
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise ValueError("Mapping: missing_values must be a list of values, e.g. [\"-1\", \"-3\", \"-9\"].")
    out = []
    for item in items:
        if isinstance(item, (dict, list)) or item is None:
            raise ValueError(f"Mapping: {item!r} cannot be a missing value: give text or numbers.")
        text = str(item).strip()
        if text and text not in out:
            out.append(text)
    return out


def clean_mapping(kind: str, mapping: dict[str, Any], header: list[str]) -> dict[str, Any]:
    """The mapping checked against the kind's fields and the file's header, keeping only known keys."""
    check_kind(kind)
    if not isinstance(mapping, dict):
        raise ValueError("Mapping: a mapping is a JSON object with at least \"columns\".")
    fields, present = FIELDS[kind], set(header)
    columns = {f: c for f, c in (mapping.get("columns") or {}).items() if c}
    for field, column in columns.items():
        if field not in fields:
            raise ValueError(f"Mapping: {field!r} is not a field of a {kind} import.")
        if column not in present:
            raise ValueError(f"Mapping: column {column!r} (for {fields[field].label}) is not in the file.")
    year_month = _year_month(fields, mapping, present)
    for field in year_month:
        columns.pop(field, None)  # the two columns replace the one
    id_columns = [c for c in mapping.get("id_columns") or [] if c]
    for column in id_columns:
        if column not in present:
            raise ValueError(f"Mapping: id column {column!r} is not in the file.")
    id_from_row = bool(mapping.get("id_from_row"))
    if (id_columns or id_from_row) and kind not in ID_FIELDS:
        raise ValueError(f"Mapping: ids made from columns or the row number are for {', '.join(ID_FIELDS)} files, not {kind}.")
    generated = ID_FIELDS.get(kind) if id_columns or id_from_row else None
    if generated and kind != "patrons":
        columns.pop(generated, None)  # the made id replaces the column (patrons: the importer makes it over the column)
    for field, spec in fields.items():
        if spec.required and field not in columns and field not in year_month and field != generated:
            raise ValueError(f"Mapping: {spec.label} must be mapped to a column.")
    order = mapping.get("date_order") or "iso"
    if order not in DATE_ORDERS:
        raise ValueError(f"Mapping: date order must be one of {', '.join(DATE_ORDERS)}.")
    out: dict[str, Any] = {"columns": columns, "date_order": order}
    if year_month:
        out["year_month"] = year_month
    if id_columns:
        out["id_columns"] = id_columns
    elif id_from_row:
        out["id_from_row"] = True
    if missing := _missing_values(mapping.get("missing_values")):
        out["missing_values"] = missing
    not_found = {f: c for f, c in (mapping.get("missing_columns") or {}).items() if f in fields and f not in columns and f not in year_month}
    if not_found:
        out["missing_columns"] = not_found
    if kind == "patrons":
        if "resident" in columns and "non_resident" in columns:
            raise ValueError("Mapping: map either Resident or Outside the service area, not both (one is the other turned round).")
        codes = {f: str(c).strip() for f, c in (mapping.get("attribute_codes") or {}).items() if str(c or "").strip()}
        for field in codes:
            if field not in ("consent_email", "consent_sms") or field not in columns:
                raise ValueError(f"Mapping: a Koha patron attribute can hold an opt-in only: map {field!r} to the attributes column first.")
        if codes:
            out["attribute_codes"] = codes
        topics = list(mapping.get("consent_topics") or OPT_IN_TOPICS)
        for topic in topics:
            consent.check("email", topic)
        out["consent_topics"] = topics
    if kind in ("activity", "circulation"):
        default_kind = mapping.get("default_kind") or "checkout"
        if default_kind not in ACTIVITY_KINDS:
            raise ValueError(f"Mapping: activity kind must be one of {', '.join(ACTIVITY_KINDS)}.")
        out["default_kind"] = default_kind
    if kind == "zones":
        census = [c for c in mapping.get("census_columns") or [] if c]
        for column in census:
            if column not in present:
                raise ValueError(f"Mapping: census column {column!r} is not in the file.")
        if census:
            out["census_columns"] = census
        if prop := str(mapping.get("geojson_property") or "").strip():
            out["geojson_property"] = prop
    if kind == "library_survey" and mapping.get("fiscal_year") not in (None, ""):
        out["fiscal_year"] = check_year(mapping["fiscal_year"], "Mapping")
    return out


def save(session: Session, *, actor: Actor, kind: str, name: str, mapping: dict[str, Any]) -> ImportMapping:
    """Save (or replace) a named mapping for the next file of this kind."""
    require(actor, Perm.IMPORT_DATA)
    check_kind(kind)
    name = name.strip()
    if not name:
        raise ValueError("Give the mapping a name.")
    if name in PRESETS:
        raise ValueError(f"{name!r} is a preset; choose another name.")
    row = session.exec(select(ImportMapping).where(ImportMapping.kind == kind, ImportMapping.name == name)).first()
    if row is None:
        row = ImportMapping(kind=kind, name=name[:120], mapping=mapping, created_by_id=actor.id)
    row.mapping = mapping
    session.add(row)
    audit.record(session, actor=actor, action="import.mapping_saved", entity="import_mapping", entity_id=name, detail={"kind": kind})
    return row


def saved(session: Session, *, actor: Actor, kind: str) -> dict[str, dict[str, Any]]:
    """Saved mappings of one kind: name → mapping."""
    require(actor, Perm.IMPORT_DATA)
    rows = session.exec(select(ImportMapping).where(ImportMapping.kind == kind).order_by(ImportMapping.name))
    return {r.name: r.mapping for r in rows}


def find(session: Session, *, actor: Actor, name: str, kind: str) -> dict[str, Any]:
    """A preset or saved mapping by name; ValueError naming the choices when there is none."""
    require(actor, Perm.IMPORT_DATA)
    if name in PRESETS:
        preset_kind, mapping = preset(name)
        if preset_kind != kind:
            raise ValueError(f"The preset {name!r} is for {preset_kind} imports, not {kind}.")
        return mapping
    mine = saved(session, actor=actor, kind=kind)
    if name not in mine:
        choices = [n for n, (k, _m) in PRESETS.items() if k == kind] + list(mine)
        raise ValueError(f"No mapping named {name!r} for {kind} imports; there are: {', '.join(choices) or 'none'}.")
    return mine[name]
