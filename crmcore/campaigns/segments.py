"""Segments: saved rule trees, their live count and a sample of matching patrons, and lifecycle presets.

The rule language lives in `crmcore.campaigns.rules.language` and its compiler in `crmcore.campaigns.rules.compiler`; this
module is the service layer (permissions, audit, persistence). Every function needs Perm.MANAGE_SEGMENTS.
"""

from __future__ import annotations

import copy
import functools
import json
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns.rules.compiler import compile_rules
from crmcore.campaigns.rules.language import leaves, validate
from crmcore.kpis.summaries import AGE_BANDS
from crmcore.languages import catalogues, codes
from crmcore.library.patrons import full_name, mask_email, mask_name
from crmcore.models import Branch, Campaign, Patron, Persona, Segment, Zone, utcnow
from crmcore.privacy import audit

# The five segments of benchmark B3, as users would build them (codes of the demo library).
STANDARD_SEGMENTS: dict[str, dict[str, Any]] = {
    "lapsed_zone_email": {"all": [
        {"field": "days_since_activity", "op": ">=", "value": 180},
        {"field": "zone", "op": "in", "value": ["48101"]},
        {"field": "consent", "op": "granted", "channel": "email", "topic": "newsletter"},
    ]},
    "new_90_days": {"all": [{"field": "registered_on", "op": "within_last_days", "value": 90}]},
    "age_band_branch": {"all": [
        {"field": "age_band", "op": "in", "value": ["25-34"]},
        {"field": "branch", "op": "in", "value": ["CEN"]},
    ]},
    "digital_loan_12_months": {"all": [
        {"field": "activity_count", "kind": "digital_loan", "days": 365, "op": ">=", "value": 1},
    ]},
    "event_never_borrowed": {"all": [
        {"field": "event_attendance", "op": "attended"},
        {"field": "activity_count", "kind": "checkout", "op": "=", "value": 0},
    ]},
}

# Lifecycle presets: the dashboard's states, ready to use (read-only; duplicate one to change it).
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "New patrons": ("Registered in the last 12 weeks (to the end of this month).", {"all": [{"field": "lifecycle", "op": "in", "value": ["new"]}]}),
    "Occasional users": ("Active in the last 6 months, in fewer than 6 of the last 12.", {"all": [{"field": "lifecycle", "op": "in", "value": ["occasional"]}]}),
    "Regular users": ("Active in at least 6 of the last 12 months, and in the last 6.", {"all": [{"field": "lifecycle", "op": "in", "value": ["regular"]}]}),
    "At risk": ("Last activity 6–12 months ago.", {"all": [{"field": "lifecycle", "op": "in", "value": ["at_risk"]}]}),
    "Lapsed": ("No activity in the last 12 months.", {"all": [{"field": "lifecycle", "op": "in", "value": ["lapsed"]}]}),
}

SAMPLE_COLUMNS = ("ILS id", "Name", "Email", "Zone", "Branch", "Type", "Age band", "Registered", "Last activity")


def count(session: Session, *, actor: Actor, rules: dict, today: date | None = None) -> int:
    """How many patrons the rules match (computed in SQL)."""
    require(actor, Perm.MANAGE_SEGMENTS)
    return session.execute(_count_statement(json.dumps(rules, sort_keys=True), today or date.today())).scalar_one()


@functools.lru_cache(maxsize=256)
def _count_statement(rules: str, today: date):
    """The count of a rule tree (as JSON) on a day, compiled once: a live count while editing, or a standard
    segment counted again, costs its SQL and not the validation and expression building around it."""
    return select(func.count()).select_from(Patron.__table__).where(compile_rules(json.loads(rules), today=today))


