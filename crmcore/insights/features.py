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

Reading is one pass over the rollups of the months needed (`read`): the database packs each rollup row into
one integer (patron, month, kind, count), fetched with the driver's own cursor in chunks and kept as small
numpy arrays; the features at any cutoff inside those months are then worked out in numpy (`History.at`).
Typed rows, or a Python object per rollup row kept, would cost seconds and hundreds of MB at a million patrons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from itertools import chain

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Date, case, cast, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from crmcore.kpis.summaries import AGE_BANDS, month_index, month_number, month_of
from crmcore.library.activity import KIND_LABELS, KINDS
from crmcore.models import ActivityMonthly, Patron

_am = ActivityMonthly.__table__.c
_p = Patron.__table__.c
WINDOW = 12  # months of behaviour
BANDS = [name for _low, _high, name in AGE_BANDS]
FEATURES = [*(f"share_{k}" for k in KINDS), "active_months", "log_count", "recency_months", "tenure_years", *(f"age_{b}" for b in BANDS), "age_unknown"]
CHUNK = 200_000  # rows fetched at a time
# What each feature is called where staff see it.
LABELS = {
    **{f"share_{k}": f"share of {label.lower()}" for k, label in KIND_LABELS.items()},
    "active_months": "months with activity (of 12)", "log_count": "activity counted (log)", "recency_months": "months since last activity",
    "tenure_years": "years a member", **{f"age_{b}": f"aged {b}" for b in BANDS}, "age_unknown": "age not known",
}
# A packed rollup row, low bits first: the count (24 bits, clamped), the kind (3), the month after the first read (6),
# the patron id (the rest: below 2**30).
_COUNT_BITS, _KIND_BITS, _MONTH_BITS = 24, 3, 6
MAX_MONTHS = 2**_MONTH_BITS  # months one read may span
_MAX_COUNT = 2**_COUNT_BITS - 1
_MAX_PATRON_ID = 2 ** (63 - _COUNT_BITS - _KIND_BITS - _MONTH_BITS)
OTHER_KIND = len(KINDS)  # a kind the features do not count (its months still count as active)


@dataclass
class Features:
    patron_ids: np.ndarray  # int64, sorted
    values: np.ndarray  # float32, one row per patron, columns FEATURES
    cutoff: date  # the first day of the last month read

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=FEATURES, index=self.patron_ids)


@dataclass
class History:
    """Patrons (not erased) and their rollups over `months` months from the month index `first`, as numpy arrays."""

    first: int
    months: int
    patron_ids: np.ndarray  # int64, sorted
    registered: np.ndarray  # int32 month index of registration, -1 when not known
    joined: np.ndarray  # int32 month index of registration, else of the first activity; -1 when neither is known
    birth_year: np.ndarray  # int32, 0 when not known
    band: np.ndarray  # int8: the imported age band's place in BANDS, len(BANDS) when it is none of them
    rows: list[tuple[np.ndarray, ...]]  # the rollup rows read, in chunks: int32 place in patron_ids, int8 months after
    # `first`, int8 place in KINDS (OTHER_KIND for another), int32 count — no chunk is ever copied into one big array
    active: np.ndarray  # bool, patrons × months: any activity that month

    def _columns(self, start: int, end: int) -> slice:
        if start < self.first or end >= self.first + self.months:
            raise ValueError(f"Months {month_of(start):%Y-%m} to {month_of(end):%Y-%m} were not read (read: {month_of(self.first):%Y-%m} "
                             f"and {self.months - 1} months after).")
        return slice(start - self.first, end - self.first + 1)

    def at(self, cutoff: date) -> Features:
        """The features of every included patron at the month `cutoff` (any day of it)."""
        end = month_index(cutoff)
        months = self._columns(end - WINDOW + 1, end)
        window = self.active[:, months]
        active_months = window.sum(axis=1)
        who = np.flatnonzero((active_months > 0) & ((self.registered < 0) | (self.registered <= end)))
        n, kinds = len(who), len(KINDS)
        place = np.full(len(self.patron_ids), -1, dtype=np.int64)
        place[who] = np.arange(n)
        counts = np.zeros(n * kinds)
        for patron, month, kind, count in self.rows:
            rows = (month >= months.start) & (month < months.stop) & (kind < OTHER_KIND)
            at = place[patron[rows]]
            kept = at >= 0
            np.add.at(counts, at[kept] * kinds + kind[rows][kept], count[rows][kept])
        counts = counts.reshape(n, kinds)
        recency = np.argmax(window[who, ::-1], axis=1)  # months from the cutoff back to the last active one
        joined = self.joined[who]
        tenure_from = np.where(joined >= 0, np.minimum(joined, end), end)  # neither date known: joined now
        total = counts.sum(axis=1)
        values = np.zeros((n, len(FEATURES)), dtype=np.float32)  # filled column by column: no float64 copy of the whole
        counts /= np.maximum(total, 1)[:, None]
        values[:, :kinds] = counts
        values[:, kinds:kinds + 4] = np.column_stack([active_months[who], np.log1p(total), np.minimum(recency, 24), np.clip((end - tenure_from) / 12, 0, 30)])
        values[np.arange(n), kinds + 4 + self._bands(who, month_of(end).year)] = 1
        return Features(patron_ids=self.patron_ids[who], values=values, cutoff=month_of(end))

    def _bands(self, who: np.ndarray, year: int) -> np.ndarray:
        """Each patron's place in BANDS: from the birth year at `year` (the house bands), else the imported band, else unknown."""
        born = self.birth_year[who]
        age = year - born
        lows = np.array([low for low, _high, _name in AGE_BANDS])
        derived = np.searchsorted(lows, age, side="right") - 1
        known = (born != 0) & (age >= lows[0]) & (age < AGE_BANDS[-1][1])
        return np.where(known, derived, self.band[who])

    def came_back(self, features: Features, *, months: int) -> np.ndarray:
        """Per patron of `features`: any activity in the `months` months after its cutoff (the label "not lapsed")."""
        start = month_index(features.cutoff) + 1
        columns = self._columns(start, start + months - 1)
        return self.active[np.searchsorted(self.patron_ids, features.patron_ids), columns].any(axis=1)


