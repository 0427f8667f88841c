"""The patron directory: search and profiles, with personal data masked for roles without VIEW_PII.

A masked role searches by ILS id, zone and branch only: letting it search by name, email or phone
would let it confirm who is a patron (type an address, see one row) without ever seeing the data.
Every unmasked view of personal data (a search result list or a profile) is written to the audit log.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from crmcore import validation
from crmcore.admin.permissions import Actor, Perm, PermissionDenied, require
from crmcore.db import Database
from crmcore.languages import codes
from crmcore.library import consent
from crmcore.library.activity import KINDS
from crmcore.models import ActivityMonthly, Branch, Patron, Zone
from crmcore.privacy import audit

SEARCH_BY = {"ils_id": "ILS id", "name": "Name", "email": "Email", "phone": "Phone"}
PII_SEARCH = ("name", "email", "phone")
MAX_LIMIT = 200
DOT = "•••"

_p = Patron.__table__.c


def mask_name(first: str | None, last: str | None) -> str:
    """'Jane Garcia' → 'J••• G•••': enough to tell rows apart, not to identify anyone."""
    return " ".join(f"{part.strip()[0]}{DOT}" for part in (first, last) if part and part.strip()) or DOT


def mask_email(email: str | None) -> str | None:
    """'jane.garcia@example.org' → 'j•••@example.org'."""
    if not email:
        return None
    local, _, domain = email.partition("@")
    return f"{local[:1]}{DOT}@{domain}" if domain else f"{local[:1]}{DOT}"


def mask_phone(phone: str | None) -> str | None:
    """'+13125550142' → '•••• 0142'."""
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    return f"•••• {digits[-4:]}"


def full_name(first: str | None, last: str | None) -> str:
    return " ".join(part for part in (first, last) if part) or "(no name)"


def choices(session: Session, *, actor: Actor) -> dict[str, dict[int, str]]:
    """Zones and branches for the search filters."""
    require(actor, Perm.VIEW_PATRONS)
    zones = {z.id: f"{z.code} {z.name}" for z in session.execute(select(Zone).order_by(Zone.code)).scalars()}
    branches = {b.id: b.name for b in session.execute(select(Branch).order_by(Branch.name)).scalars()}
    return {"zones": zones, "branches": branches}


def _text_condition(by: str, query: str):
    """The WHERE clause for a text search; each one is answered from an index."""
    if by == "ils_id":
        return _p.ils_id == query
    if by == "email":
        return _p.email.in_({query, query.lower()})
    if by == "phone":
        return _p.phone == validation.phone(query, field="phone")
    words = query.split()
    # Names are stored as the ILS spells them; forgive the usual capitalisations of what was typed.
    def spellings(word: str) -> set[str]:
        return {word, word.lower(), word.upper(), word.capitalize(), word.title()}

    if len(words) == 1:
        return _p.last_name.in_(spellings(words[0]))
    return _p.last_name.in_(spellings(" ".join(words[1:]))) & _p.first_name.in_(spellings(words[0]))


def search(session: Session, *, actor: Actor, **params: Any) -> dict[str, Any]:
    """One page of matching patrons: {"rows": [...], "more": bool}. Masked without VIEW_PII; shown names audited.
    Parameters: query, by (SEARCH_BY), zone_id, branch_id, limit (50), offset."""
    result = _find(session, actor=actor, **params)
    if actor.can(Perm.VIEW_PII) and result["rows"]:
        _audit_search(session, actor=actor, by=params.get("by", "ils_id"), rows=result["rows"])
    return result


def search_shown(db: Database, *, actor: Actor, **params: Any) -> dict[str, Any]:
    """`search` for a page: the patrons are read in a read transaction and only the audit entry is written, in a
    write transaction of its own committed before anything is shown. On SQLite a write transaction holds the one
    write lock from its start, so a slow search inside one kept every other writer of every replica waiting (B13)."""
    with db.read() as session:
        result = _find(session, actor=actor, **params)
    if actor.can(Perm.VIEW_PII) and result["rows"]:
        with db.write() as session:
            _audit_search(session, actor=actor, by=params.get("by", "ils_id"), rows=result["rows"])
    return result


def _audit_search(session: Session, *, actor: Actor, by: str, rows: list[dict]) -> None:
    audit.record(session, actor=actor, action="patron.search", entity="patron", detail={"by": by, "shown": len(rows), "patron_ids": [r["id"] for r in rows]})


def _find(
    session: Session,
    *,
    actor: Actor,
    query: str = "",
    by: str = "ils_id",
    zone_id: int | None = None,
    branch_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    require(actor, Perm.VIEW_PATRONS)
    if by not in SEARCH_BY:
        raise ValueError(f"Search by: {by!r} is not one of {', '.join(SEARCH_BY.values())}.")
    pii = actor.can(Perm.VIEW_PII)
    query = (query or "").strip()
    if by in PII_SEARCH and query and not pii:
        raise PermissionDenied(f"The {actor.role} role may not search patrons by {SEARCH_BY[by].lower()}: search by ILS id, zone or branch.")
    if not query and zone_id is None and branch_id is None:
        raise ValueError(f"Type a {SEARCH_BY[by].lower()}, or choose a zone or a branch.")
    limit = max(1, min(int(limit), MAX_LIMIT))
    stmt = (
        select(_p.id, _p.ils_id, _p.first_name, _p.last_name, _p.email, _p.phone, _p.patron_type, _p.last_activity_on, Zone.code, Branch.name)
        .select_from(Patron.__table__.outerjoin(Zone, Zone.id == _p.zone_id).outerjoin(Branch, Branch.id == _p.branch_id))
        .where(_p.erased_at.is_(None))
    )
    if query:
        stmt = stmt.where(_text_condition(by, query))
    if zone_id is not None:
        stmt = stmt.where(_p.zone_id == zone_id)
    if branch_id is not None:
        stmt = stmt.where(_p.branch_id == branch_id)
    # A masked list is in ILS id order: sorting by a name nobody may see would still reveal it.
    order = (_p.last_name, _p.first_name, _p.id) if pii else (_p.ils_id,)
    found = session.execute(stmt.order_by(*order).limit(limit + 1).offset(max(0, int(offset)))).all()
    rows = [
        {
            "id": r.id,
            "ILS id": r.ils_id,
            "Name": full_name(r.first_name, r.last_name) if pii else mask_name(r.first_name, r.last_name),
            "Email": r.email if pii else mask_email(r.email),
            "Phone": r.phone if pii else mask_phone(r.phone),
            "Zone": r.code,
            "Branch": r.name,
            "Type": r.patron_type,
            "Last activity": r.last_activity_on,
        }
        for r in found[:limit]
    ]
    return {"rows": rows, "more": len(found) > limit}


def profile(session: Session, *, actor: Actor, patron_id: int, months: int = 24) -> dict[str, Any]:
    """One patron: contact details (masked without VIEW_PII), consent, activity by month and kind, interests."""
    require(actor, Perm.VIEW_PATRONS)
    patron = session.get(Patron, patron_id)
    if patron is None:
        raise LookupError(f"No patron with id {patron_id}.")
    pii = actor.can(Perm.VIEW_PII)
    zone = session.get(Zone, patron.zone_id) if patron.zone_id else None
    branch = session.get(Branch, patron.branch_id) if patron.branch_id else None
    details = {
        "ILS id": patron.ils_id,
        "Name": full_name(patron.first_name, patron.last_name) if pii else mask_name(patron.first_name, patron.last_name),
        "Email": patron.email if pii else mask_email(patron.email),
        "Phone": patron.phone if pii else mask_phone(patron.phone),
        "Type": patron.patron_type,
        "Age band": patron.age_band,
        "Zone": f"{zone.code} {zone.name}" if zone else None,
        "Home branch": branch.name if branch else None,
        "Registered": patron.registered_on,
        "Card expires": patron.expires_on,
        "First activity": patron.first_activity_on,
        "Last activity": patron.last_activity_on,
        "Last activity the ILS reports": patron.ils_last_activity_on,
        "Lifetime checkouts (ILS)": patron.lifetime_checkouts,
        "Lifetime renewals (ILS)": patron.lifetime_renewals,
        "Resident of the service area": {True: "yes", False: "no"}.get(patron.resident),
        "Has an email address": "yes" if patron.email or patron.has_email else ("no" if patron.has_email is False else None),
        "Reading history kept": "yes (opted in)" if patron.history_opt_in else "no",
        "Preferred channel (ILS notices)": patron.preferred_channel,
        "Preferred language": codes.name(patron.language) or None,
    }
    current = consent.current(session, patron_id)
    history = [
        {"When": r.recorded_at, "Channel": r.channel, "Topic": r.topic, "Consent": "granted" if r.granted else "withdrawn", "Decided by": DECIDED_BY.get(r.source_class, r.source_class),
         "Source": r.source, "Wording": r.wording_version}
        for r in consent.history(session, patron_id)
    ]
    if pii:
        audit.record(session, actor=actor, action="patron.view", entity="patron", entity_id=patron_id)
    return {
        "id": patron.id,
        "masked": not pii,
        "erased": patron.erased_at is not None,
        "details": details,
        "interests": [i.strip() for i in (patron.interests or "").split(",") if i.strip()],
        "consent": {channel: {topic: current.get((channel, topic)) for topic in consent.TOPICS} for channel in consent.CHANNELS},
        "consent_history": history,
        "activity": _activity_by_month(session, patron_id=patron_id, months=months),
    }


DECIDED_BY = {consent.PATRON: "the patron", consent.IMPORT: "an import", consent.STAFF: "staff"}


def record_patron_request(
    session: Session, *, actor: Actor, patron_id: int, channel: str, topic: str, granted: bool, way: str
) -> None:
    """Write down a patron's own consent choice that reached staff (at the desk, by phone, email or letter):
    it counts as the patron's decision, stands against later imports, and names who recorded it and how."""
    require(actor, Perm.VIEW_PII)
    if way not in consent.REQUEST_WAYS:
        raise ValueError(f"How the patron asked: one of {', '.join(consent.REQUEST_WAYS)}.")
    patron = session.get(Patron, patron_id)
    if patron is None or patron.erased_at is not None:
        raise LookupError(f"No patron with id {patron_id} (or their data was erased).")
    consent.record(session, patron_id=patron_id, channel=channel, topic=topic, granted=granted, by=consent.PATRON, recorded_by_id=actor.id,
                   source=f"patron's request {way}, recorded by {actor.username}")
    audit.record(session, actor=actor, action="consent.patron_request", entity="patron", entity_id=patron_id,
                 detail={"channel": channel, "topic": topic, "granted": granted, "way": way})


def _activity_by_month(session: Session, *, patron_id: int, months: int = 24, today: date | None = None) -> list[dict[str, Any]]:
    """The patron's monthly activity from the rollups, newest month first: {"Month", kind: count, …}."""
    today = today or date.today()
    index = today.year * 12 + today.month - 1 - (months - 1)
    since = date(index // 12, index % 12 + 1, 1)
    m = ActivityMonthly.__table__.c
    rows = session.execute(
        select(m.month, m.kind, func.sum(m.count))
        .where(m.patron_id == patron_id, m.month >= since)
        .group_by(m.month, m.kind)
        .order_by(m.month.desc())
    ).all()
    by_month: dict[date, dict[str, Any]] = {}
    for month, kind, count in rows:
        by_month.setdefault(month, {"Month": month.strftime("%Y-%m"), **{k: 0 for k in KINDS}})[kind] = int(count)
    return list(by_month.values())