def sample(session: Session, *, actor: Actor, rules: dict, limit: int = 20, today: date | None = None) -> list[dict[str, Any]]:
    """Up to `limit` matching patrons; name and email masked without VIEW_PII, audited when shown."""
    require(actor, Perm.MANAGE_SEGMENTS)
    p = Patron.__table__.c
    where = compile_rules(rules, today=today or date.today())
    rows = session.execute(
        select(p.id, p.ils_id, p.first_name, p.last_name, p.email, Zone.code, Branch.code, p.patron_type, p.age_band, p.registered_on, p.last_activity_on)
        .select_from(Patron.__table__)
        .outerjoin(Zone, Zone.id == p.zone_id)
        .outerjoin(Branch, Branch.id == p.branch_id)
        .where(where)
        .order_by(p.id)
        .limit(max(1, min(int(limit), 200)))
    ).all()
    pii = actor.can(Perm.VIEW_PII)
    out = []
    for row in rows:
        name = full_name(row.first_name, row.last_name) if pii else mask_name(row.first_name, row.last_name)
        out.append(dict(zip(SAMPLE_COLUMNS, (
            row.ils_id, name, row.email if pii else mask_email(row.email), row[5], row[6], row.patron_type,
            row.age_band, row.registered_on, row.last_activity_on,
        ))))
    if pii and rows:
        audit.record(session, actor=actor, action="segment.sample", entity="patron", detail={"shown": len(rows), "patron_ids": [r.id for r in rows]})
    return out


def _check_references(session: Session, rules: dict) -> None:
    """Zone and branch codes and campaign ids that name nothing are refused, naming the value."""
    wanted = {"zone": set(), "branch": set(), "campaign": set()}
    for leaf in leaves(rules):
        if leaf["field"] in ("zone", "branch"):
            wanted[leaf["field"]].update(leaf["value"])
        elif leaf["field"] == "campaign":
            wanted["campaign"].add(leaf["value"])
    for field, model, column in (("zone", Zone, Zone.code), ("branch", Branch, Branch.code), ("campaign", Campaign, Campaign.id)):
        if wanted[field]:
            found = set(session.execute(select(column).where(column.in_(wanted[field]))).scalars())
            missing = sorted(wanted[field] - found, key=str)
            if missing:
                raise ValueError(f"rule: there is no {field} {missing[0]!r}.")


def _clean_name(session: Session, name: str, *, other_than: int | None = None) -> str:
    clean = (name or "").strip()
    if not clean:
        raise ValueError("Segment name: must not be empty.")
    if len(clean) > 120:
        raise ValueError("Segment name: at most 120 characters.")
    clash = session.execute(select(Segment.id).where(func.lower(Segment.name) == clean.lower())).scalar()
    if clash is not None and clash != other_than:
        raise ValueError(f"Segment name: a segment named {clean!r} already exists.")
    return clean


