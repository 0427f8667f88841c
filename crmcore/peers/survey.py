"""The imported survey years and the library's own row (setting `peer_library_key`, an FSCS key)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, or_, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import LibrarySurveyRow

S = LibrarySurveyRow.__table__.c
COLUMNS = ["fiscal_year", "fscs_key", "name", "state", "locale", "population", "visits", "circulation", "e_circulation",
           "registered", "programs", "attendance", "expenditure", "branches"]


def years(session: Session, *, actor: Actor) -> list[int]:
    """The fiscal years imported, latest first."""
    require(actor, Perm.VIEW_DASHBOARD)
    return [r[0] for r in session.execute(select(S.fiscal_year).distinct().order_by(S.fiscal_year.desc()))]


def year_rows(session: Session, *, actor: Actor, year: int) -> pd.DataFrame:
    """Every library system of one survey year (what peers are chosen from)."""
    require(actor, Perm.VIEW_DASHBOARD)
    rows = session.execute(select(*(S[c] for c in COLUMNS)).where(S.fiscal_year == year).order_by(S.fscs_key)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=COLUMNS)


def library_rows(session: Session, *, actor: Actor, fscs_key: str) -> pd.DataFrame:
    """One library system over every imported year, earliest first (its trend)."""
    require(actor, Perm.VIEW_DASHBOARD)
    rows = session.execute(select(*(S[c] for c in COLUMNS)).where(S.fscs_key == fscs_key.strip().upper()).order_by(S.fiscal_year)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=COLUMNS)


def search(session: Session, *, actor: Actor, query: str, limit: int = 20) -> list[dict]:
    """Library systems whose FSCS key is `query` or whose name contains it (their latest year's row)."""
    require(actor, Perm.VIEW_DASHBOARD)
    text = " ".join(str(query or "").split())
    if not text:
        return []
    latest = select(S.fscs_key, func.max(S.fiscal_year).label("year")).group_by(S.fscs_key).subquery()
    rows = session.execute(
        select(S.fscs_key, S.name, S.state, S.population, S.fiscal_year)
        .join(latest, (latest.c.fscs_key == S.fscs_key) & (latest.c.year == S.fiscal_year))
        .where(or_(S.fscs_key == text.upper(), S.name.icontains(text, autoescape=True)))
        .order_by(S.name, S.fscs_key)
        .limit(limit)
    ).all()
    return [dict(r._mapping) for r in rows]


def own_key(session: Session) -> str:
    """The FSCS key of the library's own row ("" when not chosen)."""
    return settings.get(session, "peer_library_key")


def choose_own(session: Session, *, actor: Actor, fscs_key: str) -> str:
    """Make `fscs_key` the library's own row (an admin's choice); ValueError when no imported year has it."""
    require(actor, Perm.MANAGE_SETTINGS)
    key = str(fscs_key or "").strip().upper()
    if key and session.execute(select(S.fscs_key).where(S.fscs_key == key).limit(1)).first() is None:
        raise ValueError(f"No imported survey year has a library with the FSCS key {key}; import the survey file first or check the key.")
    return settings.put(session, actor=actor, key="peer_library_key", value=key)
