"""Tiny outreach records inserted directly (no service call), for tests that need one to act on."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from crmcore.models import Contact, Interaction, InteractionOrganization, Organization, Task


def org_id(session: Session, name: str = "Test Org") -> int:
    org = Organization(name=name)
    session.add(org)
    session.flush()
    return org.id


def contact_id(session: Session, last_name: str = "Tester") -> int:
    contact = Contact(last_name=last_name)
    session.add(contact)
    session.flush()
    return contact.id


def interaction_id(session: Session, staff_id: int | None, *, follow_up_on: date | None = None) -> int:
    interaction = Interaction(kind="meeting", staff_id=staff_id, follow_up_on=follow_up_on)
    session.add(interaction)
    session.flush()
    session.add(InteractionOrganization(interaction_id=interaction.id, organization_id=org_id(session)))
    session.flush()
    return interaction.id


def task_id(session: Session, assignee_id: int | None) -> int:
    task = Task(title="Test task", assignee_id=assignee_id, due_on=date.today())
    session.add(task)
    session.flush()
    return task.id
