"""Community contacts: people met in the community, who need not be patrons but may be linked to one.

Same conventions as `outreach`: VIEW_OUTREACH to read, EDIT_OUTREACH to write, writes audited,
ValueError naming the field on bad input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, select

from crmcore import validation
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Contact, ContactTag, Organization, Patron, Tag, utcnow
from crmcore.outreach.cleaning import UNSET, full_name, normal_name, text
from crmcore.outreach.tags import replace_tags, tag_name, tags_of
from crmcore.privacy import audit

CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "job_title", "organization_id", "patron_ils_id", "notes")


# --- contacts --------------------------------------------------------------------------------------


def _contact_values(session: Session, *, first_name, last_name, email, phone, job_title, organization_id, patron_ils_id, notes) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if first_name is not UNSET:
        values["first_name"] = text(first_name, field="first_name", max_length=120)
    if last_name is not UNSET:
        values["last_name"] = text(last_name, field="last_name", max_length=120, required=True)
    if email is not UNSET:
        values["email"] = validation.email(email, field="email")
    if phone is not UNSET:
        values["phone"] = validation.phone(phone, field="phone")
    if job_title is not UNSET:
        values["job_title"] = text(job_title, field="job_title", max_length=120)
    if notes is not UNSET:
        values["notes"] = text(notes, field="notes")
    if organization_id is not UNSET:
        if organization_id is not None and session.get(Organization, organization_id) is None:
            raise ValueError(f"organization_id: no organization with id {organization_id}.")
        values["organization_id"] = organization_id
    if patron_ils_id is not UNSET:
        ils_id = text(patron_ils_id, field="patron_ils_id", max_length=64)
        patron_id = None
        if ils_id is not None:
            patron_id = session.exec(select(Patron.id).where(Patron.ils_id == ils_id)).first()
            if patron_id is None:
                raise ValueError(f"patron_ils_id: no patron with ILS id {ils_id!r}.")
        values["patron_id"] = patron_id
    return values


def create_contact(
    session: Session,
    *,
    actor: Actor,
    last_name: str,
    first_name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    job_title: str | None = None,
    organization_id: int | None = None,
    patron_ils_id: str | None = None,
    notes: str | None = None,
    tags: Sequence[str] = (),
) -> Contact:
    """A new community contact (audited), optionally linked to a patron by ILS id."""
    require(actor, Perm.EDIT_OUTREACH)
    values = _contact_values(
        session, first_name=first_name, last_name=last_name, email=email, phone=phone, job_title=job_title, organization_id=organization_id, patron_ils_id=patron_ils_id, notes=notes
    )
    contact = Contact(**values, created_by_id=actor.id)
    session.add(contact)
    session.flush()
    replace_tags(session, ContactTag, ContactTag.contact_id, contact.id, tags, lambda t: ContactTag(contact_id=contact.id, tag_id=t))
    audit.record(session, actor=actor, action="contact.create", entity="contact", entity_id=contact.id)
    return contact


def update_contact(
    session: Session,
    *,
    actor: Actor,
    contact_id: int,
    first_name: Any = UNSET,
    last_name: Any = UNSET,
    email: Any = UNSET,
    phone: Any = UNSET,
    job_title: Any = UNSET,
    organization_id: Any = UNSET,
    patron_ils_id: Any = UNSET,
    notes: Any = UNSET,
    tags: Any = UNSET,
) -> Contact:
    """Change the given fields of a contact (others stay); audited with the names of changed fields."""
    require(actor, Perm.EDIT_OUTREACH)
    contact = _get_contact(session, contact_id)
    values = _contact_values(
        session, first_name=first_name, last_name=last_name, email=email, phone=phone, job_title=job_title, organization_id=organization_id, patron_ils_id=patron_ils_id, notes=notes
    )
    changed = [k for k, v in values.items() if getattr(contact, k) != v]
    for key, value in values.items():
        setattr(contact, key, value)
    if tags is not UNSET:
        if replace_tags(session, ContactTag, ContactTag.contact_id, contact.id, tags, lambda t: ContactTag(contact_id=contact.id, tag_id=t)):
            changed.append("tags")
    if changed:
        contact.updated_at = utcnow()
        session.add(contact)
        audit.record(session, actor=actor, action="contact.update", entity="contact", entity_id=contact.id, detail={"fields": changed})
    return contact


def archive_contact(session: Session, *, actor: Actor, contact_id: int, archived: bool = True) -> Contact:
    """Archive or restore a contact; audited."""
    require(actor, Perm.EDIT_OUTREACH)
    contact = _get_contact(session, contact_id)
    contact.archived, contact.updated_at = archived, utcnow()
    session.add(contact)
    audit.record(session, actor=actor, action="contact.archive" if archived else "contact.restore", entity="contact", entity_id=contact.id)
    return contact


def _get_contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise LookupError(f"No contact with id {contact_id}.")
    return contact


def get_contact(session: Session, *, actor: Actor, contact_id: int) -> dict[str, Any]:
    """One contact with tags, organization name and linked patron's ILS id, as plain data."""
    require(actor, Perm.VIEW_OUTREACH)
    contact = _get_contact(session, contact_id)
    row = contact.model_dump()
    row["name"] = full_name(contact.first_name, contact.last_name)
    row["tags"] = tags_of(session, ContactTag, ContactTag.contact_id, contact.id)
    row["organization_name"] = session.get(Organization, contact.organization_id).name if contact.organization_id else None
    row["patron_ils_id"] = session.get(Patron, contact.patron_id).ils_id if contact.patron_id else None
    return row


