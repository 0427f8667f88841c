"""Prospects: people without a library card who signed up on the public form (double opt-in)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class Prospect(SQLModel, table=True):
    """One sign-up, by its address (lower case). Unconfirmed ones are deleted after 7 days; a confirmed one is
    linked to the patron when the same address arrives in a patron import."""

    __tablename__ = "prospect"
    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=254)
    name: Optional[str] = Field(default=None, max_length=120)
    branch_id: Optional[int] = Field(default=None, foreign_key="branch.id")
    postal_code: Optional[str] = Field(default=None, max_length=20)
    # The topics asked for on the form, comma-separated: granted only when the link is followed.
    topics: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    confirmed_at: Optional[datetime] = Field(default=None, index=True)
    patron_id: Optional[int] = Field(default=None, foreign_key="patron.id")
    linked_at: Optional[datetime] = None


class ProspectConsent(SQLModel, table=True):
    """A confirmed prospect's own word on email about one topic (granted on confirmation, withdrawn by
    unsubscribing); carried to the patron's consent record, source kept, when linked."""

    __tablename__ = "prospect_consent"
    prospect_id: int = Field(foreign_key="prospect.id", primary_key=True)
    topic: str = Field(primary_key=True, max_length=30)
    granted: bool
    updated_at: datetime = Field(default_factory=utcnow)
    source: str = Field(max_length=200)


class SignupAttempt(SQLModel, table=True):
    """One post of the sign-up form, by a hash of the client's address: the rate limit reads the last hour."""

    __tablename__ = "signup_attempt"
    __table_args__ = (Index("ix_signup_attempt_client_at", "client_hash", "at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    client_hash: str = Field(max_length=64)
    at: datetime = Field(default_factory=utcnow)