class _scanned(FunctionElement):
    """A date column that SQLite's planner may not seek an index by (`+month`): reading most of the rollups, a scan of
    the table is several times faster than the month index with a look-up per row (PostgreSQL's planner knows)."""

    type = Date()
    inherit_cache = True
    name = "scanned"


@compiles(_scanned, "sqlite")
def _scanned_sqlite(element, compiler, **kw):
    return "+" + compiler.process(element.clauses, **kw)


@compiles(_scanned)
def _scanned_default(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


def _int_chunks(session: Session, query, width: int):
    """A query's integer columns, CHUNK rows at a time, as numpy arrays read from a driver cursor of the session's
    connection (server-side on PostgreSQL). Its values are this module's own numbers and dates, never input, so the
    statement carries them as literals."""
    conn = session.connection()
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.cursor(name="insights_features") if conn.dialect.name == "postgresql" else conn.connection.cursor()
    try:
        cursor.execute(sql, {})  # parameters (none) given, so the driver reads its escapes (%% for %) as it compiled them
        while rows := cursor.fetchmany(CHUNK):
            yield np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=len(rows) * width).reshape(-1, width)
    finally:
        cursor.close()


def last_complete_month(today: date) -> date:
    """The month before today's (today's month is not over)."""
    return month_of(month_index(today) - 1)


def read(session: Session, *, first: date, last: date, every: int = 1) -> History:
    """Patrons not erased and their rollups from the month `first` to the month `last`, in one pass over the rollups;
    with `every` > 1 only the patrons whose id is a multiple of it (a deterministic sample)."""
    start, end = month_index(first), month_index(last)
    if not 0 < end - start + 1 <= MAX_MONTHS:
        raise ValueError(f"Personas and lapse risk read 1 to {MAX_MONTHS} months of activity, not {end - start + 1}.")

    def sampled(column) -> list:
        return [column % every == 0] if every > 1 else []

    band = case({b: i for i, b in enumerate(BANDS)}, value=_p.age_band, else_=len(BANDS))
    patrons = np.concatenate([np.zeros((0, 5), dtype=np.int64), *_int_chunks(session, select(
        _p.id, func.coalesce(month_number(_p.registered_on), -1), func.coalesce(month_number(func.coalesce(_p.registered_on, _p.first_activity_on)), -1),
        func.coalesce(_p.birth_year, 0), band,
    ).where(_p.erased_at.is_(None), *sampled(_p.id)).order_by(_p.id), 5)])
    ids = patrons[:, 0]
    top = int(ids[-1]) if len(ids) else 0
    if top >= _MAX_PATRON_ID:
        raise ValueError(f"Personas and lapse risk need patron ids below {_MAX_PATRON_ID:,}; the largest is {top:,}.")
    place = np.full(top + 1, -1, dtype=np.int32)
    place[ids] = np.arange(len(ids), dtype=np.int32)
    kind = case({k: i for i, k in enumerate(KINDS)}, value=_am.kind, else_=OTHER_KIND)
    count = case((_am.count < 0, 0), (_am.count > _MAX_COUNT, _MAX_COUNT), else_=_am.count)
    packed = (((cast(_am.patron_id, BigInteger) * MAX_MONTHS + (month_number(_am.month) - start)) * 2**_KIND_BITS + kind) * 2**_COUNT_BITS + count)
    month = _scanned(_am.month)
    rows: list[tuple[np.ndarray, ...]] = []
    active = np.zeros((len(ids), end - start + 1), dtype=bool)
    for chunk in _int_chunks(session, select(packed).where(month >= month_of(start), month <= month_of(end), *sampled(_am.patron_id)), 1):
        value = chunk[:, 0]
        patron = value >> (_COUNT_BITS + _KIND_BITS + _MONTH_BITS)
        at = place[np.minimum(patron, top)]
        keep = (patron <= top) & (at >= 0)  # an erased patron's rollups (kept as anonymous aggregates) are not read
        value, at = value[keep], at[keep]
        months = ((value >> (_COUNT_BITS + _KIND_BITS)) & (MAX_MONTHS - 1)).astype(np.int8)
        rows.append((at, months, ((value >> _COUNT_BITS) & (2**_KIND_BITS - 1)).astype(np.int8), (value & _MAX_COUNT).astype(np.int32)))
        active[at, months] = True
    return History(first=start, months=end - start + 1, patron_ids=ids, registered=patrons[:, 1].astype(np.int32), joined=patrons[:, 2].astype(np.int32),
                   birth_year=patrons[:, 3].astype(np.int32), band=patrons[:, 4].astype(np.int8), rows=rows, active=active)


def compute(session: Session, *, cutoff: date) -> Features:
    """The features of every included patron at the month `cutoff` (any day of it): the 12 months up to it, read once."""
    end = month_index(cutoff)
    return read(session, first=month_of(end - WINDOW + 1), last=month_of(end)).at(cutoff)
