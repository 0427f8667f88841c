"""Circulation trends: the imported circulation counts (no patrons) by month, per material type or per branch.

These are counts of loans, not of people, so no small-cell suppression applies: no patron is in them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.kpis.dashboard import Chart
from crmcore.models import Branch, CirculationMonthly

BY = {"material_type": "material type", "branch": "branch"}
UNKNOWN_BRANCH, NO_MATERIAL = "(branch unknown)", "(material type not given)"
_cells = CirculationMonthly.__table__


@dataclass(frozen=True)
class CirculationOptions:
    months: list[date]  # months with circulation counts, newest first
    kinds: list[str]  # kinds counted


def circulation_options(session: Session, *, actor: Actor) -> CirculationOptions:
    """The months and kinds the imported circulation counts cover (empty when none were imported)."""
    require(actor, Perm.VIEW_DASHBOARD)
    months = [m for (m,) in session.execute(select(_cells.c.month).distinct().order_by(_cells.c.month.desc()))]
    kinds = [k for (k,) in session.execute(select(_cells.c.kind).distinct().order_by(_cells.c.kind))]
    return CirculationOptions(months, kinds)


def circulation_trends(session: Session, *, actor: Actor, first: date, last: date, by: str = "material_type", kind: str | None = None) -> Chart:
    """Monthly circulation from `first` to `last` (months), one series per material type or per branch; every
    month of the period is there for every series (0 when nothing was counted), so a gap never reads as a line."""
    require(actor, Perm.VIEW_DASHBOARD)
    if by not in BY:
        raise ValueError(f"Circulation is shown by {' or by '.join(BY.values())}.")
    first, last = min(first, last).replace(day=1), max(first, last).replace(day=1)
    group = _cells.c.material_type if by == "material_type" else _cells.c.branch_id
    query = (
        select(_cells.c.month, group, func.sum(_cells.c.count))
        .where(_cells.c.month >= first, _cells.c.month <= last)
        .group_by(_cells.c.month, group)
    )
    if kind is not None:
        query = query.where(_cells.c.kind == kind)
    rows = session.execute(query).all()
    if by == "branch":
        names = dict(session.execute(select(Branch.id, func.coalesce(Branch.name, Branch.code))).all())
        label = lambda value: names.get(value) or UNKNOWN_BRANCH  # noqa: E731
    else:
        label = lambda value: value or NO_MATERIAL  # noqa: E731
    counted = pd.DataFrame([(m, label(g), int(n)) for m, g, n in rows], columns=["month", BY[by], "count"])
    counted = counted.groupby(["month", BY[by]], as_index=False)["count"].sum()  # two branches may share a name
    months = pd.Series(pd.date_range(first, last, freq="MS").date, name="month")
    series = pd.Series(sorted(counted[BY[by]].unique()), name=BY[by])
    frame = pd.merge(months.to_frame(), series.to_frame(), how="cross").merge(counted, how="left", on=["month", BY[by]])
    frame["count"] = frame["count"].fillna(0).astype(int)
    what = "all kinds" if kind is None else kind.replace("_", " ") + "s"
    caption = (
        f"Circulation ({what}) per month and {BY[by]}: the sum of the circulation counts imported "
        "(Imports → Circulation counts: a title-level or statistics export with its titles dropped), "
        f"{first:%B %Y} – {last:%B %Y}. Counts of loans, not of patrons; a month with no count for a "
        f"{BY[by]} shows 0. Not the same source as the activity trends (activity with a patron)."
    )
    return Chart("circulation", f"Circulation by {BY[by]}", caption, frame.sort_values([BY[by], "month"], ignore_index=True))
