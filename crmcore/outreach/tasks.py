"""Tasks and follow-ups: what a staff member has to do next, and completing, snoozing or handing it on.

Two kinds of item: a follow-up date on an interaction (kind "follow_up", assigned to whoever logged it
unless reassigned) and a free-standing task (kind "task"). Both are due on a date; an item is overdue
when that date is before today, due when it is today.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from sqlalchemy import func, or_
from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, Role, allowed, require
from crmcore.models import (
    Contact,
    Interaction,
    InteractionContact,
    InteractionOrganization,
    Organization,
    StaffUser,
    Task,
    utcnow,
)
from crmcore.outreach.kinds import KINDS
from crmcore.privacy import audit

ItemKind = Literal["task", "follow_up"]


def check_assignee(session: Session, staff_id: int | None) -> int:
    """The id of an active staff member whose role may see outreach records; ValueError otherwise."""
    user = session.get(StaffUser, staff_id) if staff_id is not None else None
    if user is None or not user.is_active:
        raise ValueError(f"assignee: no active staff member with id {staff_id}.")
    if not allowed(Role(user.role), Perm.VIEW_OUTREACH):
        raise ValueError(f"assignee: {user.username} ({user.role}) cannot see outreach records, so cannot be given this.")
    return user.id


def assignable_staff(session: Session, *, actor: Actor) -> dict[int, str]:
    """Active staff who can be given follow-ups and tasks, id to display name."""
    require(actor, Perm.VIEW_OUTREACH)
    roles = [r.value for r in Role if allowed(r, Perm.VIEW_OUTREACH)]
    rows = session.exec(select(StaffUser).where(StaffUser.is_active, StaffUser.role.in_(roles)).order_by(StaffUser.username))
    return {u.id: u.display_name or u.username for u in rows}


def create_task(
    session: Session,
    *,
    actor: Actor,
    title: str,
    due_on: date | None = None,
    assignee_id: int | None = None,
    notes: str | None = None,
    organization_id: int | None = None,
    contact_id: int | None = None,
    interaction_id: int | None = None,
) -> Task:
    """A task for the actor or, with `assignee_id`, for another staff member; audited."""
    require(actor, Perm.EDIT_OUTREACH)
    title = (title or "").strip()
    if not title:
        raise ValueError("title: required.")
    if len(title) > 200:
        raise ValueError(f"title: at most 200 characters (got {len(title)}).")
    for model, value, field in ((Organization, organization_id, "organization_id"), (Contact, contact_id, "contact_id"), (Interaction, interaction_id, "interaction_id")):
        if value is not None and session.get(model, value) is None:
            raise ValueError(f"{field}: no record with id {value}.")
    task = Task(
        title=title,
        notes=(notes or "").strip() or None,
        due_on=due_on,
        assignee_id=check_assignee(session, assignee_id if assignee_id is not None else actor.id),
        created_by_id=actor.id,
        organization_id=organization_id,
        contact_id=contact_id,
        interaction_id=interaction_id,
    )
    session.add(task)
    session.flush()
    audit.record(session, actor=actor, action="task.create", entity="task", entity_id=task.id, detail={"assignee_id": task.assignee_id})
    return task


def _status(due_on: date | None, today: date) -> str:
    if due_on is None:
        return "no date"
    return "overdue" if due_on < today else "due today" if due_on == today else "upcoming"


def interaction_names(session: Session, *, actor: Actor, ids: list[int]) -> dict[int, list[str]]:
    """The names of the organizations and contacts of each interaction: interaction id → names."""
    require(actor, Perm.VIEW_OUTREACH)
    names: dict[int, list[str]] = {}
    if not ids:
        return names
    q = select(InteractionOrganization.interaction_id, Organization.name).join(Organization, Organization.id == InteractionOrganization.organization_id)
    for iid, name in session.exec(q.where(InteractionOrganization.interaction_id.in_(ids))):
        names.setdefault(iid, []).append(name)
    q = select(InteractionContact.interaction_id, Contact.first_name, Contact.last_name).join(Contact, Contact.id == InteractionContact.contact_id)
    for iid, first, last in session.exec(q.where(InteractionContact.interaction_id.in_(ids))):
        names.setdefault(iid, []).append(" ".join(p for p in (first, last) if p))
    return names


def _open_items(session: Session, *, actor: Actor, until: date | None = None, today: date | None = None) -> list[dict[str, Any]]:
    """Open follow-ups and tasks of the actor due up to `until` (tasks without a date too), soonest first."""
    staff_id = actor.id
    today = today or date.today()
    follow_ups = select(Interaction).where(
        func.coalesce(Interaction.follow_up_assignee_id, Interaction.staff_id) == staff_id,
        Interaction.follow_up_on.is_not(None),
        Interaction.follow_up_done_at.is_(None),
    )
    task_query = select(Task).where(Task.assignee_id == staff_id, Task.done_at.is_(None))
    if until is not None:
        follow_ups = follow_ups.where(Interaction.follow_up_on <= until)
        task_query = task_query.where(or_(Task.due_on.is_(None), Task.due_on <= until))
    interactions = list(session.exec(follow_ups))
    names = interaction_names(session, actor=actor, ids=[i.id for i in interactions])
    items = [
        {
            "kind": "follow_up",
            "id": i.id,
            "title": f"Follow up: {KINDS.get(i.kind, i.kind).lower()} with {', '.join(sorted(names.get(i.id, []))) or '—'}",
            "due_on": i.follow_up_on,
            "status": _status(i.follow_up_on, today),
            "notes": i.outcome or i.notes or "",
            "interaction_id": i.id,
        }
        for i in interactions
    ]
    for t in session.exec(task_query):
        items.append({"kind": "task", "id": t.id, "title": t.title, "due_on": t.due_on, "status": _status(t.due_on, today), "notes": t.notes or "", "interaction_id": t.interaction_id})
    items.sort(key=lambda r: (r["due_on"] is None, r["due_on"] or date.max, r["kind"], r["id"]))
    return items


def my_followups(session: Session, *, actor: Actor, horizon_days: int = 7, today: date | None = None) -> list[dict[str, Any]]:
    """The actor's overdue, due and coming (within `horizon_days`) follow-ups and tasks."""
    require(actor, Perm.VIEW_OUTREACH)
    today = today or date.today()
    return _open_items(session, actor=actor, until=today + timedelta(days=horizon_days), today=today)


