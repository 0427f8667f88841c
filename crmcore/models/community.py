"""Community outreach: organizations, contacts, tags, interactions, tasks and calendar feeds."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class Tag(SQLModel, table=True):
    __tablename__ = "tag"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=60)


class Organization(SQLModel, table=True):
    __tablename__ = "organization"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    sector: Optional[str] = Field(default=None, max_length=60)
    email: Optional[str] = Field(default=None, max_length=254)
    phone: Optional[str] = Field(default=None, max_length=40)
    website: Optional[str] = Field(default=None, max_length=300)
    address: Optional[str] = Field(default=None, max_length=300)
    zone_id: Optional[int] = Field(default=None, foreign_key="zone.id")
    notes: Optional[str] = Field(default=None, sa_type=Text)
    is_partner: bool = False
    partner_since: Optional[date] = None  # when it became a partner: the "new partners" KPI counts these
    archived: bool = False
    merged_into_id: Optional[int] = Field(default=None, foreign_key="organization.id")
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Contact(SQLModel, table=True):
    """A person met in the community; need not be a patron, may be linked to one."""

    __tablename__ = "contact"
    id: Optional[int] = Field(default=None, primary_key=True)
    first_name: Optional[str] = Field(default=None, max_length=120)
    last_name: str = Field(max_length=120, index=True)
    email: Optional[str] = Field(default=None, max_length=254, index=True)
    phone: Optional[str] = Field(default=None, max_length=40)
    job_title: Optional[str] = Field(default=None, max_length=120)
    organization_id: Optional[int] = Field(default=None, foreign_key="organization.id", index=True)
    patron_id: Optional[int] = Field(default=None, foreign_key="patron.id")
    notes: Optional[str] = Field(default=None, sa_type=Text)
    archived: bool = False
    merged_into_id: Optional[int] = Field(default=None, foreign_key="contact.id")
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class OrganizationTag(SQLModel, table=True):
    __tablename__ = "organization_tag"
    organization_id: int = Field(foreign_key="organization.id", primary_key=True)
    tag_id: int = Field(foreign_key="tag.id", primary_key=True)


class ContactTag(SQLModel, table=True):
    __tablename__ = "contact_tag"
    contact_id: int = Field(foreign_key="contact.id", primary_key=True)
    tag_id: int = Field(foreign_key="tag.id", primary_key=True)


class Interaction(SQLModel, table=True):
    """A logged community contact: who on staff, when, what kind, with whom, and what came of it."""

    __tablename__ = "interaction"
    __table_args__ = (Index("ix_interaction_followup", "follow_up_on", "follow_up_done_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    occurred_at: datetime = Field(default_factory=utcnow, index=True)
    kind: str = Field(max_length=30)
    staff_id: Optional[int] = Field(default=None, foreign_key="staff_user.id", index=True)
    notes: Optional[str] = Field(default=None, sa_type=Text)
    outcome: Optional[str] = Field(default=None, max_length=500)
    follow_up_on: Optional[date] = None
    follow_up_assignee_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    follow_up_done_at: Optional[datetime] = None
    cards_issued: int = 0
    signups: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class InteractionOrganization(SQLModel, table=True):
    __tablename__ = "interaction_organization"
    interaction_id: int = Field(foreign_key="interaction.id", primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", primary_key=True, index=True)


class InteractionContact(SQLModel, table=True):
    __tablename__ = "interaction_contact"
    interaction_id: int = Field(foreign_key="interaction.id", primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", primary_key=True, index=True)


class InteractionTag(SQLModel, table=True):
    __tablename__ = "interaction_tag"
    interaction_id: int = Field(foreign_key="interaction.id", primary_key=True)
    tag_id: int = Field(foreign_key="tag.id", primary_key=True, index=True)


class Task(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (Index("ix_task_assignee_due", "assignee_id", "done_at", "due_on"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    notes: Optional[str] = Field(default=None, sa_type=Text)
    due_on: Optional[date] = None
    assignee_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    organization_id: Optional[int] = Field(default=None, foreign_key="organization.id")
    contact_id: Optional[int] = Field(default=None, foreign_key="contact.id")
    interaction_id: Optional[int] = Field(default=None, foreign_key="interaction.id")
    done_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)


class NotDuplicate(SQLModel, table=True):
    """Two organizations (or two contacts) a staff member said are not the same: never suggested again."""

    __tablename__ = "not_duplicate"
    kind: str = Field(primary_key=True, max_length=20)  # 'organization' | 'contact'
    first_id: int = Field(primary_key=True)  # the lower id of the pair
    second_id: int = Field(primary_key=True)
    decided_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    decided_at: datetime = Field(default_factory=utcnow)


class CalendarFeed(SQLModel, table=True):
    """A staff member's secret-token iCalendar feed of follow-ups and outreach events."""

    __tablename__ = "calendar_feed"
    staff_id: int = Field(foreign_key="staff_user.id", primary_key=True)
    token: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
