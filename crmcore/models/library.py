"""Library structure, patrons and what they do: branches, zones, patrons, activity, consent, suppression."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Index, Text, text
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class Branch(SQLModel, table=True):
    __tablename__ = "branch"
    id: Optional[int] = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=40)
    name: str = Field(max_length=200)
    # The zone the branch stands in (an admin's choice): programs per capita by zone read it.
    zone_id: Optional[int] = Field(default=None, foreign_key="zone.id")


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


_LIVE = {"sqlite_where": text("erased_at IS NULL"), "postgresql_where": text("erased_at IS NULL")}  # a partial index of patrons not erased


class Patron(SQLModel, table=True):
    """A library patron as the ILS knows them; `ils_id` is the upsert key."""

    __tablename__ = "patron"
    __table_args__ = (
        Index("ix_patron_branch_type", "branch_id", "patron_type"),
        Index("ix_patron_branch_age", "branch_id", "age_band"),  # the dashboard's and segments' age band × branch
        Index("ix_patron_zone_last_activity", "zone_id", "last_activity_on"),
        Index("ix_patron_name", "last_name", "first_name"),  # directory search by name
        Index("ix_patron_phone", "phone"),  # directory search by phone
        Index("ix_patron_ils_last_activity", "ils_last_activity_on"),  # the summaries' months (kpis.summaries.window): a seek, not a scan
        # The few erased patrons, found without reading every patron (a journey's exits look for them daily).
        Index("ix_patron_erased", "id", postgresql_where=text("erased_at IS NOT NULL"), sqlite_where=text("erased_at IS NOT NULL")),
        # The standard segments' counts (campaigns.segments.STANDARD_SEGMENTS) read only these: partial (every
        # segment leaves erased patrons out) and covering (erased_at ends each key so that SQLite's planner sees
        # it), so a count never visits the patron rows. Migration 0021.
        Index("ix_patron_live_registered", "registered_on", "erased_at", **_LIVE),
        Index("ix_patron_live_zone_activity", "zone_id", "last_activity_on", "erased_at", postgresql_include=["id"], **_LIVE),
        Index("ix_patron_live_branch_age", "branch_id", "age_band", "birth_year", "erased_at", **_LIVE),
        Index("ix_patron_live_digital_loan", "last_digital_loan_month", "erased_at", **_LIVE),
        Index("ix_patron_live_checkout_event", "last_checkout_month", "last_event_attendance_month", "erased_at", **_LIVE),
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
    # The patron's own choices on their preference page, which no later import overrides: reading history
    # turned off, the interests on file cleared.
    history_stopped_by_patron: bool = False
    interests_cleared_by_patron: bool = False
    # What an export says when it carries no address: "has an email address" (an anonymised usage export).
    # None when the file did not say; a stored email address counts as yes wherever this is read.
    has_email: Optional[bool] = None
    # Lives in the library's service area (an export's "outside of county" turned round); None = not known.
    resident: Optional[bool] = None
    # Lifetime totals to date as the ILS counts them: distributions and segments, never monthly trends.
    lifetime_checkouts: Optional[int] = None
    lifetime_renewals: Optional[int] = None
    # The last activity the ILS reports (a date, or the first of a month); last_activity_on is the later
    # of this and what imported activity says.
    ils_last_activity_on: Optional[date] = None
    # From the ILS notice preference (how overdue and hold notices go): a channel, not a marketing opt-in.
    preferred_channel: Optional[str] = Field(default=None, max_length=10)
    # The patron's preferred language as a code (es, fr; crmcore.languages.codes), None when not known.
    language: Optional[str] = Field(default=None, max_length=12)
    # What the last import stated about consent ("email/services=1;…"): imports record a consent change
    # only when this changes (an edge), so an unchanged ILS value never re-grants what the patron withdrew.
    ils_consent: Optional[str] = Field(default=None, max_length=400)
    # Denormalised from activity by the code that writes activity, so segments and KPIs need no scan.
    first_activity_on: Optional[date] = None
    last_activity_on: Optional[date] = Field(default=None, index=True)
    # The first day of the last month with activity of each kind (crmcore.library.activity.KINDS), so that a
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


class CirculationMonthly(SQLModel, table=True):
    """Circulation counts without patrons (a title-level export with its titles dropped): month × branch × kind × material type."""

    __tablename__ = "circulation_monthly"
    month: date = Field(primary_key=True)  # first day of the month
    branch_id: int = Field(default=0, primary_key=True)  # 0 = unknown branch
    kind: str = Field(primary_key=True, max_length=30)
    material_type: str = Field(default="", primary_key=True, max_length=80)  # "" = not given
    count: int = 0


class CategoryTerm(SQLModel, table=True):
    """The controlled vocabulary of item categories (material types and genres): an admin-managed list.

    An activity's category and a circulation row's material type must be one of these, so a title can
    never be stored through a category field."""

    __tablename__ = "category_term"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=80)
    group: str = Field(default="genre", max_length=20)  # material or genre
    created_at: datetime = Field(default_factory=utcnow)


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
    # Who decided: "patron" (their own choice, by any route), "import" or "staff" (a bulk or staff action).
    # A patron's withdrawal stands against every later import and staff action (crmcore.library.consent).
    source_class: str = Field(default="staff", max_length=10)
    recorded_by_id: Optional[int] = Field(default=None, foreign_key="staff_user.id")  # staff recording a patron's request
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
    source_class: str = Field(default="staff", max_length=10)  # of the record that is current


class Suppression(SQLModel, table=True):
    """An address that must never be mailed again (hard bounce, erasure), kept only as a hash."""

    __tablename__ = "suppression"
    id: Optional[int] = Field(default=None, primary_key=True)
    email_hash: str = Field(unique=True, max_length=64)
    reason: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow)