def _item(session: Session, kind: str, item_id: int) -> Task | Interaction:
    if kind == "task":
        record = session.get(Task, item_id)
    elif kind == "follow_up":
        record = session.get(Interaction, item_id)
        if record is not None and record.follow_up_on is None:
            record = None
    else:
        raise ValueError(f"kind: {kind!r} is neither 'task' nor 'follow_up'.")
    if record is None:
        raise LookupError(f"No open {kind.replace('_', '-')} with id {item_id}.")
    return record


def complete(session: Session, *, actor: Actor, kind: ItemKind, item_id: int) -> None:
    """Mark a follow-up or task done; audited."""
    require(actor, Perm.EDIT_OUTREACH)
    record = _item(session, kind, item_id)
    if kind == "task":
        record.done_at = record.done_at or utcnow()
    else:
        record.follow_up_done_at = record.follow_up_done_at or utcnow()
    session.add(record)
    audit.record(session, actor=actor, action=f"{kind}.complete", entity="task" if kind == "task" else "interaction", entity_id=item_id)


def snooze(session: Session, *, actor: Actor, kind: ItemKind, item_id: int, until: date, today: date | None = None) -> None:
    """Move a follow-up or task to a later due date (today or after); audited."""
    require(actor, Perm.EDIT_OUTREACH)
    today = today or date.today()
    if not isinstance(until, date) or until < today:
        raise ValueError(f"snooze until: {until} is in the past; pick today or a later date.")
    record = _item(session, kind, item_id)
    if kind == "task":
        old, record.due_on = record.due_on, until
    else:
        old, record.follow_up_on = record.follow_up_on, until
    session.add(record)
    audit.record(session, actor=actor, action=f"{kind}.snooze", entity="task" if kind == "task" else "interaction", entity_id=item_id, detail={"from": str(old), "to": str(until)})


def reassign(session: Session, *, actor: Actor, kind: ItemKind, item_id: int, assignee_id: int) -> None:
    """Hand a follow-up or task to another staff member who can see outreach records; audited."""
    require(actor, Perm.EDIT_OUTREACH)
    assignee_id = check_assignee(session, assignee_id)
    record = _item(session, kind, item_id)
    if kind == "task":
        old, record.assignee_id = record.assignee_id, assignee_id
    else:
        old, record.follow_up_assignee_id = record.follow_up_assignee_id or record.staff_id, assignee_id
    session.add(record)
    audit.record(session, actor=actor, action=f"{kind}.reassign", entity="task" if kind == "task" else "interaction", entity_id=item_id, detail={"from": old, "to": assignee_id})


def overdue_count(session: Session, *, today: date | None = None) -> int:
    """Open follow-ups and tasks of all staff whose due date has passed (a KPI; no names)."""
    today = today or date.today()
    follow_ups = session.exec(
        select(func.count()).select_from(Interaction).where(Interaction.follow_up_on < today, Interaction.follow_up_done_at.is_(None))
    ).one()
    open_tasks = session.exec(select(func.count()).select_from(Task).where(Task.due_on < today, Task.done_at.is_(None))).one()
    return follow_ups + open_tasks
