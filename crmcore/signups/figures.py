"""Sign-up figures for the dashboard: sign-ups per month and the share confirmed, small cells suppressed."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.kpis.summaries import month_start
from crmcore.models import Prospect
from crmcore.privacy import small_cells

COLUMNS = ["month", "sign-ups", "confirmed", "confirmed %"]


def by_month(session: Session, *, actor: Actor) -> pd.DataFrame:
    """One row per month with sign-ups (kept ones: unconfirmed sign-ups are deleted after 7 days): how many
    signed up, how many confirmed, and the share. A month of fewer than k sign-ups, or fewer than k confirmed
    or unconfirmed, shows "<k" for what could single someone out."""
    require(actor, Perm.VIEW_DASHBOARD)
    k = int(settings.get(session, "small_cell_k"))
    month = month_start(Prospect.created_at)
    rows = session.execute(select(month, func.count(), func.count(Prospect.confirmed_at)).group_by(month).order_by(month)).all()
    out = []
    for when, total, confirmed in rows:
        small = small_cells.is_small(total, k) or small_cells.is_small(confirmed, k) or small_cells.is_small(total - confirmed, k)
        out.append({
            "month": pd.Timestamp(when).date(), "sign-ups": small_cells.count(total, k),
            "confirmed": small_cells.label(k) if small else confirmed,
            "confirmed %": small_cells.label(k) if small else round(100 * confirmed / total, 1),
        })
    return pd.DataFrame(out, columns=COLUMNS)
