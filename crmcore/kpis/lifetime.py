"""Lifetime totals on the dashboard: patrons by their lifetime checkouts (or renewals) to date, in bands,
resident or not. These totals are what the ILS reported at the last patron import, whole lifetimes: they
are shown as distributions only, never spread over months or added to activity trends.

Read from the patron table on demand (the page asks for them; they are not part of `dashboard_data`),
small cells suppressed like every other patron count.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import case, func, literal_column, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.kpis.figures import Filters
from crmcore.models import Patron
from crmcore.privacy import small_cells

# (lowest total in the band, its label); each band runs up to the next one's lowest minus one.
BANDS = ((0, "0"), (1, "1–4"), (5, "5–9"), (10, "10–24"), (25, "25–49"), (50, "50–99"), (100, "100–249"), (250, "250+"))
RESIDENCE = {1: "resident", 0: "non-resident", -1: "residence unknown"}
COLUMNS = {"checkouts": Patron.lifetime_checkouts, "renewals": Patron.lifetime_renewals}


@dataclass(frozen=True)
class Distribution:
    key: str  # checkouts or renewals
    title: str
    caption: str
    frame: pd.DataFrame  # band, then one column per residence: suppressed, what is shown and downloaded
    patrons: object  # patrons with a lifetime total ("<k" when small)


def _band_number(column):
    """The band as a number, in constant SQL (bound values would differ between SELECT and GROUP BY)."""
    whens = [(column < literal_column(str(low)), literal_column(str(i - 1))) for i, (low, _label) in enumerate(BANDS) if i]
    return case(*whens, else_=literal_column(str(len(BANDS) - 1)))


def _where(filters: Filters) -> list:
    conditions = [Patron.erased_at.is_(None)]
    for column, values in ((Patron.branch_id, filters.branch_ids), (Patron.zone_id, filters.zone_ids)):
        if values:
            known = column.in_([v for v in values if v])
            conditions.append(known | column.is_(None) if 0 in values else known)
    if filters.patron_types:
        conditions.append(Patron.patron_type.in_(filters.patron_types))
    return conditions


def lifetime_bands(session: Session, *, filters: Filters, kind: str) -> pd.DataFrame:
    """Lifetime checkouts (or renewals): patrons by their lifetime total to date, as the ILS reported it at the
    last import, in bands (0, 1–4, 5–9, 10–24, 25–49, 50–99, 100–249, 250+) and by whether they live in the
    service area (patrons without a total are left out; not limited to the period: a total has no month)."""
    column = COLUMNS[kind]
    band = _band_number(column)
    resident = case((Patron.resident.is_(True), literal_column("1")), (Patron.resident.is_(False), literal_column("0")), else_=literal_column("-1"))
    rows = session.execute(select(band, resident, func.count()).where(column.is_not(None), *_where(filters)).group_by(band, resident)).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["band", "residence", "patrons"])
    grid = frame.pivot_table(index="band", columns="residence", values="patrons", aggfunc="sum", fill_value=0) if len(frame) else pd.DataFrame()
    if grid.empty:
        return pd.DataFrame(columns=["band"])
    grid = grid.reindex(range(len(BANDS)), fill_value=0)
    grid = grid[[r for r in RESIDENCE if r in grid.columns]].rename(columns=RESIDENCE)
    grid.index = [BANDS[i][1] for i in grid.index]
    grid.columns.name = None
    return grid.rename_axis("band").astype(int)


def lifetime_distributions(session: Session, *, actor: Actor, filters: Filters) -> list[Distribution]:
    """The lifetime checkouts and renewals distributions for `filters`, small cells suppressed (none when no
    patron has lifetime totals)."""
    require(actor, Perm.VIEW_DASHBOARD)
    k = int(settings.get(session, "small_cell_k"))
    out = []
    for kind in COLUMNS:
        grid = lifetime_bands(session, filters=filters, kind=kind)
        if grid.empty:
            continue
        total = int(grid.to_numpy().sum())
        shown = small_cells.suppress_grid(grid, k).reset_index()
        doc = " ".join((lifetime_bands.__doc__ or "").split()).replace("Lifetime checkouts (or renewals)", f"Lifetime {kind}")
        out.append(Distribution(kind, f"Patrons by lifetime {kind}", doc, shown, small_cells.count(total, k)))
    return out
