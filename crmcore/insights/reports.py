"""What the Personas page and the dashboard show: personas with their sizes by branch and zone, and the lapse
risk with its validation — every patron count small-cell suppressed."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import case, func, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Branch, InsightRun, Patron, PatronInsight, Persona, Zone
from crmcore.privacy import small_cells

_pi = PatronInsight.__table__.c
_p = Patron.__table__.c
RISK_BANDS = ((0.0, 0.25, "under 25 %"), (0.25, 0.5, "25–50 %"), (0.5, 0.75, "50–75 %"), (0.75, 1.01, "75 % or more"))


def last_run(session: Session, kind: str) -> dict | None:
    """The latest computation of `kind` (personas, lapse_risk): when and its details."""
    row = session.execute(select(InsightRun.computed_at, InsightRun.details).where(InsightRun.kind == kind).order_by(InsightRun.id.desc()).limit(1)).first()
    return None if row is None else {"computed_at": row.computed_at, **(row.details or {})}


def personas(session: Session, *, actor: Actor) -> dict:
    """The personas (name, patrons suppressed), how k was chosen and when."""
    require(actor, Perm.VIEW_DASHBOARD)
    k = settings.get(session, "small_cell_k")
    rows = session.execute(select(Persona.name, Persona.size).order_by(Persona.size.desc(), Persona.name)).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["persona", "patrons"])
    return {"table": small_cells.suppress_column(frame, k, sizes="patrons"), "run": last_run(session, "personas")}


def persona_places(session: Session, *, actor: Actor, by: str) -> pd.DataFrame:
    """Patrons of each persona (rows) by home branch or zone (columns), suppressed with their totals."""
    require(actor, Perm.VIEW_DASHBOARD)
    if by not in ("branch", "zone"):
        raise ValueError(f"Personas are shown by branch or by zone, not {by!r}.")
    place = Branch if by == "branch" else Zone
    column = _p.branch_id if by == "branch" else _p.zone_id
    name = func.coalesce(place.name, "unknown")
    rows = session.execute(
        select(Persona.name, name, func.count())
        .select_from(PatronInsight.__table__)
        .join(Persona, Persona.id == _pi.persona_id)
        .join(Patron.__table__, _p.id == _pi.patron_id)
        .outerjoin(place, place.id == column)
        .group_by(Persona.name, name)
    ).all()
    grid = pd.DataFrame([tuple(r) for r in rows], columns=["persona", "place", "patrons"]).pivot_table(index="persona", columns="place", values="patrons", aggfunc="sum", fill_value=0)
    grid.columns.name = None
    return small_cells.suppress_grid(grid.astype(int), settings.get(session, "small_cell_k")).reset_index()


def lapse_risk(session: Session, *, actor: Actor) -> dict:
    """Whether lapse risk is on, its validation (AUC on held-out months), weights and patrons per risk band (suppressed)."""
    require(actor, Perm.VIEW_DASHBOARD)
    on = bool(settings.get(session, "lapse_risk_enabled"))
    k = settings.get(session, "small_cell_k")
    band = case(*((_pi.lapse_risk < high, label) for _low, high, label in RISK_BANDS), else_=RISK_BANDS[-1][2])
    counted = dict(session.execute(select(band, func.count()).where(_pi.lapse_risk.is_not(None)).group_by(band)).all()) if on else {}
    frame = pd.DataFrame({"risk": [b[2] for b in RISK_BANDS], "patrons": [int(counted.get(b[2], 0)) for b in RISK_BANDS]})
    return {"enabled": on, "run": last_run(session, "lapse_risk") if on else None, "bands": small_cells.suppress_column(frame, k, sizes="patrons", complement=True)}
