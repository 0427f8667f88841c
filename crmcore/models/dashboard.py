"""The dashboard's summary tables (rebuilt by crmcore.kpis.refresh_summaries; 0 / "" = unknown)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Field, SQLModel

# On SQLite a summary is stored in its key's order (WITHOUT ROWID): the dashboard reads a month as one range.
_CLUSTERED = {"sqlite_with_rowid": False}


class DashState(SQLModel, table=True):
    """Patrons per lifecycle state at the end of each month, by home branch, zone, type and age band."""

    __tablename__ = "dash_state"
    __table_args__ = _CLUSTERED
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
    __table_args__ = _CLUSTERED
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
    __table_args__ = _CLUSTERED
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
    __table_args__ = _CLUSTERED
    month: date = Field(primary_key=True)
    branch_id: int = Field(default=0, primary_key=True)
    zone_id: int = Field(default=0, primary_key=True)
    patron_type: str = Field(default="", primary_key=True, max_length=40)
    age_band: str = Field(default="", primary_key=True, max_length=20)
    patrons: int = 0


class DashCohort(SQLModel, table=True):
    """Patrons registered in `cohort_month` with any activity in `month`."""

    __tablename__ = "dash_cohort"
    __table_args__ = _CLUSTERED
    cohort_month: date = Field(primary_key=True)
    month: date = Field(primary_key=True)
    branch_id: int = Field(default=0, primary_key=True)
    zone_id: int = Field(default=0, primary_key=True)
    patron_type: str = Field(default="", primary_key=True, max_length=40)
    patrons: int = 0


class DashWindow(SQLModel, table=True):
    """The months the stored summaries cover (one row, id 1). A change to a few patrons is followed incrementally
    only while the months to summarise are still these; no row: the summaries need a full rebuild."""

    __tablename__ = "dash_window"
    id: int = Field(default=1, primary_key=True)
    first_month: date
    last_month: date
