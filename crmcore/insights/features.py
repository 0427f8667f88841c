"""Each patron's behaviour at a month, from the monthly rollups and the patron row only.

FEATURES, for the 12 months up to and including the cutoff month:
- share_<kind>: the share of each activity kind in the patron's counted activity (the mix);
- active_months: months with any activity (frequency, 0–12);
- log_count: log(1 + all activity counted);
- recency_months: months since the last month with activity (0 = the cutoff month), at most 24;
- tenure_years: years since registration (else since the first month with activity), at most 30;
- age_<band>: the age band (from the birth year, else as imported when it is one of these), one column per band and one for unknown.
No protected attribute beyond the age band; no title, category or branch is read.
Only patrons not erased, registered by the cutoff and with activity in those 12 months are included.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import Integer, case, cast, func, select
from sqlmodel import Session

from crmcore.kpis.summaries import AGE_BANDS, age_band, month_end, month_index, month_of
from crmcore.library.activity import KIND_LABELS, KINDS
from crmcore.models import ActivityMonthly, Patron

_am = ActivityMonthly.__table__.c
_p = Patron.__table__.c
WINDOW = 12  # months of behaviour
BANDS = [name for _low, _high, name in AGE_BANDS]
FEATURES = [*(f"share_{k}" for k in KINDS), "active_months", "log_count", "recency_months", "tenure_years", *(f"age_{b}" for b in BANDS), "age_unknown"]
CHUNK = 200_000
# What each feature is called where staff see it.
LABELS = {
    **{f"share_{k}": f"share of {label.lower()}" for k, label in KIND_LABELS.items()},
    "active_months": "months with activity (of 12)", "log_count": "activity counted (log)", "recency_months": "months since last activity",
    "tenure_years": "years a member", **{f"age_{b}": f"aged {b}" for b in BANDS}, "age_unknown": "age not known",
}


@dataclass
class Features:
    patron_ids: np.ndarray  # int64, sorted
    values: np.ndarray  # float32, one row per patron, columns FEATURES
    cutoff: date  # the first day of the last month read

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=FEATURES, index=self.patron_ids)


def last_complete_month(today: date) -> date:
    """The month before today's (today's month is not over)."""
    return month_of(month_index(today) - 1)


def _rows(session: Session, query, width: int):
    """A query's rows as numpy columns, read in chunks (no Python object per row kept)."""
    parts = [np.fromiter(chain.from_iterable(chunk), dtype=np.int64, count=len(chunk) * width).reshape(-1, width)
             for chunk in session.execute(query).yield_per(CHUNK).partitions()]
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int64)


def compute(session: Session, *, cutoff: date) -> Features:
    """The features of every included patron at the month `cutoff` (any day of it)."""
    end = month_index(cutoff)
    start_month, cutoff_month = month_of(end - WINDOW + 1), month_of(end)
    window = (_am.month >= start_month, _am.month <= cutoff_month)
    live = select(_p.id).where(_p.erased_at.is_(None), (_p.registered_on.is_(None)) | (_p.registered_on <= month_end(end)))
    kind_no = case({k: i for i, k in enumerate(KINDS)}, value=_am.kind, else_=-1)
    month_no = cast(func.extract("year", _am.month), Integer) * 12 + cast(func.extract("month", _am.month), Integer) - 1
    # Per patron × kind: the count in the window.
    triples = _rows(session, select(_am.patron_id, kind_no, func.sum(_am.count)).where(*window, _am.patron_id.in_(live)).group_by(_am.patron_id, kind_no), 3)
    ids = np.unique(triples[:, 0])
    n = len(ids)
    if not n:
        return Features(patron_ids=ids, values=np.zeros((0, len(FEATURES)), dtype=np.float32), cutoff=cutoff_month)
    counts = np.zeros((n, len(KINDS)), dtype=np.float64)
    known = triples[:, 1] >= 0
    np.add.at(counts, (np.searchsorted(ids, triples[known, 0]), triples[known, 1]), np.maximum(triples[known, 2], 0))
    # Per patron: months with activity in the window and the last of them.
    months = _rows(session, select(_am.patron_id, func.count(_am.month.distinct()), func.max(month_no)).where(*window, _am.patron_id.in_(live)).group_by(_am.patron_id), 3)
    at = np.searchsorted(ids, months[:, 0])
    active_months, last_month = np.zeros(n), np.zeros(n)
    active_months[at], last_month[at] = months[:, 1], months[:, 2]
    tenure_from = np.full(n, float(end))  # no registration date and no first activity known: joined now
    ages = np.zeros((n, len(BANDS) + 1))
    ages[:, len(BANDS)] = 1
    cut_day = month_end(end)
    for chunk in session.execute(select(_p.id, _p.registered_on, _p.birth_year, _p.age_band, _p.first_activity_on).where(_p.id.in_(live))).yield_per(CHUNK).partitions():
        pid = np.fromiter((r[0] for r in chunk), dtype=np.int64, count=len(chunk))
        where = np.searchsorted(ids, pid)
        inside = (where < n) & (ids[np.minimum(where, n - 1)] == pid)
        for row, i, ok in zip(chunk, where, inside):
            if not ok:
                continue
            joined = row[1] or row[4]  # registration, else the first activity (kept on the patron row)
            if joined is not None:
                tenure_from[i] = min(month_index(joined), end)
            band = age_band(None, row[2], cut_day) or row[3]  # the birth year gives the house bands; else the imported band
            if band in BANDS:
                ages[i, len(BANDS)] = 0
                ages[i, BANDS.index(band)] = 1
    total = counts.sum(axis=1)
    values = np.column_stack([
        counts / np.maximum(total, 1)[:, None], active_months, np.log1p(total), np.clip(end - last_month, 0, 24),
        np.clip((end - tenure_from) / 12, 0, 30), ages,
    ]).astype(np.float32)
    return Features(patron_ids=ids, values=values, cutoff=cutoff_month)


def active_after(session: Session, *, after: date, months: int) -> np.ndarray:
    """Patron ids with any activity in the `months` months after the month `after` (the label "not lapsed")."""
    start = month_index(after) + 1
    rows = _rows(session, select(_am.patron_id).where(_am.month >= month_of(start), _am.month <= month_of(start + months - 1)).distinct().order_by(_am.patron_id), 1)
    return rows[:, 0]
