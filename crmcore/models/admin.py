"""Staff, audit, imports and settings."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


def new_epoch() -> str:
    return secrets.token_hex(16)


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"
    id: Optional[int] = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=80)
    display_name: Optional[str] = Field(default=None, max_length=120)
    email: Optional[str] = Field(default=None, max_length=254)
    phone: Optional[str] = Field(default=None, max_length=32)  # E.164, set on My account: where test texts go
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=200)
    is_active: bool = True
    failed_attempts: int = 0
    locked_until: Optional[datetime] = None
    last_login_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)
    # Changes on every password change, disable, role change and restore: sessions of the old one end.
    session_epoch: str = Field(default_factory=new_epoch, max_length=32)


class StaffSession(SQLModel, table=True):
    """A staff member's signed-in session: one per sign-in, shared by the tabs of one browser (its cookie).

    Bound to the account, not only its id: it holds only while the account's username and session epoch
    are those it was started with. The cookie's token and the one-use ticket that sets it are kept hashed."""

    __tablename__ = "staff_session"
    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    username: str = Field(max_length=80)
    epoch: str = Field(max_length=32)
    token_hash: Optional[str] = Field(default=None, max_length=64, unique=True)
    ticket_hash: Optional[str] = Field(default=None, max_length=64, unique=True)
    started_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    ended_at: Optional[datetime] = None


class AuditLog(SQLModel, table=True):
    """Who did what, when. Append-only from the app."""

    __tablename__ = "audit_log"
    id: Optional[int] = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    actor_name: Optional[str] = Field(default=None, max_length=80)
    action: str = Field(max_length=60, index=True)
    entity: Optional[str] = Field(default=None, max_length=40)
    entity_id: Optional[str] = Field(default=None, max_length=64)
    detail: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)


class ProgramEvent(SQLModel, table=True):
    """A library program (event) with its registrations and attendance, as an events system exports it."""

    __tablename__ = "program_event"
    id: Optional[int] = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=64)  # the events system's id: the upsert key
    title: Optional[str] = Field(default=None, max_length=300)
    held_on: date = Field(index=True)
    branch_id: Optional[int] = Field(default=None, foreign_key="branch.id")
    categories: Optional[str] = Field(default=None, max_length=300)
    audiences: Optional[str] = Field(default=None, max_length=300)
    registrations: Optional[int] = None
    attendance_in_person: Optional[int] = None
    attendance_online: Optional[int] = None
    row_hash: Optional[str] = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ProgramLabel(SQLModel, table=True):
    """One category or audience of a program: a cell "Adults, Seniors" gives two rows."""

    __tablename__ = "program_label"
    __table_args__ = (Index("ix_program_label_kind_label", "kind", "label"),)
    program_id: int = Field(foreign_key="program_event.id", primary_key=True)
    kind: str = Field(primary_key=True, max_length=10)  # category or audience
    label: str = Field(primary_key=True, max_length=120)


class ImportRun(SQLModel, table=True):
    __tablename__ = "import_run"
    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    file_name: str = Field(max_length=300)
    file_hash: str = Field(max_length=64, index=True)
    actor_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    dry_run: bool = False
    status: str = Field(default="running", max_length=20)  # running, done, failed
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None
    rows_total: int = 0
    rows_new: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_rejected: int = 0
    mapping: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)
    error: Optional[str] = Field(default=None, max_length=1000)


class ImportMapping(SQLModel, table=True):
    """A saved column mapping, reused for the next file of the same kind."""

    __tablename__ = "import_mapping"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_import_mapping_kind_name"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    name: str = Field(max_length=120)
    mapping: dict[str, Any] = Field(sa_type=JSON)
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)


class Setting(SQLModel, table=True):
    __tablename__ = "setting"
    key: str = Field(primary_key=True, max_length=60)
    value: Any = Field(sa_type=JSON)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")


class Download(SQLModel, table=True):
    """A file holding personal data, offered to one staff member through a one-use link that expires
    within a minute (never through a URL that outlives the request, as Streamlit's media files do)."""

    __tablename__ = "download"
    token_hash: str = Field(primary_key=True, max_length=64)
    staff_id: int = Field(foreign_key="staff_user.id")
    file_name: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    data: bytes = Field(sa_type=LargeBinary)
    expires_at: datetime
