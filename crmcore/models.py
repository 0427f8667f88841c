"""All table models of Liaison, in one place (avoids circular imports).

Conventions: integer surrogate keys, timezone-aware UTC datetimes, dates as `date`, codes and enumerations as
short strings checked in the service layer. Indexes are the ones the dashboards, segments, imports and
the worker query by.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (how every timestamp is stored)."""
    return datetime.now(timezone.utc)


# --- Library structure -------------------------------------------------------------------------


class Branch(SQLModel, table=True):
    __tablename__ = "branch"
    id: Optional[int] = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=40)
    name: str = Field(max_length=200)


class Zone(SQLModel, table=True):
    """A service-area zone (ZIP, tract or district) with census figures."""

    __tablename__ = "zone"
    id: Optional[int] = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=40)
    name: str = Field(max_length=200)
    population: Optional[int] = None
    households: Optional[int] = None
    median_income: Optional[int] = None
    census: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)
    geojson: Optional[str] = Field(default=None, sa_type=Text)


# --- Patrons and what they do -------------------------------------------------------------------


class Patron(SQLModel, table=True):
    """A library patron as the ILS knows them; `ils_id` is the upsert key."""

    __tablename__ = "patron"
    __table_args__ = (
        Index("ix_patron_branch_type", "branch_id", "patron_type"),
        Index("ix_patron_branch_age", "branch_id", "age_band"),  # the dashboard's and segments' age band × branch
        Index("ix_patron_zone_last_activity", "zone_id", "last_activity_on"),
        Index("ix_patron_name", "last_name", "first_name"),  # directory search by name
        Index("ix_patron_phone", "phone"),  # directory search by phone
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    ils_id: str = Field(unique=True, max_length=64)
    first_name: Optional[str] = Field(default=None, max_length=120)
    last_name: Optional[str] = Field(default=None, max_length=120)
    email: Optional[str] = Field(default=None, max_length=254, index=True)
    phone: Optional[str] = Field(default=None, max_length=40)
    birth_year: Optional[int] = None
    age_band: Optional[str] = Field(default=None, max_length=20)
    zone_id: Optional[int] = Field(default=None, foreign_key="zone.id")
    branch_id: Optional[int] = Field(default=None, foreign_key="branch.id")
    patron_type: Optional[str] = Field(default=None, max_length=40)
    registered_on: Optional[date] = Field(default=None, index=True)
    expires_on: Optional[date] = Field(default=None, index=True)
    interests: Optional[str] = Field(default=None, max_length=500)
    history_opt_in: bool = False
    # Denormalised from activity by the code that writes activity, so segments and KPIs need no scan.
    first_activity_on: Optional[date] = None
    last_activity_on: Optional[date] = Field(default=None, index=True)
    # The first day of the last month with activity of each kind (crmcore.activity.KINDS), so that a
    # segment asking "did X since …" or "never did X" reads one column instead of the monthly rollups.
    last_checkout_month: Optional[date] = None
    last_renewal_month: Optional[date] = None
    last_digital_loan_month: Optional[date] = None
    last_pc_session_month: Optional[date] = None
    last_event_attendance_month: Optional[date] = None
    last_visit_month: Optional[date] = None
    last_survey_response_month: Optional[date] = None
    # Hash of the imported field values: an unchanged row on re-import is not rewritten.
    row_hash: Optional[str] = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    erased_at: Optional[datetime] = None


class ActivityEvent(SQLModel, table=True):
    """One raw use of the library. Never a title; a category only for history opt-in patrons."""

    __tablename__ = "activity_event"
    __table_args__ = (
        Index("ix_activity_patron_date", "patron_id", "occurred_on"),
        Index("ix_activity_date_kind", "occurred_on", "kind"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    patron_id: int = Field(foreign_key="patron.id")
    occurred_on: date
    kind: str = Field(max_length=30)
    branch_id: Optional[int] = Field(default=None, foreign_key="branch.id")
    count: int = 1
    category: Optional[str] = Field(default=None, max_length=80)
    # Identifies the source row of an import so that re-importing the same file adds nothing.
    ext_key: Optional[int] = Field(default=None, sa_type=BigInteger, unique=True)


class ActivityMonthly(SQLModel, table=True):
    """Monthly per-patron activity counts: what KPIs read, and what outlives retention."""

    __tablename__ = "activity_monthly"
    __table_args__ = (
        Index("ix_activity_monthly_month_kind", "month", "kind"),
        # Segments: "patrons with activity of a kind (in a window)" read this index alone; patron_id before
        # month so that correlated look-ups (patron_id = ? AND kind = ?) seek on both.
        Index("ix_activity_monthly_kind_patron_month", "kind", "patron_id", "month"),
    )
    patron_id: int = Field(foreign_key="patron.id", primary_key=True)
    month: date = Field(primary_key=True)  # first day of the month
    kind: str = Field(primary_key=True, max_length=30)
    branch_id: int = Field(default=0, primary_key=True)  # 0 = unknown branch
    count: int = 0


class ConsentRecord(SQLModel, table=True):
    """Append-only consent history per patron × channel × topic; the latest record is current."""

    __tablename__ = "consent_record"
    __table_args__ = (Index("ix_consent_patron_channel_topic", "patron_id", "channel", "topic", "recorded_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    patron_id: int = Field(foreign_key="patron.id")
    channel: str = Field(max_length=10)
    topic: str = Field(max_length=30)
    granted: bool
    recorded_at: datetime = Field(default_factory=utcnow)
    source: str = Field(max_length=200)
    wording_version: Optional[str] = Field(default=None, max_length=40)


class CurrentConsent(SQLModel, table=True):
    """The latest consent record per patron × channel × topic, kept by `consent.record_consent`."""

    __tablename__ = "current_consent"
    # Covers "who consents to channel × topic" (segments, launches) without reading the table.
    __table_args__ = (Index("ix_current_consent_channel_topic", "channel", "topic", "granted", "patron_id"),)
    patron_id: int = Field(foreign_key="patron.id", primary_key=True)
    channel: str = Field(primary_key=True, max_length=10)
    topic: str = Field(primary_key=True, max_length=30)
    granted: bool
    updated_at: datetime = Field(default_factory=utcnow)


class Suppression(SQLModel, table=True):
    """An address that must never be mailed again (hard bounce, erasure), kept only as a hash."""

    __tablename__ = "suppression"
    id: Optional[int] = Field(default=None, primary_key=True)
    email_hash: str = Field(unique=True, max_length=64)
    reason: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow)


# --- Community outreach --------------------------------------------------------------------------


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


class CalendarFeed(SQLModel, table=True):
    """A staff member's secret-token iCalendar feed of follow-ups and outreach events."""

    __tablename__ = "calendar_feed"
    staff_id: int = Field(foreign_key="staff_user.id", primary_key=True)
    token: str = Field(unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


# --- Dashboard summaries (rebuilt by crmcore.kpis.refresh_summaries; 0 / "" = unknown) --------------


class DashState(SQLModel, table=True):
    """Patrons per lifecycle state at the end of each month, by home branch, zone, type and age band."""

    __tablename__ = "dash_state"
    month: date = Field(primary_key=True)
    branch_id: int = Field(default=0, primary_key=True)
    zone_id: int = Field(default=0, primary_key=True)
    patron_type: str = Field(default="", primary_key=True, max_length=40)
    age_band: str = Field(default="", primary_key=True, max_length=20)
    state: str = Field(primary_key=True, max_length=16)
    patrons: int = 0


class DashFlow(SQLModel, table=True):
    """Patrons moving from one lifecycle state `lag` months before `month` to another at `month`."""

    __tablename__ = "dash_flow"
    month: date = Field(primary_key=True)
    lag: int = Field(primary_key=True)
    branch_id: int = Field(default=0, primary_key=True)
    zone_id: int = Field(default=0, primary_key=True)
    patron_type: str = Field(default="", primary_key=True, max_length=40)
    from_state: str = Field(primary_key=True, max_length=16)
    to_state: str = Field(primary_key=True, max_length=16)
    patrons: int = 0


class DashActivity(SQLModel, table=True):
    """Activity per month × kind by the patrons' home branch, zone and type: events and distinct patrons."""

    __tablename__ = "dash_activity"
    month: date = Field(primary_key=True)
    kind: str = Field(primary_key=True, max_length=30)
    branch_id: int = Field(default=0, primary_key=True)
    zone_id: int = Field(default=0, primary_key=True)
    patron_type: str = Field(default="", primary_key=True, max_length=40)
    events: int = 0
    patrons: int = 0


class DashRegistration(SQLModel, table=True):
    """New registrations per month by home branch, zone, type and age band."""

    __tablename__ = "dash_registration"
    month: date = Field(primary_key=True)
    branch_id: int = Field(default=0, primary_key=True)
    zone_id: int = Field(default=0, primary_key=True)
    patron_type: str = Field(default="", primary_key=True, max_length=40)
    age_band: str = Field(default="", primary_key=True, max_length=20)
    patrons: int = 0


class DashCohort(SQLModel, table=True):
    """Patrons registered in `cohort_month` with any activity in `month`."""

    __tablename__ = "dash_cohort"
    cohort_month: date = Field(primary_key=True)
    month: date = Field(primary_key=True)
    branch_id: int = Field(default=0, primary_key=True)
    zone_id: int = Field(default=0, primary_key=True)
    patron_type: str = Field(default="", primary_key=True, max_length=40)
    patrons: int = 0


# --- Segments and campaigns ----------------------------------------------------------------------


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
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    segment_id: Optional[int] = Field(default=None, foreign_key="segment.id")
    channel: str = Field(default="email", max_length=10)
    topic: str = Field(max_length=30)
    subject_template: str = Field(max_length=300)
    body_template: str = Field(sa_type=Text)
    # draft → scheduled → sending → sent; or cancelled
    status: str = Field(default="draft", max_length=20, index=True)
    holdout_pct: float = 10.0
    scheduled_at: Optional[datetime] = None
    launched_at: Optional[datetime] = None
    launched_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    launch_summary: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)
    created_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    """One recipient of a launched campaign (or a holdout member, who is sent nothing)."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("campaign_id", "patron_id", name="uq_message_campaign_patron"),
        Index("ix_message_status_lease", "status", "lease_expires_at"),
        Index("ix_message_patron_sent", "patron_id", "sent_at"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    patron_id: Optional[int] = Field(default=None, foreign_key="patron.id")  # null once erased
    # queued → sending → sent | failed | unknown; holdout; skipped (consent gone); cancelled
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


# --- Staff, audit, imports, settings -------------------------------------------------------------


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"
    id: Optional[int] = Field(default=None, primary_key=True)
    username: str = Field(unique=True, max_length=80)
    display_name: Optional[str] = Field(default=None, max_length=120)
    email: Optional[str] = Field(default=None, max_length=254)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=200)
    is_active: bool = True
    failed_attempts: int = 0
    locked_until: Optional[datetime] = None
    last_login_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)


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
