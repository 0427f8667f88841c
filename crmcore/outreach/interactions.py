"""Interactions: logging a community contact, editing it, timelines, and search with filters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pandas as pd
from sqlalchemy import delete, or_
from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import (
    Contact,
    Interaction,
    InteractionContact,
    InteractionOrganization,
    InteractionTag,
    Organization,
    StaffUser,
    Tag,
    utcnow,
)
from crmcore.outreach import cleaning, contacts, organizations, tasks
from crmcore.outreach.cleaning import UNSET
from crmcore.outreach.kinds import KINDS
from crmcore.outreach.tags import tag_ids, tag_name
from crmcore.privacy import audit


def _kind(value: Any) -> str:
    kind = str(value or "").strip().lower().replace(" ", "_")
    if kind not in KINDS:
        raise ValueError(f"type: {value!r} is not an interaction type; use one of {', '.join(KINDS)}.")
    return kind


def _count(value: Any, *, field: str) -> int:
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: {value!r} is not a whole number.") from None
    if number < 0 or number != float(value or 0):
        raise ValueError(f"{field}: must be a whole number, 0 or more (got {value!r}).")
    return number


def as_utc(value: datetime | date | None) -> datetime:
    """A time as stored (aware UTC); a naive time is the server's local time, a date its start."""
    if value is None:
        return utcnow()
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    return value.astimezone(timezone.utc)


def _split_name(value: str) -> dict[str, str | None]:
    parts = str(value).strip().rsplit(" ", 1)
    return {"first_name": parts[0], "last_name": parts[1]} if len(parts) == 2 else {"first_name": None, "last_name": parts[0]}


def log_interaction(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    occurred_at: datetime | None = None,
    organization_ids: Sequence[int] = (),
    contact_ids: Sequence[int] = (),
    new_organizations: Sequence[str] = (),
    new_contacts: Sequence[str | dict[str, Any]] = (),
    notes: str | None = None,
    outcome: str | None = None,
    tags: Sequence[str] = (),
    follow_up_on: date | None = None,
    follow_up_assignee_id: int | None = None,
    cards_issued: int = 0,
    signups: int = 0,
) -> Interaction:
    """Log one interaction; organizations and people may be picked by id or created inline by name.

    Only the type and at least one organization or person are required. A new contact given as a
    string is "First Last"; as a dict it holds `create_contact` fields. Audited.
    """
    require(actor, Perm.EDIT_OUTREACH)
    kind = _kind(kind)
    new_organizations = [n for n in new_organizations if str(n).strip()]
    new_contacts = [c for c in new_contacts if not isinstance(c, str) or c.strip()]
    if not (organization_ids or contact_ids or new_organizations or new_contacts):
        raise ValueError("organization / person: pick or add at least one organization or person.")
    if follow_up_assignee_id is not None or follow_up_on is not None:
        follow_up_assignee_id = tasks.check_assignee(session, follow_up_assignee_id or actor.id)
    interaction = Interaction(
        kind=kind,
        occurred_at=as_utc(occurred_at),
        staff_id=actor.id,
        notes=cleaning.text(notes, field="notes"),
        outcome=cleaning.text(outcome, field="outcome", max_length=500),
        follow_up_on=follow_up_on,
        follow_up_assignee_id=follow_up_assignee_id,
        cards_issued=_count(cards_issued, field="cards_issued"),
        signups=_count(signups, field="signups"),
    )
    org_ids = [_existing(session, Organization, i, "organization") for i in dict.fromkeys(organization_ids)]
    org_ids += [organizations.create_organization(session, actor=actor, name=n).id for n in new_organizations]
    person_ids = [_existing(session, Contact, i, "person") for i in dict.fromkeys(contact_ids)]
    for new in new_contacts:
        fields = _split_name(new) if isinstance(new, str) else dict(new)
        fields.setdefault("organization_id", org_ids[0] if org_ids else None)
        person_ids.append(contacts.create_contact(session, actor=actor, **fields).id)
    session.add(interaction)
    session.flush()
    _link(session, interaction, org_ids, person_ids, tags)
    audit.record(session, actor=actor, action="interaction.create", entity="interaction", entity_id=interaction.id, detail={"kind": kind})
    return interaction


def _existing(session: Session, model, record_id: int, what: str) -> int:
    record = session.get(model, record_id)
    if record is None:
        raise ValueError(f"{what}: no {what} with id {record_id}.")
    return record.merged_into_id or record.id


