"""Organizations the library works with: create, update, archive, find (the import key) and list them.

Every function takes the acting staff member: reading needs VIEW_OUTREACH, writing EDIT_OUTREACH, and
every write is audited. Bad input raises ValueError naming the field, so an importer can call these in a
loop and report "line N: email: … is not a valid email address".
Contacts live in `outreach.contacts`, interactions in `outreach.interactions`, duplicates and
merging in `outreach.duplicates`, tags in `outreach.tags`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, select

from crmcore import validation
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Organization, OrganizationTag, Tag, utcnow
from crmcore.outreach.cleaning import UNSET, normal_name, text, website
from crmcore.outreach.tags import replace_tags, tag_name, tags_of
from crmcore.privacy import audit

ORG_FIELDS = ("name", "sector", "email", "phone", "website", "address", "notes", "is_partner")


def _org_values(*, name, sector, email, phone, website_, address, notes, is_partner) -> dict[str, Any]:
    values = {
        "name": text(name, field="name", max_length=200, required=True) if name is not UNSET else UNSET,
        "sector": text(sector, field="sector", max_length=60) if sector is not UNSET else UNSET,
        "email": validation.email(email, field="email") if email is not UNSET else UNSET,
        "phone": validation.phone(phone, field="phone") if phone is not UNSET else UNSET,
        "website": website(website_) if website_ is not UNSET else UNSET,
        "address": text(address, field="address", max_length=300) if address is not UNSET else UNSET,
        "notes": text(notes, field="notes") if notes is not UNSET else UNSET,
        "is_partner": bool(is_partner) if is_partner is not UNSET else UNSET,
    }
    return {k: v for k, v in values.items() if v is not UNSET}


def _apply_partner(org: Organization, is_partner: bool, *, since: date | None = None) -> None:
    if is_partner and not org.is_partner:
        org.partner_since = since or date.today()
    elif not is_partner:
        org.partner_since = None
    org.is_partner = is_partner


# --- organizations ---------------------------------------------------------------------------------


def create_organization(
    session: Session,
    *,
    actor: Actor,
    name: str,
    sector: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    website: str | None = None,
    address: str | None = None,
    notes: str | None = None,
    is_partner: bool = False,
    tags: Sequence[str] = (),
) -> Organization:
    """A new organization (audited); ValueError naming the field on bad input."""
    require(actor, Perm.EDIT_OUTREACH)
    values = _org_values(name=name, sector=sector, email=email, phone=phone, website_=website, address=address, notes=notes, is_partner=False)
    org = Organization(**values, created_by_id=actor.id)
    _apply_partner(org, bool(is_partner))
    session.add(org)
    session.flush()
    replace_tags(session, OrganizationTag, OrganizationTag.organization_id, org.id, tags, lambda t: OrganizationTag(organization_id=org.id, tag_id=t))
    audit.record(session, actor=actor, action="organization.create", entity="organization", entity_id=org.id)
    return org


def update_organization(
    session: Session,
    *,
    actor: Actor,
    organization_id: int,
    name: Any = UNSET,
    sector: Any = UNSET,
    email: Any = UNSET,
    phone: Any = UNSET,
    website: Any = UNSET,
    address: Any = UNSET,
    notes: Any = UNSET,
    is_partner: Any = UNSET,
    tags: Any = UNSET,
) -> Organization:
    """Change the given fields (others stay as they are); audited with the names of changed fields."""
    require(actor, Perm.EDIT_OUTREACH)
    org = _get_org(session, organization_id)
    values = _org_values(name=name, sector=sector, email=email, phone=phone, website_=website, address=address, notes=notes, is_partner=is_partner)
    changed = [k for k, v in values.items() if getattr(org, k) != v]
    partner = values.pop("is_partner", org.is_partner)
    for key, value in values.items():
        setattr(org, key, value)
    _apply_partner(org, partner)
    if tags is not UNSET:
        if replace_tags(session, OrganizationTag, OrganizationTag.organization_id, org.id, tags, lambda t: OrganizationTag(organization_id=org.id, tag_id=t)):
            changed.append("tags")
    if changed:
        org.updated_at = utcnow()
        session.add(org)
        audit.record(session, actor=actor, action="organization.update", entity="organization", entity_id=org.id, detail={"fields": changed})
    return org


def archive_organization(session: Session, *, actor: Actor, organization_id: int, archived: bool = True) -> Organization:
    """Archive (hide from pickers, keep history) or restore an organization; audited."""
    require(actor, Perm.EDIT_OUTREACH)
    org = _get_org(session, organization_id)
    org.archived, org.updated_at = archived, utcnow()
    session.add(org)
    audit.record(session, actor=actor, action="organization.archive" if archived else "organization.restore", entity="organization", entity_id=org.id)
    return org


def _get_org(session: Session, organization_id: int) -> Organization:
    org = session.get(Organization, organization_id)
    if org is None:
        raise LookupError(f"No organization with id {organization_id}.")
    return org


def get_organization(session: Session, *, actor: Actor, organization_id: int) -> dict[str, Any]:
    """One organization with its tags and contacts, as plain data."""
    require(actor, Perm.VIEW_OUTREACH)
    org = _get_org(session, organization_id)
    row = org.model_dump()
    row["tags"] = tags_of(session, OrganizationTag, OrganizationTag.organization_id, org.id)
    row["merged_into_name"] = session.get(Organization, org.merged_into_id).name if org.merged_into_id else None
    return row


def find_organization(session: Session, *, actor: Actor, name: str | None = None, email: str | None = None) -> Organization | None:
    """The existing organization an import row means (the upsert key): same email first, else same name.

    Names match ignoring case and repeated spaces; merged organizations resolve to the one they were
    merged into. Archived ones are found too, so a re-import does not recreate them.
    """
    require(actor, Perm.VIEW_OUTREACH)
    org = None
    email = validation.email(email, field="email") if email else None
    if email:
        org = session.exec(select(Organization).where(func.lower(Organization.email) == email.lower()).order_by(Organization.id)).first()
    if org is None and name and name.strip():
        org = session.exec(
            select(Organization).where(func.lower(Organization.name) == normal_name(name)).order_by(Organization.merged_into_id.is_not(None), Organization.id)
        ).first()
        if org is None:  # the stored name may have odd spacing; compare normalised among the few candidates
            first = normal_name(name).split(" ")[0]
            for candidate in session.exec(select(Organization).where(func.lower(Organization.name).contains(first, autoescape=True)).limit(200)):
                if normal_name(candidate.name) == normal_name(name):
                    org = candidate
                    break
    seen = set()
    while org is not None and org.merged_into_id is not None and org.id not in seen:
        seen.add(org.id)
        org = session.get(Organization, org.merged_into_id)
    return org


def list_organizations(
    session: Session, *, actor: Actor, search: str | None = None, tag: str | None = None, include_archived: bool = False, limit: int = 500
) -> list[dict[str, Any]]:
    """Organizations (not merged away) matching a name search and tag, by name."""
    require(actor, Perm.VIEW_OUTREACH)
    query = select(Organization).where(Organization.merged_into_id.is_(None))
    if not include_archived:
        query = query.where(Organization.archived.is_(False))
    if search and search.strip():
        term = search.strip()
        query = query.where(or_(Organization.name.icontains(term, autoescape=True), Organization.email.icontains(term, autoescape=True)))
    if tag_name(tag):
        query = query.join(OrganizationTag, OrganizationTag.organization_id == Organization.id).join(Tag, Tag.id == OrganizationTag.tag_id).where(Tag.name == tag_name(tag))
    orgs = list(session.exec(query.order_by(func.lower(Organization.name), Organization.id).limit(limit)))
    tags: dict[int, list[str]] = {}
    if orgs:
        links = session.exec(
            select(OrganizationTag.organization_id, Tag.name).join(Tag, Tag.id == OrganizationTag.tag_id).where(OrganizationTag.organization_id.in_([o.id for o in orgs]))
        )
        for oid, name in links:
            tags.setdefault(oid, []).append(name)
    return [
        {"id": o.id, "name": o.name, "sector": o.sector, "email": o.email, "phone": o.phone, "partner": o.is_partner, "archived": o.archived, "tags": ", ".join(sorted(tags.get(o.id, [])))}
        for o in orgs
    ]


def organization_choices(session: Session, *, actor: Actor) -> dict[int, str]:
    """Active organization ids to names, for pickers."""
    require(actor, Perm.VIEW_OUTREACH)
    rows = session.exec(
        select(Organization.id, Organization.name).where(Organization.archived.is_(False), Organization.merged_into_id.is_(None)).order_by(func.lower(Organization.name))
    )
    return dict(rows.all())
