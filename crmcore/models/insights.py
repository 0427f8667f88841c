"""Knowing where the library stands: survey rows of peer libraries, behaviour personas and lapse-risk scores."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, Index
from sqlmodel import Field, SQLModel

from crmcore.models.base import utcnow


class LibrarySurveyRow(SQLModel, table=True):
    """One administrative entity (library system) of the IMLS Public Libraries Survey in one fiscal year.

    None = the survey's missing / not applicable codes (-1, -3, -4, -9) or a column the file lacked."""

    __tablename__ = "library_survey_row"
    __table_args__ = (Index("ix_library_survey_state_year", "state", "fiscal_year"),)
    fiscal_year: int = Field(primary_key=True)
    fscs_key: str = Field(primary_key=True, max_length=10)
    name: str = Field(max_length=200)
    state: Optional[str] = Field(default=None, max_length=4)
    locale: Optional[str] = Field(default=None, max_length=4)
    population: Optional[int] = Field(default=None, sa_type=BigInteger)
    visits: Optional[int] = Field(default=None, sa_type=BigInteger)
    circulation: Optional[int] = Field(default=None, sa_type=BigInteger)
    e_circulation: Optional[int] = Field(default=None, sa_type=BigInteger)
    registered: Optional[int] = Field(default=None, sa_type=BigInteger)
    programs: Optional[int] = Field(default=None, sa_type=BigInteger)
    attendance: Optional[int] = Field(default=None, sa_type=BigInteger)
    expenditure: Optional[int] = Field(default=None, sa_type=BigInteger)
    branches: Optional[int] = None
    imported_at: datetime = Field(default_factory=utcnow)


class Persona(SQLModel, table=True):
    """A behaviour cluster of the last computation, described in plain words from its centre."""

    __tablename__ = "persona"
    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    size: int = 0
    centre: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)  # feature → value, in plain units
    computed_at: datetime = Field(default_factory=utcnow)


class PatronInsight(SQLModel, table=True):
    """A patron's persona and lapse risk, recomputed weekly from the monthly rollups; erased with the patron."""

    __tablename__ = "patron_insight"
    __table_args__ = (Index("ix_patron_insight_persona", "persona_id"), Index("ix_patron_insight_risk", "lapse_risk"))
    patron_id: int = Field(foreign_key="patron.id", primary_key=True)
    persona_id: Optional[int] = Field(default=None, foreign_key="persona.id")
    lapse_risk: Optional[float] = None  # probability of no activity in the next 6 months, 0–1
    computed_at: datetime = Field(default_factory=utcnow)


class InsightRun(SQLModel, table=True):
    """How a model was last computed: k and silhouette of the personas; AUC and months of the lapse risk."""

    __tablename__ = "insight_run"
    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20, index=True)  # personas or lapse_risk
    computed_at: datetime = Field(default_factory=utcnow)
    details: Optional[dict[str, Any]] = Field(default=None, sa_type=JSON)