def _link(session: Session, interaction: Interaction, org_ids, person_ids, tags) -> None:
    iid = interaction.id
    if org_ids is not None:
        session.exec(delete(InteractionOrganization).where(InteractionOrganization.interaction_id == iid))
        session.add_all([InteractionOrganization(interaction_id=iid, organization_id=o) for o in dict.fromkeys(org_ids)])
        if interaction.kind == "partnership":  # a partnership logged with an organization makes it a partner
            for org in session.exec(select(Organization).where(Organization.id.in_(org_ids), Organization.is_partner.is_(False))):
                org.is_partner, org.partner_since = True, interaction.occurred_at.date()
                session.add(org)
    if person_ids is not None:
        session.exec(delete(InteractionContact).where(InteractionContact.interaction_id == iid))
        session.add_all([InteractionContact(interaction_id=iid, contact_id=c) for c in dict.fromkeys(person_ids)])
    if tags is not None:
        session.exec(delete(InteractionTag).where(InteractionTag.interaction_id == iid))
        session.add_all([InteractionTag(interaction_id=iid, tag_id=t) for t in tag_ids(session, tags)])
    session.flush()


def update_interaction(
    session: Session,
    *,
    actor: Actor,
    interaction_id: int,
    kind: Any = UNSET,
    occurred_at: Any = UNSET,
    organization_ids: Any = UNSET,
    contact_ids: Any = UNSET,
    notes: Any = UNSET,
    outcome: Any = UNSET,
    tags: Any = UNSET,
    follow_up_on: Any = UNSET,
    cards_issued: Any = UNSET,
    signups: Any = UNSET,
) -> Interaction:
    """Change the given fields of an interaction; audited with the names of the changed fields."""
    require(actor, Perm.EDIT_OUTREACH)
    interaction = session.get(Interaction, interaction_id)
    if interaction is None:
        raise LookupError(f"No interaction with id {interaction_id}.")
    cleaners = {
        "kind": _kind,
        "occurred_at": as_utc,
        "notes": lambda v: cleaning.text(v, field="notes"),
        "outcome": lambda v: cleaning.text(v, field="outcome", max_length=500),
        "follow_up_on": lambda v: v,
        "cards_issued": lambda v: _count(v, field="cards_issued"),
        "signups": lambda v: _count(v, field="signups"),
    }
    given = {"kind": kind, "occurred_at": occurred_at, "notes": notes, "outcome": outcome, "follow_up_on": follow_up_on, "cards_issued": cards_issued, "signups": signups}
    changed = []
    for field, value in given.items():
        if value is not UNSET:
            clean = cleaners[field](value)
            if getattr(interaction, field) != clean:
                setattr(interaction, field, clean)
                changed.append(field)
    if "follow_up_on" in changed and interaction.follow_up_on is not None:
        interaction.follow_up_done_at = None
        interaction.follow_up_assignee_id = interaction.follow_up_assignee_id or actor.id
    links = {"organizations": organization_ids, "people": contact_ids, "tags": tags}
    changed += [name for name, value in links.items() if value is not UNSET]
    orgs = None if organization_ids is UNSET else [_existing(session, Organization, i, "organization") for i in organization_ids]
    people = None if contact_ids is UNSET else [_existing(session, Contact, i, "person") for i in contact_ids]
    interaction.updated_at = utcnow()
    session.add(interaction)
    _link(session, interaction, orgs, people, None if tags is UNSET else tags)
    if orgs is not None or people is not None:
        linked = session.exec(select(InteractionOrganization.interaction_id).where(InteractionOrganization.interaction_id == interaction.id)).first()
        linked = linked or session.exec(select(InteractionContact.interaction_id).where(InteractionContact.interaction_id == interaction.id)).first()
        if linked is None:
            raise ValueError("organization / person: an interaction needs at least one organization or person.")
    if changed:
        audit.record(session, actor=actor, action="interaction.update", entity="interaction", entity_id=interaction.id, detail={"fields": changed})
    return interaction


