"""Surveys, their responses, and the free-text answers (personal data, kept apart to be erased and purged)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class Survey(SQLModel, table=True):
    """A survey: its questions (JSON, checked by crmcore.surveys.questions) and who follows up unhappy answers."""

    __tablename__ = "survey"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=120)
    intro: Optional[str] = Field(default=None, max_length=1000)
    questions: list[dict[str, Any]] = Field(sa_type=JSON)
    # draft → open → closed (answers can be given and changed only while open)
    status: str = Field(default="draft", max_length=20)
    # Who gets the follow-up of a detractor or a "please contact me": a staff member of the patron's branch
    # (branch id → staff id), else the chosen staff member, else the least busy active member of the chosen role.
    follow_up_staff_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    follow_up_role: Optional[str] = Field(default=None, max_length=20)
    follow_up_by_branch: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    opened_at: Optional[datetime] = None
    closed_at: Optional[datetime] = None


class SurveyResponse(SQLModel, table=True):
    """One answer to a survey: a patron's (one per patron per survey, changed in place) or anonymous (in branch).
    Branch, zone, age band and lifecycle stage are the patron's when they answered, for the results by group."""

    __tablename__ = "survey_response"
    __table_args__ = (
        UniqueConstraint("survey_id", "patron_id", name="uq_survey_response_patron"),
        Index("ix_survey_response_survey_submitted", "survey_id", "submitted_at"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    survey_id: int = Field(foreign_key="survey.id")
    patron_id: Optional[int] = Field(default=None, foreign_key="patron.id")  # null: anonymous, or erased
    answers: dict[str, Any] = Field(sa_type=JSON)  # question key → score, choice(s), yes/no (no free text)
    nps: Optional[int] = None
    contact_ok: Optional[bool] = None
    branch_id: Optional[int] = Field(default=None, foreign_key="branch.id")
    zone_id: Optional[int] = Field(default=None, foreign_key="zone.id")
    age_band: Optional[str] = Field(default=None, max_length=20)
    stage: Optional[str] = Field(default=None, max_length=20)
    activity_event_id: Optional[int] = Field(default=None, foreign_key="activity_event.id")
    task_id: Optional[int] = Field(default=None, foreign_key="task.id")  # the follow-up; done when the task is
    submitted_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class SurveyText(SQLModel, table=True):
    """A free-text answer: personal data (shown with VIEW_PII, audited; erased with the patron; purged by retention)."""

    __tablename__ = "survey_text"
    response_id: int = Field(foreign_key="survey_response.id", primary_key=True)
    question: str = Field(primary_key=True, max_length=20)
    text: str = Field(sa_type=Text)
    written_on: date = Field(default_factory=lambda: utcnow().date(), index=True)