def find_contact(
    session: Session, *, actor: Actor, email: str | None = None, first_name: str | None = None, last_name: str | None = None, organization_id: int | None = None
) -> Contact | None:
    """The existing contact an import row means: same email first, else same full name at the same organization."""
    require(actor, Perm.VIEW_OUTREACH)
    contact = None
    email = validation.email(email, field="email") if email else None
    if email:
        contact = session.exec(select(Contact).where(func.lower(Contact.email) == email.lower()).order_by(Contact.merged_into_id.is_not(None), Contact.id)).first()
    if contact is None and last_name and last_name.strip():
        query = select(Contact).where(func.lower(Contact.last_name) == normal_name(last_name), Contact.organization_id == organization_id if organization_id else Contact.organization_id.is_(None))
        query = query.where(func.lower(func.coalesce(Contact.first_name, "")) == normal_name(first_name or ""))
        contact = session.exec(query.order_by(Contact.merged_into_id.is_not(None), Contact.id)).first()
    seen = set()
    while contact is not None and contact.merged_into_id is not None and contact.id not in seen:
        seen.add(contact.id)
        contact = session.get(Contact, contact.merged_into_id)
    return contact


def list_contacts(
    session: Session, *, actor: Actor, search: str | None = None, organization_id: int | None = None, tag: str | None = None, include_archived: bool = False, limit: int = 500
) -> list[dict[str, Any]]:
    """Contacts (not merged away) matching a name/email search, organization and tag."""
    require(actor, Perm.VIEW_OUTREACH)
    query = select(Contact, Organization.name).outerjoin(Organization, Organization.id == Contact.organization_id).where(Contact.merged_into_id.is_(None))
    if not include_archived:
        query = query.where(Contact.archived.is_(False))
    if organization_id is not None:
        query = query.where(Contact.organization_id == organization_id)
    if search and search.strip():
        term = search.strip()
        query = query.where(
            or_(Contact.last_name.icontains(term, autoescape=True), Contact.first_name.icontains(term, autoescape=True), Contact.email.icontains(term, autoescape=True))
        )
    if tag_name(tag):
        query = query.join(ContactTag, ContactTag.contact_id == Contact.id).join(Tag, Tag.id == ContactTag.tag_id).where(Tag.name == tag_name(tag))
    rows = session.exec(query.order_by(func.lower(Contact.last_name), func.lower(func.coalesce(Contact.first_name, "")), Contact.id).limit(limit))
    return [
        {"id": c.id, "name": full_name(c.first_name, c.last_name), "organization": org, "job_title": c.job_title, "email": c.email, "phone": c.phone, "patron": c.patron_id is not None, "archived": c.archived}
        for c, org in rows
    ]


def contact_choices(session: Session, *, actor: Actor) -> dict[int, str]:
    """Active contact ids to "First Last (Organization)", for pickers (columns only: it runs on every quick log)."""
    require(actor, Perm.VIEW_OUTREACH)
    rows = session.exec(
        select(Contact.id, Contact.first_name, Contact.last_name, Organization.name)
        .outerjoin(Organization, Organization.id == Contact.organization_id)
        .where(Contact.merged_into_id.is_(None), Contact.archived.is_(False))
        .order_by(func.lower(Contact.last_name), func.lower(func.coalesce(Contact.first_name, "")), Contact.id)
    )
    return {i: full_name(first, last) + (f" ({org})" if org else "") for i, first, last, org in rows}
