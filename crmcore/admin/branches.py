"""Branches as an admin sees them: each branch's name and the zone it stands in (imports create branches
from their codes; programs per capita by zone read the zone given here)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Branch, Zone
from crmcore.privacy import audit

NAME_MAX = 200


def list_branches(session: Session, *, actor: Actor) -> list[dict]:
    """Every branch with its code, name and zone id (None: not set), by code."""
    require(actor, Perm.MANAGE_SETTINGS)
    rows = session.execute(select(Branch.id, Branch.code, Branch.name, Branch.zone_id).order_by(Branch.code)).all()
    return [{"id": i, "code": code, "name": name, "zone_id": zone} for i, code, name, zone in rows]


def zone_names(session: Session, *, actor: Actor) -> dict[int, str]:
    """The zones a branch can stand in: id → "name (code)", by name."""
    require(actor, Perm.MANAGE_SETTINGS)
    return {i: f"{name} ({code})" for i, code, name in session.execute(select(Zone.id, Zone.code, Zone.name).order_by(Zone.name, Zone.code)).all()}


def update_branch(session: Session, *, actor: Actor, branch_id: int, name: str, zone_id: int | None) -> bool:
    """Rename a branch and set the zone it stands in (None: none); audited. False when nothing changed.
    Raises ValueError naming the branch on a blank or too long name or an unknown zone."""
    require(actor, Perm.MANAGE_SETTINGS)
    branch = session.get(Branch, branch_id)
    if branch is None:
        raise ValueError(f"Branch {branch_id} no longer exists: reload the page.")
    clean = " ".join(name.split()) if isinstance(name, str) else ""
    if not clean:
        raise ValueError(f"Branch {branch.code}: the name cannot be blank.")
    if len(clean) > NAME_MAX:
        raise ValueError(f"Branch {branch.code}: the name is longer than {NAME_MAX} characters.")
    if zone_id is not None and session.get(Zone, zone_id) is None:
        raise ValueError(f"Branch {branch.code}: zone {zone_id} does not exist (import zones first, under Imports → Zones).")
    if (branch.name, branch.zone_id) == (clean, zone_id):
        return False
    detail = {"old": {"name": branch.name, "zone_id": branch.zone_id}, "new": {"name": clean, "zone_id": zone_id}}
    branch.name, branch.zone_id = clean, zone_id
    session.add(branch)
    audit.record(session, actor=actor, action="branch.change", entity="branch", entity_id=str(branch.id), detail=detail)
    return True
