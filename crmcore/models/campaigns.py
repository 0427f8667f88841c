"""Segments, campaigns and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class Segment(SQLModel, table=True):
    """A saved rule tree (JSON) that crmcore compiles to SQL."""

    __tablename__ = "segment"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=120)
    description: Optional[str] = Field(default=None, max_length=500)
    rules: dict[str, Any] = Field(sa_type=JSON)
    is_preset: bool = False
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"
    __table_args__ = (Index("ix_campaign_journey_step", "journey_version_id", "journey_step", "journey_round", unique=True),)
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    segment_id: Optional[int] = Field(default=None, foreign_key="segment.id")
    channel: str = Field(default="email", max_length=10)
    # Who it goes to: "patrons" (the segment's) or "prospects" (confirmed sign-ups for the topic, not yet patrons).
    audience: str = Field(default="patrons", max_length=20)
    topic: str = Field(max_length=30)
    subject_template: str = Field(max_length=300)
    body_template: str = Field(sa_type=Text)
    # draft → scheduled → sending → sent; or cancelled
    status: str = Field(default="draft", max_length=20, index=True)
    holdout_pct: float = 10.0
    # The {{ recommendations }} block for a patron without interests: the library's "picks", or "none" (left out).
    recommendations_fallback: str = Field(default="picks", max_length=10, sa_column_kwargs={"server_default": "picks"})
    scheduled_at: Optional[datetime] = None
    launched_at: Optional[datetime] = None
    launched_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    launch_summary: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)
    survey_id: Optional[int] = Field(default=None, foreign_key="survey.id")  # the survey {{ survey_link }} opens
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # A journey's send step (status "journey"): one campaign per journey version × step × re-entry round, so
    # that its messages (unique per campaign × patron) go through the one send loop at most once per enrolment.
    journey_version_id: Optional[int] = None
    journey_step: Optional[int] = None
    journey_round: Optional[int] = None


class Message(SQLModel, table=True):
    """One recipient of a launched campaign (or a holdout member, who is sent nothing)."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("campaign_id", "patron_id", name="uq_message_campaign_patron"),
        # Only messages to prospects: one to a patron would add an entry for nothing.
        Index("uq_message_campaign_prospect", "campaign_id", "prospect_id", unique=True,
              postgresql_where=text("prospect_id IS NOT NULL"), sqlite_where=text("prospect_id IS NOT NULL")),
        Index("ix_message_status_lease", "status", "lease_expires_at"),
        Index("ix_message_patron_sent", "patron_id", "sent_at"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    patron_id: Optional[int] = Field(default=None, foreign_key="patron.id")  # null once erased
    prospect_id: Optional[int] = Field(default=None, foreign_key="prospect.id")  # a campaign to prospects; null once erased
    # queued → sending → sent | failed | unknown; holdout; skipped (consent gone); cancelled; held (its journey paused) ⇄ queued
    status: str = Field(default="queued", max_length=20)
    is_holdout: bool = False
    message_id: Optional[str] = Field(default=None, max_length=200)
    lease_owner: Optional[str] = Field(default=None, max_length=80)
    lease_expires_at: Optional[datetime] = None
    attempts: int = 0
    next_attempt_at: Optional[datetime] = None
    last_error: Optional[str] = Field(default=None, max_length=500)
    sent_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)
    # Text messages: how many parts the text went out in, and the gateway's delivery report (delivered | failed).
    parts: Optional[int] = None
    delivery: Optional[str] = Field(default=None, max_length=20)
    delivery_at: Optional[datetime] = None


class InboundMail(SQLModel, table=True):
    """One message that reached the inbound listener: a mailto unsubscribe, a bounce, a complaint, or
    something else kept (raw) for staff to review. Known kinds keep no body: only what was done."""

    __tablename__ = "inbound_mail"
    id: Optional[int] = Field(default=None, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, index=True)
    kind: str = Field(max_length=20, index=True)  # unsubscribe | hard_bounce | soft_bounce | complaint | unknown
    message_id: Optional[int] = Field(default=None, foreign_key="message.id")
    outcome: str = Field(max_length=300)
    subject: Optional[str] = Field(default=None, max_length=300)  # unknown mail only
    raw: Optional[bytes] = Field(default=None, sa_type=LargeBinary)  # unknown mail only, for review
    reviewed_at: Optional[datetime] = None


class Bounce(SQLModel, table=True):
    """A delivery failure reported after the SMTP server had accepted a message (RFC 3464)."""

    __tablename__ = "bounce"
    __table_args__ = (Index("ix_bounce_hash_at", "email_hash", "at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64)
    hard: bool
    at: datetime = Field(default_factory=utcnow)
    message_id: Optional[int] = Field(default=None, foreign_key="message.id")


class SavedTemplate(SQLModel, table=True):
    """A message staff saved by name (subject and body with merge fields), to start new campaigns from."""

    __tablename__ = "saved_template"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=120)
    subject: str = Field(max_length=300)
    body: str = Field(sa_type=Text)
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class MessageVariant(SQLModel, table=True):
    """A message's words in one language (subject and body with merge fields), beside its default words.
    `owner` names what it belongs to ("campaign"; journeys' steps may add theirs) and `owner_id` which one."""

    __tablename__ = "message_variant"
    __table_args__ = (UniqueConstraint("owner", "owner_id", "language", name="uq_message_variant_owner_language"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    owner: str = Field(max_length=20)
    owner_id: int
    language: str = Field(max_length=12)
    subject: str = Field(max_length=300)
    body: str = Field(sa_type=Text)
    updated_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    updated_at: datetime = Field(default_factory=utcnow)
