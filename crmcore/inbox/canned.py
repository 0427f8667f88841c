"""Canned replies: answers staff saved by name, to start a reply from."""

from __future__ import annotations

from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import CannedReply
from crmcore.privacy import audit


def list_replies(session: Session, *, actor: Actor) -> dict[int, dict]:
    """id → {name, body}, by name."""
    require(actor, Perm.VIEW_OUTREACH)
    return {r.id: {"name": r.name, "body": r.body} for r in session.exec(select(CannedReply).order_by(CannedReply.name))}


def save_reply(session: Session, *, actor: Actor, name: str, body: str) -> CannedReply:
    """Save a canned reply under `name` (replacing the one of that name); audited."""
    require(actor, Perm.EDIT_OUTREACH)
    name, body = " ".join((name or "").split()), (body or "").strip()
    if not name:
        raise ValueError("Canned reply name: required.")
    if len(name) > 120:
        raise ValueError(f"Canned reply name: at most 120 characters (got {len(name)}).")
    if not body:
        raise ValueError(f"Canned reply {name}: the text is empty.")
    row = session.exec(select(CannedReply).where(CannedReply.name == name)).first() or CannedReply(name=name, body=body)
    row.body = body
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="canned_reply.save", entity="canned_reply", entity_id=row.id, detail={"name": name})
    return row


def delete_reply(session: Session, *, actor: Actor, reply_id: int) -> None:
    """Remove a canned reply; audited."""
    require(actor, Perm.EDIT_OUTREACH)
    row = session.get(CannedReply, reply_id)
    if row is None:
        raise ValueError(f"Canned reply: no reply with id {reply_id}.")
    session.delete(row)
    audit.record(session, actor=actor, action="canned_reply.delete", entity="canned_reply", entity_id=reply_id, detail={"name": row.name})
