"""The audit log: who did what, when. Written in the same transaction as the act it records."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from crmcore.models import AuditLog
from crmcore.permissions import Actor


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    entity: str | None = None,
    entity_id: Any = None,
    detail: dict[str, Any] | None = None,
) -> AuditLog:
    """Append one entry. `actor` None means the system (worker, CLI without a user)."""
    entry = AuditLog(
        actor_id=actor.id if actor else None,
        actor_name=actor.username if actor else "system",
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        detail=detail,
    )
    session.add(entry)
    return entry
