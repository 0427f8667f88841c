"""Journeys: automated series of steps a patron enters on a trigger, each version kept as it was."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class Journey(SQLModel, table=True):
    __tablename__ = "journey"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=120)
    template: Optional[str] = Field(default=None, max_length=40)  # the template it started from, if any
    # draft → active ⇄ paused
    status: str = Field(default="draft", max_length=20, index=True)
    holdout_pct: float = 10.0
    last_evaluated_on: Optional[date] = None
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class JourneyVersion(SQLModel, table=True):
    """A journey's definition (trigger, steps, exits, re-entry, goal) as JSON; editing an active journey adds one."""

    __tablename__ = "journey_version"
    __table_args__ = (
        UniqueConstraint("journey_id", "number", name="uq_journey_version_number"),
        Index("uq_journey_version_journey_id", "journey_id", "id", unique=True),  # what an enrolment's one reference names
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    journey_id: int = Field(foreign_key="journey.id")
    number: int
    definition: dict[str, Any] = Field(sa_type=JSON)
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class JourneyEnrolment(SQLModel, table=True):
    """One patron in one journey, once per re-entry round; the step they are at and when it is due.

    Its journey and version are one reference (the version of that journey), so that entering checks two
    keys, not three: on PostgreSQL each key is a lookup and a row lock per enrolment."""

    __tablename__ = "journey_enrolment"
    __table_args__ = (
        ForeignKeyConstraint(["journey_id", "version_id"], ["journey_version.journey_id", "journey_version.id"], name="fk_journey_enrolment_version"),
        UniqueConstraint("journey_id", "patron_id", "round", name="uq_journey_enrolment_round"),
        Index("ix_journey_enrolment_due", "version_id", "state", "step", "due_on"),
        Index("ix_journey_enrolment_patron", "patron_id", "journey_id"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    journey_id: int
    version_id: int
    patron_id: Optional[int] = Field(default=None, foreign_key="patron.id")  # null once erased
    round: int = 1
    is_holdout: bool = False
    entered_on: date
    expires_on_at_entry: Optional[date] = None  # to tell a renewal
    step: int = 0  # index of the next step to run
    due_on: Optional[date] = None
    # active → finished | exited (exit_reason)
    state: str = Field(default="active", max_length=20)
    exit_reason: Optional[str] = Field(default=None, max_length=30)
    ended_on: Optional[date] = None