def _editable(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise LookupError(f"There is no segment {segment_id}.")
    if segment.is_preset:
        raise ValueError(f"Segment {segment.name!r} is a preset: duplicate it to change it.")
    return segment


def save(session: Session, *, actor: Actor, name: str, rules: dict, description: str | None = None) -> Segment:
    """Store a new segment; the name is unique (ignoring case)."""
    require(actor, Perm.MANAGE_SEGMENTS)
    validate(rules)
    _check_references(session, rules)
    segment = Segment(name=_clean_name(session, name), description=(description or None) and description[:500], rules=copy.deepcopy(rules), created_by_id=actor.id)
    session.add(segment)
    session.flush()
    audit.record(session, actor=actor, action="segment.save", entity="segment", entity_id=segment.id, detail={"name": segment.name})
    return segment


def update(session: Session, *, actor: Actor, segment_id: int, name: str | None = None, rules: dict | None = None, description: str | None = None) -> Segment:
    """Change a saved segment's name, rules or description (not a preset's)."""
    require(actor, Perm.MANAGE_SEGMENTS)
    segment = _editable(session, segment_id)
    if name is not None:
        segment.name = _clean_name(session, name, other_than=segment.id)
    if rules is not None:
        validate(rules)
        _check_references(session, rules)
        segment.rules = copy.deepcopy(rules)
    if description is not None:
        segment.description = description[:500] or None
    segment.updated_at = utcnow()
    session.add(segment)
    audit.record(session, actor=actor, action="segment.update", entity="segment", entity_id=segment.id, detail={"name": segment.name})
    return segment


def duplicate(session: Session, *, actor: Actor, segment_id: int, name: str | None = None) -> Segment:
    """A new, editable copy of a segment (or preset), named "Copy of …" unless `name` is given."""
    require(actor, Perm.MANAGE_SEGMENTS)
    original = session.get(Segment, segment_id)
    if original is None:
        raise LookupError(f"There is no segment {segment_id}.")
    if name is None:
        base = f"Copy of {original.name}"[:110]
        name, n = base, 1
        while session.execute(select(Segment.id).where(func.lower(Segment.name) == name.lower())).scalar() is not None:
            n += 1
            name = f"{base} ({n})"
    return save(session, actor=actor, name=name, rules=original.rules, description=original.description)


def delete(session: Session, *, actor: Actor, segment_id: int) -> None:
    """Delete a saved segment that no campaign uses (presets stay)."""
    require(actor, Perm.MANAGE_SEGMENTS)
    segment = _editable(session, segment_id)
    used = session.execute(select(func.count()).select_from(Campaign).where(Campaign.segment_id == segment.id)).scalar_one()
    if used:
        raise ValueError(f"Segment {segment.name!r} is used by {used} campaign(s) and cannot be deleted.")
    session.delete(segment)
    audit.record(session, actor=actor, action="segment.delete", entity="segment", entity_id=segment_id, detail={"name": segment.name})


def list_segments(session: Session, *, actor: Actor) -> list[Segment]:
    """Every segment, presets first, then by name."""
    require(actor, Perm.MANAGE_SEGMENTS)
    return list(session.execute(select(Segment).order_by(Segment.is_preset.desc(), Segment.name)).scalars())


def get(session: Session, *, actor: Actor, segment_id: int) -> Segment:
    require(actor, Perm.MANAGE_SEGMENTS)
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise LookupError(f"There is no segment {segment_id}.")
    return segment


def presets_missing(session: Session) -> bool:
    """Whether any lifecycle preset is missing: read first, so that opening the page writes only when one is."""
    existing = set(session.execute(select(Segment.name).where(Segment.is_preset.is_(True))).scalars())
    return not existing >= set(PRESETS)


def ensure_presets(session: Session) -> int:
    """Create the lifecycle presets that are missing (idempotent); returns how many were created."""
    existing = set(session.execute(select(Segment.name).where(Segment.is_preset.is_(True))).scalars())
    created = 0
    for name, (description, rules) in PRESETS.items():
        if name not in existing:
            session.add(Segment(name=name, description=description, rules=copy.deepcopy(rules), is_preset=True))
            created += 1
    return created


def choices(session: Session, *, actor: Actor) -> dict[str, list]:
    """What the builder offers: zone and branch codes, patron types, age bands, campaigns (id, name), languages (code, name)."""
    require(actor, Perm.MANAGE_SEGMENTS)
    p = Patron.__table__.c
    derived = {band for _low, _high, band in AGE_BANDS}
    # Bands derived from birth years are offered only where some patron has no imported band.
    derived_needed = session.execute(select(p.id).where(p.birth_year.is_not(None), func.coalesce(p.age_band, "") == "").limit(1)).first() is not None
    distinct = lambda column: [v for v in session.execute(select(column).where(column.is_not(None)).distinct().order_by(column)).scalars() if v]  # noqa: E731
    return {
        "zone": list(session.execute(select(Zone.code, Zone.name).order_by(Zone.code)).all()),
        "branch": list(session.execute(select(Branch.code, Branch.name).order_by(Branch.code)).all()),
        "patron_type": distinct(p.patron_type),
        "age_band": sorted(set(distinct(p.age_band)) | (derived if derived_needed else set())),
        "campaign": list(session.execute(select(Campaign.id, Campaign.name).where(Campaign.launched_at.is_not(None)).order_by(Campaign.id.desc())).all()),
        "language": [(code, codes.name(code)) for code in sorted(set(distinct(p.language)) | set(catalogues.supported()))],
        "persona": list(session.execute(select(Persona.name).order_by(Persona.name)).scalars()),
    }