def _rows(session: Session, interactions: list[Interaction]) -> list[dict[str, Any]]:
    """Interactions as plain rows with their organizations, people, tags and staff names joined in."""
    ids = [i.id for i in interactions]
    orgs: dict[int, list[str]] = {}
    people: dict[int, list[str]] = {}
    tags: dict[int, list[str]] = {}
    staff: dict[int, str] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        q = select(InteractionOrganization.interaction_id, Organization.name).join(Organization, Organization.id == InteractionOrganization.organization_id)
        for iid, name in session.exec(q.where(InteractionOrganization.interaction_id.in_(chunk))):
            orgs.setdefault(iid, []).append(name)
        q = select(InteractionContact.interaction_id, Contact.first_name, Contact.last_name).join(Contact, Contact.id == InteractionContact.contact_id)
        for iid, first, last in session.exec(q.where(InteractionContact.interaction_id.in_(chunk))):
            people.setdefault(iid, []).append(cleaning.full_name(first, last))
        q = select(InteractionTag.interaction_id, Tag.name).join(Tag, Tag.id == InteractionTag.tag_id)
        for iid, name in session.exec(q.where(InteractionTag.interaction_id.in_(chunk))):
            tags.setdefault(iid, []).append(name)
    staff_ids = {i.staff_id for i in interactions if i.staff_id}
    if staff_ids:
        for uid, uname, display in session.exec(select(StaffUser.id, StaffUser.username, StaffUser.display_name).where(StaffUser.id.in_(staff_ids))):
            staff[uid] = display or uname
    return [
        {
            "id": i.id,
            "when": i.occurred_at,
            "type": KINDS.get(i.kind, i.kind),
            "logged_by": staff.get(i.staff_id, ""),
            "organizations": ", ".join(sorted(orgs.get(i.id, []))),
            "people": ", ".join(sorted(people.get(i.id, []))),
            "tags": ", ".join(sorted(tags.get(i.id, []))),
            "notes": i.notes or "",
            "outcome": i.outcome or "",
            "follow_up_on": i.follow_up_on,
            "follow_up_done": i.follow_up_done_at is not None,
            "cards_issued": i.cards_issued,
            "signups": i.signups,
        }
        for i in interactions
    ]


def timeline(session: Session, *, actor: Actor, organization_id: int | None = None, contact_id: int | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Every interaction of an organization (its own and its people's) or of a person, newest first."""
    require(actor, Perm.VIEW_OUTREACH)
    if (organization_id is None) == (contact_id is None):
        raise ValueError("timeline: give an organization or a person.")
    if organization_id is not None:
        people = select(Contact.id).where(Contact.organization_id == organization_id)
        ids = select(InteractionOrganization.interaction_id).where(InteractionOrganization.organization_id == organization_id).union(
            select(InteractionContact.interaction_id).where(InteractionContact.contact_id.in_(people))
        )
    else:
        ids = select(InteractionContact.interaction_id).where(InteractionContact.contact_id == contact_id)
    query = select(Interaction).where(Interaction.id.in_(ids)).order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
    return _rows(session, list(session.exec(query)))


def search_interactions(
    session: Session,
    *,
    actor: Actor,
    date_from: date | None = None,
    date_to: date | None = None,
    kinds: Sequence[str] = (),
    tags: Sequence[str] = (),
    staff_ids: Sequence[int] = (),
    organization_ids: Sequence[int] = (),
    text: str | None = None,
    limit: int = 5000,
) -> list[dict[str, Any]]:
    """Interactions matching every given filter (any of the values within one filter), newest first."""
    require(actor, Perm.VIEW_OUTREACH)
    query = select(Interaction)
    if date_from is not None:
        query = query.where(Interaction.occurred_at >= as_utc(date_from))
    if date_to is not None:
        query = query.where(Interaction.occurred_at < as_utc(date_to + timedelta(days=1)))
    if kinds:
        query = query.where(Interaction.kind.in_([_kind(k) for k in kinds]))
    if staff_ids:
        query = query.where(Interaction.staff_id.in_(list(staff_ids)))
    if tags:
        names = [n for n in map(tag_name, tags) if n]
        query = query.where(Interaction.id.in_(select(InteractionTag.interaction_id).join(Tag, Tag.id == InteractionTag.tag_id).where(Tag.name.in_(names))))
    if organization_ids:
        linked = select(InteractionOrganization.interaction_id).where(InteractionOrganization.organization_id.in_(list(organization_ids)))
        query = query.where(Interaction.id.in_(linked))
    if text and text.strip():
        term = text.strip()
        query = query.where(or_(Interaction.notes.icontains(term, autoescape=True), Interaction.outcome.icontains(term, autoescape=True)))
    query = query.order_by(Interaction.occurred_at.desc(), Interaction.id.desc()).limit(limit)
    return _rows(session, list(session.exec(query)))


def export_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Search results as a table for CSV/XLSX export (times as text in UTC, so spreadsheets agree)."""
    frame = pd.DataFrame(rows, columns=["id", "when", "type", "logged_by", "organizations", "people", "tags", "notes", "outcome", "follow_up_on", "follow_up_done", "cards_issued", "signups"])
    frame["when"] = frame["when"].map(lambda t: t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if t is not None else "")
    frame["follow_up_on"] = frame["follow_up_on"].map(lambda d: d.isoformat() if d else "")
    return frame
