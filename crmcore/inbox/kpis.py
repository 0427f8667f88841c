"""Request KPIs: requests per week by topic and by branch, median hours to the first response and to
resolution, and the share answered within the topic's target — groups of fewer than k requests suppressed.

Requests number in the thousands, not millions: the period's requests are read as timings and codes only
(no requester, no text) and the medians computed from them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Branch, Request, RequestTopic
from crmcore.privacy import small_cells


def _utc(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def _hours(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (pd.to_datetime(later, utc=True) - pd.to_datetime(earlier, utc=True)).dt.total_seconds() / 3600


def request_kpis(session: Session, *, actor: Actor, date_from: date, date_to: date) -> dict[str, Any]:
    """Figures for requests that arrived between `date_from` and `date_to` (inclusive)."""
    require(actor, Perm.VIEW_DASHBOARD)
    if date_to < date_from:
        raise ValueError(f"date range: the end ({date_to}) is before the start ({date_from}).")
    k = int(settings.get(session, "small_cell_k"))
    rows = session.execute(
        select(Request.created_at, Request.due_at, Request.first_response_at, Request.closed_at, RequestTopic.name.label("topic"), Branch.name.label("branch"))
        .outerjoin(RequestTopic, RequestTopic.id == Request.topic_id)
        .outerjoin(Branch, Branch.id == Request.branch_id)
        .where(Request.created_at >= _utc(date_from), Request.created_at < _utc(date_to + timedelta(days=1)))
    ).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["created", "due", "first_response", "closed", "topic", "branch"])
    total = len(frame)
    result: dict[str, Any] = {"requests": small_cells.count(total, k), "k": k}
    if total:
        created = pd.to_datetime(frame["created"], utc=True)
        frame["week"] = (created.dt.tz_localize(None).dt.to_period("W-SUN").dt.start_time).dt.date.astype(str)
        frame["topic"] = frame["topic"].fillna("no topic")
        frame["branch"] = frame["branch"].fillna("no branch")
        first = _hours(frame["first_response"], frame["created"]).dropna()
        resolved = _hours(frame["closed"], frame["created"]).dropna()
        answered = frame.dropna(subset=["first_response"])
        within = (pd.to_datetime(answered["first_response"], utc=True) <= pd.to_datetime(answered["due"], utc=True)).sum()
    else:
        first = resolved = pd.Series(dtype=float)
        within = 0
    result["median_first_response_hours"] = round(float(first.median()), 1) if len(first) >= k else None
    result["median_resolution_hours"] = round(float(resolved.median()), 1) if len(resolved) >= k else None
    result["within_target_share"] = round(100 * within / len(first), 1) if len(first) >= k else None
    for by in ("topic", "branch"):
        if total:
            counts = frame.groupby(["week", by]).size().reset_index(name="requests").sort_values(["week", by])
        else:
            counts = pd.DataFrame(columns=["week", by, "requests"])
        result[f"by_week_{by}"] = small_cells.suppress_column(counts.reset_index(drop=True), k, sizes="requests")
    return result
