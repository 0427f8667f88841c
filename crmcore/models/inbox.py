"""Requests from patrons and partners: the shared inbox's topics, requests, their threads and canned replies."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class RequestTopic(SQLModel, table=True):
    """What a request is about; its response target sets a new request's due time."""

    __tablename__ = "request_topic"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=60)
    target_hours: int = 48
    active: bool = True


class Request(SQLModel, table=True):
    """One request: who asked (matched by e-mail to a patron or a community contact, or not yet known), about
    what, where, its state and owner, and when it is due."""

    __tablename__ = "request"
    __table_args__ = (Index("ix_request_queue", "status", "due_at"), Index("ix_request_owner", "owner_id", "status"))
    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)  # email | form | phone | desk
    subject: str = Field(max_length=300)
    requester_name: Optional[str] = Field(default=None, max_length=200)
    requester_email: Optional[str] = Field(default=None, max_length=254, index=True)
    patron_id: Optional[int] = Field(default=None, foreign_key="patron.id", index=True)
    contact_id: Optional[int] = Field(default=None, foreign_key="contact.id", index=True)
    topic_id: Optional[int] = Field(default=None, foreign_key="request_topic.id")
    branch_id: Optional[int] = Field(default=None, foreign_key="branch.id")
    status: str = Field(default="new", max_length=20)  # new | open | waiting | done
    owner_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    due_at: datetime
    first_response_at: Optional[datetime] = None
    closed_at: Optional[datetime] = Field(default=None, index=True)


class RequestEntry(SQLModel, table=True):
    """One entry of a request's thread: a message from the requester, a reply sent, or an internal note."""

    __tablename__ = "request_entry"
    id: Optional[int] = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="request.id", index=True)
    kind: str = Field(max_length=20)  # incoming | reply | note
    at: datetime = Field(default_factory=utcnow)
    author_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    body: str = Field(sa_type=Text)
    remark: Optional[str] = Field(default=None, max_length=500)  # what the library did with it (attachments not kept, no text part)


class CannedReply(SQLModel, table=True):
    """A reply staff saved by name to start answers from."""

    __tablename__ = "canned_reply"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=120)
    body: str = Field(sa_type=Text)
