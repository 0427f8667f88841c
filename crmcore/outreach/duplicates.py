"""Possible duplicate organizations and contacts (same email, similar name, or same phone with a like name), and merging them.

Suggestions come strongest first; a pair a staff member marks "not a duplicate" (`not_duplicate` table) is
never suggested again.

A merge keeps every interaction, tag, contact and task of the record merged away: they move to the one
kept, blank fields of the kept record are filled from the other, and the other is archived with
`merged_into_id` pointing at the survivor (so a later import of its name or email finds the survivor).
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from itertools import combinations
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, select

from crmcore import validation
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import (
    Contact,
    ContactTag,
    InteractionContact,
    InteractionOrganization,
    NotDuplicate,
    Organization,
    OrganizationTag,
    Task,
    utcnow,
)
from crmcore.outreach.cleaning import full_name
from crmcore.privacy import audit

SIMILARITY = 0.88  # names at least this alike (difflib ratio of their keys) are flagged on their own
WITH_PHONE = 0.8  # a shared phone (a switchboard serves many) counts only with names at least this alike
KINDS = ("organization", "contact")
_NOISE = {"the", "of", "and", "inc", "llc", "ltd", "co", "corp", "a"}


def name_key(name: str | None) -> str:
    """A name reduced for comparison: lower case, no punctuation, no filler words."""
    words = re.sub(r"[^\w\s]", " ", (name or "").lower()).split()
    return " ".join(w for w in words if w not in _NOISE)


def _likeness(a: str, b: str) -> float:
    if not a or not b:
        return 0.0
    return 1.0 if a == b else SequenceMatcher(None, a, b).ratio()


def _judge(a: dict, b: dict) -> tuple[float, str] | None:
    """How strongly two records look like one (higher is stronger) and why, or None when they do not.

    A phone alone never suffices: organizations share switchboards and people share office lines.
    """
    same_email = bool(a["email"]) and a["email"].lower() == (b["email"] or "").lower()
    same_phone = bool(a["phone"]) and a["phone"] == b["phone"]
    alike = _likeness(a["key"], b["key"])
    if not (same_email or alike >= SIMILARITY or (same_phone and alike >= WITH_PHONE)):
        return None
    reasons = [r for r, yes in (("same email", same_email), ("same phone", same_phone)) if yes]
    if alike >= WITH_PHONE:
        reasons.append("same name" if alike == 1.0 else "similar name")
    return 2 * same_email + same_phone + alike, ", ".join(reasons)


def _dismissed(session: Session, kind: str) -> set[tuple[int, int]]:
    rows = session.exec(select(NotDuplicate.first_id, NotDuplicate.second_id).where(NotDuplicate.kind == kind))
    return {(a, b) for a, b in rows}


def _pairs(records: list[dict], dismissed: set[tuple[int, int]], limit: int | None) -> list[dict[str, Any]]:
    """Pairs of records that look alike, strongest first, found by grouping on email, phone and sorted name keys."""
    candidates: set[tuple[int, int]] = set()
    by_id = {r["id"]: r for r in records}
    for field in ("email", "phone", "key"):
        groups: dict[str, list[int]] = {}
        for r in records:
            if r[field]:
                groups.setdefault(r[field].lower(), []).append(r["id"])
        for ids in groups.values():
            candidates.update(combinations(sorted(ids), 2))
    # Similar (not equal) names sort near each other: compare each with its next few neighbours.
    ordered = sorted((r for r in records if r["key"]), key=lambda r: r["key"])
    for i, r in enumerate(ordered):
        for other in ordered[i + 1 : i + 4]:
            candidates.add(tuple(sorted((r["id"], other["id"]))))
    out = []
    for a_id, b_id in candidates - dismissed:
        judged = _judge(by_id[a_id], by_id[b_id])
        if judged:
            strength, reason = judged
            out.append({
                "keep_id": a_id, "keep_name": by_id[a_id]["name"], "other_id": b_id, "other_name": by_id[b_id]["name"],
                "reason": reason, "strength": round(strength, 3),
            })
    out.sort(key=lambda p: (-p["strength"], p["keep_id"], p["other_id"]))
    return out if limit is None else out[:limit]


def _org_records(session: Session, *where) -> list[dict]:
    rows = session.exec(
        select(Organization.id, Organization.name, Organization.email, Organization.phone).where(
            Organization.merged_into_id.is_(None), Organization.archived.is_(False), *where
        )
    )
    return [{"id": i, "name": n, "email": e, "phone": p, "key": name_key(n)} for i, n, e, p in rows]


def _contact_records(session: Session, *where) -> list[dict]:
    rows = session.exec(
        select(Contact.id, Contact.first_name, Contact.last_name, Contact.email, Contact.phone).where(Contact.merged_into_id.is_(None), Contact.archived.is_(False), *where)
    )
    return [{"id": i, "name": full_name(f, l), "email": e, "phone": p, "key": name_key(full_name(f, l))} for i, f, l, e, p in rows]


_RECORDS = {"organization": _org_records, "contact": _contact_records}


def organization_duplicates(session: Session, *, actor: Actor, limit: int | None = None) -> list[dict[str, Any]]:
    """Pairs of active organizations that may be the same one, strongest first, with the reason."""
    require(actor, Perm.VIEW_OUTREACH)
    return _pairs(_org_records(session), _dismissed(session, "organization"), limit)


def contact_duplicates(session: Session, *, actor: Actor, limit: int | None = None) -> list[dict[str, Any]]:
    """Pairs of active contacts that may be the same person, strongest first, with the reason."""
    require(actor, Perm.VIEW_OUTREACH)
    return _pairs(_contact_records(session), _dismissed(session, "contact"), limit)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"Unknown kind of record {kind!r}: choose organization or contact.")


def suggestions(session: Session, *, actor: Actor, kind: str, page: int = 1, per_page: int = 20) -> dict[str, Any]:
    """One page of possible duplicates of `kind` (strongest first): the pairs, the total and the number of pages."""
    require(actor, Perm.VIEW_OUTREACH)
    _check_kind(kind)
    pairs = _pairs(_RECORDS[kind](session), _dismissed(session, kind), None)
    pages = max(1, -(-len(pairs) // per_page))
    page = min(max(1, page), pages)
    return {"total": len(pairs), "page": page, "pages": pages, "pairs": pairs[(page - 1) * per_page : page * per_page]}


def not_a_duplicate(session: Session, *, actor: Actor, kind: str, first_id: int, second_id: int) -> None:
    """Remember that two records of `kind` are different: the pair is never suggested again."""
    require(actor, Perm.EDIT_OUTREACH)
    _check_kind(kind)
    low, high = sorted((first_id, second_id))
    if low == high:
        raise ValueError(f"A {kind} is always the same as itself: pick two different ones.")
    model = Organization if kind == "organization" else Contact
    if session.get(model, low) is None or session.get(model, high) is None:
        raise LookupError(f"Both {kind}s must exist to tell them apart.")
    if session.get(NotDuplicate, (kind, low, high)) is None:
        session.add(NotDuplicate(kind=kind, first_id=low, second_id=high, decided_by_id=actor.id))
        session.flush()
        audit.record(session, actor=actor, action=f"{kind}.not_duplicate", entity=kind, entity_id=low, detail={"other": high})


def _longest_word(name: str) -> str:
    words = sorted(name_key(name).split(), key=len, reverse=True)
    return words[0] if words else ""


def _matches(session: Session, records_of, model, *, name: str, email: str | None, phone: str | None, exclude_id: int | None) -> list[dict]:
    email = validation.email(email) if email else None
    phone = validation.phone(phone) if phone else None
    conditions = []
    if email:
        conditions.append(func.lower(model.email) == email.lower())
    if phone:
        conditions.append(model.phone == phone)
    word = _longest_word(name)
    if word:
        name_column = Organization.name if model is Organization else func.coalesce(Contact.first_name, "") + " " + Contact.last_name
        conditions.append(name_column.icontains(word, autoescape=True))
    if not conditions:
        return []
    probe = {"id": None, "name": name, "email": email, "phone": phone, "key": name_key(name)}
    out = []
    for record in records_of(session, or_(*conditions)):
        judged = _judge(probe, record) if record["id"] != exclude_id else None
        if judged:
            out.append({"id": record["id"], "name": record["name"], "reason": judged[1], "strength": judged[0]})
    return [{"id": r["id"], "name": r["name"], "reason": r["reason"]} for r in sorted(out, key=lambda r: -r["strength"])]


def similar_organizations(session: Session, *, actor: Actor, name: str, email: str | None = None, phone: str | None = None, exclude_id: int | None = None) -> list[dict]:
    """Active organizations that look like this one (to flag a possible duplicate on create)."""
    require(actor, Perm.VIEW_OUTREACH)
    return _matches(session, _org_records, Organization, name=name, email=email, phone=phone, exclude_id=exclude_id)


def similar_contacts(
    session: Session, *, actor: Actor, first_name: str | None, last_name: str, email: str | None = None, phone: str | None = None, exclude_id: int | None = None
) -> list[dict]:
    """Active contacts that look like this person (to flag a possible duplicate on create)."""
    require(actor, Perm.VIEW_OUTREACH)
    return _matches(session, _contact_records, Contact, name=full_name(first_name, last_name), email=email, phone=phone, exclude_id=exclude_id)


def _check_pair(keep, other, what: str) -> None:
    if keep is None or other is None:
        raise LookupError(f"Both {what}s must exist to merge them.")
    if keep.id == other.id:
        raise ValueError(f"A {what} cannot be merged into itself.")
    if keep.merged_into_id is not None or other.merged_into_id is not None:
        raise ValueError(f"That {what} was already merged into another one.")


def _fill_blanks(keep, other, fields: tuple[str, ...]) -> list[str]:
    filled = []
    for field in fields:
        if getattr(keep, field) in (None, "") and getattr(other, field) not in (None, ""):
            setattr(keep, field, getattr(other, field))
            filled.append(field)
    if other.notes and other.notes != keep.notes:
        keep.notes = f"{keep.notes}\n\n{other.notes}" if keep.notes else other.notes
    return filled


def _move_links(session: Session, link, owner_col: str, other_col: str, keep_id: int, other_id: int) -> int:
    """Re-point `link` rows from other_id to keep_id, dropping the ones keep already has."""
    owner, partner = getattr(link, owner_col), getattr(link, other_col)
    already = select(partner).where(owner == keep_id)
    session.exec(delete(link).where(owner == other_id, partner.in_(already)))
    result = session.exec(update(link).where(owner == other_id).values({owner_col: keep_id}))
    return result.rowcount or 0


def merge_organizations(session: Session, *, actor: Actor, keep_id: int, merge_id: int) -> Organization:
    """Merge organization `merge_id` into `keep_id`, keeping all its interactions, contacts, tags and tasks."""
    require(actor, Perm.EDIT_OUTREACH)
    keep, other = session.get(Organization, keep_id), session.get(Organization, merge_id)
    _check_pair(keep, other, "organization")
    moved = _move_links(session, InteractionOrganization, "organization_id", "interaction_id", keep.id, other.id)
    _move_links(session, OrganizationTag, "organization_id", "tag_id", keep.id, other.id)
    session.exec(update(Contact).where(Contact.organization_id == other.id).values(organization_id=keep.id))
    session.exec(update(Task).where(Task.organization_id == other.id).values(organization_id=keep.id))
    session.exec(update(Organization).where(Organization.merged_into_id == other.id).values(merged_into_id=keep.id))
    filled = _fill_blanks(keep, other, ("sector", "email", "phone", "website", "address", "zone_id"))
    if other.is_partner and (not keep.is_partner or (other.partner_since and keep.partner_since and other.partner_since < keep.partner_since)):
        keep.is_partner, keep.partner_since = True, other.partner_since
    keep.updated_at = other.updated_at = utcnow()
    other.archived, other.merged_into_id, other.is_partner = True, keep.id, False
    session.add_all([keep, other])
    session.flush()
    audit.record(
        session, actor=actor, action="organization.merge", entity="organization", entity_id=keep.id, detail={"merged": other.id, "interactions_moved": moved, "filled": filled}
    )
    return keep


def merge_contacts(session: Session, *, actor: Actor, keep_id: int, merge_id: int) -> Contact:
    """Merge contact `merge_id` into `keep_id`, keeping all their interactions, tags and tasks."""
    require(actor, Perm.EDIT_OUTREACH)
    keep, other = session.get(Contact, keep_id), session.get(Contact, merge_id)
    _check_pair(keep, other, "contact")
    moved = _move_links(session, InteractionContact, "contact_id", "interaction_id", keep.id, other.id)
    _move_links(session, ContactTag, "contact_id", "tag_id", keep.id, other.id)
    session.exec(update(Task).where(Task.contact_id == other.id).values(contact_id=keep.id))
    session.exec(update(Contact).where(Contact.merged_into_id == other.id).values(merged_into_id=keep.id))
    filled = _fill_blanks(keep, other, ("first_name", "email", "phone", "job_title", "organization_id", "patron_id"))
    keep.updated_at = other.updated_at = utcnow()
    other.archived, other.merged_into_id = True, keep.id
    session.add_all([keep, other])
    session.flush()
    audit.record(session, actor=actor, action="contact.merge", entity="contact", entity_id=keep.id, detail={"merged": other.id, "interactions_moved": moved, "filled": filled})
    return keep
