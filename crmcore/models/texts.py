"""Text messages: the do-not-text list and the texts patrons send in (keywords)."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class DoNotText(SQLModel, table=True):
    """A number that must never be texted again (a permanent delivery failure, an erasure), kept only as a hash."""

    __tablename__ = "do_not_text"
    id: Optional[int] = Field(default=None, primary_key=True)
    phone_hash: str = Field(unique=True, max_length=64)
    reason: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow)


class InboundText(SQLModel, table=True):
    """One text that reached the app from the gateway: its keyword and what was done (no number, no body)."""

    __tablename__ = "inbound_text"
    id: Optional[int] = Field(default=None, primary_key=True)
    received_at: datetime = Field(default_factory=utcnow, index=True)
    keyword: str = Field(max_length=20)  # stop | start | help | unknown
    outcome: str = Field(max_length=300)
