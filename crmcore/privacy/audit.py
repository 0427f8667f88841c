"""The audit log: who did what, when, written in the same transaction as the act it records; and reading it.

Reading filters by who, what and when and exports as CSV. There is no way to change an entry: the log is
append-only from the app, `record` is the only writer, and nothing in crmcore updates or deletes
`audit_log` rows (tests/test_security_roles.py checks the code for it).
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlmodel import Session

from crmcore import exports
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import AuditLog

COLUMNS = ["at", "staff", "action", "entity", "entity_id", "detail"]
MAX_ROWS = 5000


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


def choices(session: Session, *, actor: Actor) -> dict[str, list[str]]:
    """The staff names and actions that occur in the log, for the filters."""
    require(actor, Perm.VIEW_AUDIT)
    names = session.execute(select(AuditLog.actor_name).distinct().order_by(AuditLog.actor_name)).scalars()
    actions = session.execute(select(AuditLog.action).distinct().order_by(AuditLog.action)).scalars()
    return {"staff": [n for n in names if n], "actions": list(actions)}


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def search(
    session: Session,
    *,
    actor: Actor,
    staff: str | None = None,
    action: str | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int = MAX_ROWS,
) -> pd.DataFrame:
    """Entries matching the filters (dates inclusive, UTC), newest first, at most `limit`."""
    require(actor, Perm.VIEW_AUDIT)
    if since and until and since > until:
        raise ValueError(f"Audit log filter: the start date {since} is after the end date {until}.")
    query = select(AuditLog.at, AuditLog.actor_name, AuditLog.action, AuditLog.entity, AuditLog.entity_id, AuditLog.detail)
    if staff:
        query = query.where(AuditLog.actor_name == staff)
    if action:
        query = query.where(AuditLog.action == action)
    if since:
        query = query.where(AuditLog.at >= _start(since))
    if until:
        query = query.where(AuditLog.at < _start(until + timedelta(days=1)))
    rows = session.execute(query.order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=COLUMNS)
    frame["detail"] = frame["detail"].map(lambda d: "" if d is None else json.dumps(d, ensure_ascii=False, default=str))
    return frame


def export_csv(session: Session, *, actor: Actor, **filters) -> bytes:
    """The filtered entries as CSV (formula cells neutralised); the export itself is audited."""
    frame = search(session, actor=actor, **filters)
    record(session, actor=actor, action="audit.export", entity="audit_log", detail={"rows": len(frame), **{k: str(v) for k, v in filters.items() if v}})
    return exports.to_csv(frame)
