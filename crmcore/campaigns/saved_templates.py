"""Saved templates: a message (subject and body with merge fields) kept by name, to start new campaigns from.

Anyone who composes campaigns may save, list, load and delete them; saving and deleting are audited.
A template holds staff's own words and merge fields only, never a patron's details.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import templates
from crmcore.models import SavedTemplate, utcnow
from crmcore.privacy import audit

MAX_NAME_CHARS = 120  # the column's size


def save(session: Session, *, actor: Actor, name: str, subject: str, body: str, replace: bool = False) -> SavedTemplate:
    """Keep a message under `name`; ValueError naming the field on bad input, or when a template of that
    name exists already (unless `replace`, which changes it). The message is checked first, before the
    session is touched (filling it in never holds the write lock)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    templates.check(subject=subject, body=body)
    clean = " ".join((name or "").split())
    if not clean:
        raise ValueError("Template name: give the template a name.")
    if len(clean) > MAX_NAME_CHARS:
        raise ValueError(f"Template name: {len(clean):,} characters; at most {MAX_NAME_CHARS}.")
    row = session.exec(select(SavedTemplate).where(func.lower(SavedTemplate.name) == clean.lower())).first()
    if row is not None and not replace:
        raise ValueError(f"Template name: a template named {row.name!r} exists already; choose another name, or replace it.")
    action = "template.replace" if row is not None else "template.save"
    if row is None:
        row = SavedTemplate(name=clean, subject=subject, body=body, created_by_id=actor.id)
    row.name, row.subject, row.body, row.updated_at = clean, subject, body, utcnow()
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action=action, entity="saved_template", entity_id=row.id, detail={"name": row.name})
    return row


def list_templates(session: Session, *, actor: Actor) -> list[SavedTemplate]:
    """Every saved template, by name."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    return list(session.exec(select(SavedTemplate).order_by(func.lower(SavedTemplate.name))))


def get(session: Session, *, actor: Actor, template_id: int) -> SavedTemplate:
    """One saved template; LookupError if there is none with that id (deleted meanwhile)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    row = session.get(SavedTemplate, template_id)
    if row is None:
        raise LookupError(f"There is no saved template {template_id} (deleted meanwhile?).")
    return row


def delete(session: Session, *, actor: Actor, template_id: int) -> str:
    """Delete a saved template (campaigns started from it keep their own copy of the message); returns its name."""
    row = get(session, actor=actor, template_id=template_id)
    name = row.name
    session.delete(row)
    audit.record(session, actor=actor, action="template.delete", entity="saved_template", entity_id=template_id, detail={"name": name})
    return name
