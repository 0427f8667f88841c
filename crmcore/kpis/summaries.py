"""The dashboard's summary tables (`dash_*`), rebuilt from `activity_monthly` and the patron table.

Every dashboard figure is read from these tables, so its cost depends on the number of months and of
branch × zone × type × age-band groups, not on the number of patrons or events. They hold counts of
groups only, never a patron id.

The lifecycle state of each patron at the end of each month needs rolling 12-month windows per patron,
which SQL cannot express cheaply on SQLite; the refresh therefore streams patrons in fixed-size chunks
(bounded memory) through numpy and writes only the aggregated counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlalchemy import Date, Integer, delete, func, insert, literal_column, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session

from crmcore.models import ActivityMonthly, DashActivity, DashCohort, DashFlow, DashRegistration, DashState, Patron, ProgramEvent

# Lifecycle states, in display order; 0 (not yet registered) appears only as the origin of flows.
STATES = ("unregistered", "new_active", "new_inactive", "regular", "occasional", "at_risk", "lapsed")
ACTIVE_STATES = ("new_active", "regular", "occasional", "at_risk")
# What staff read for each state (the lifecycle chart, flows, segment rules).
STATE_LABELS = {"unregistered": "not yet registered", "new_active": "new, active", "new_inactive": "new, inactive", "regular": "regular",
                "occasional": "occasional", "at_risk": "at risk", "lapsed": "lapsed"}
NEW_WEEKS = 12  # "new": registered in the 12 weeks up to the month's end
REGULAR_MONTHS = 6  # "regular": activity in at least 6 of the last 12 calendar months
MAX_MONTHS = 120  # months kept before the last month with data (the dashboard's date range reaches this far back)
FLOW_LAGS = (1, 3, 6, 12)  # period lengths, in months, whose lifecycle flows are kept
CHUNK = 50_000


class month_start(FunctionElement):
    """SQL expression: the first day of the month of a date column (a `date`, on every backend)."""

    type = Date()
    inherit_cache = True
    name = "month_start"


@compiles(month_start, "sqlite")
def _month_start_sqlite(element, compiler, **kw):
    # SQLite keeps dates as ISO text, which is what date(…, 'start of month') returns.
    return "date(%s, 'start of month')" % compiler.process(element.clauses, **kw)


@compiles(month_start, "postgresql")
def _month_start_postgresql(element, compiler, **kw):
    return "CAST(date_trunc('month', %s) AS DATE)" % compiler.process(element.clauses, **kw)


class month_number(FunctionElement):
    """SQL expression: `month_index` of a date column (year × 12 + month − 1), an integer on every backend."""

    type = Integer()
    inherit_cache = True
    name = "month_number"


@compiles(month_number, "sqlite")
def _month_number_sqlite(element, compiler, **kw):
    # ISO text: reading the digits costs a third of strftime's parse, which shows over millions of rollup rows.
    column = compiler.process(element.clauses, **kw)
    return f"(CAST(substr({column}, 1, 4) AS INTEGER) * 12 + CAST(substr({column}, 6, 2) AS INTEGER) - 1)"


@compiles(month_number)
def _month_number_default(element, compiler, **kw):
    column = compiler.process(element.clauses, **kw)
    return f"(CAST(EXTRACT(YEAR FROM {column}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {column}) AS INTEGER) - 1)"


AGE_BANDS = ((0, 12, "0-11"), (12, 18, "12-17"), (18, 25, "18-24"), (25, 45, "25-44"), (45, 65, "45-64"), (65, 200, "65+"))

_TABLES = (DashState, DashFlow, DashActivity, DashRegistration, DashCohort)


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def month_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def month_end(index: int) -> date:
    return month_of(index + 1) - timedelta(days=1)


def age_band(band: str | None, birth_year: int | None, today: date) -> str:
    """The patron's age band as imported, else derived from the birth year; "" when unknown."""
    if band:
        return band
    if birth_year:
        age = today.year - birth_year
        for low, high, name in AGE_BANDS:
            if low <= age < high:
                return name
    return ""


def classify(active: np.ndarray, registered: np.ndarray, first_month: int) -> np.ndarray:
    """Lifecycle state codes (index into STATES), patrons × months, from `active` (patrons × 12 look-back
    months + the window) and registration day ordinals (0 when unknown: registered since ever)."""
    months = active.shape[1] - 12
    ends = np.array([month_end(first_month + m).toordinal() for m in range(months)])
    running = np.zeros((active.shape[0], active.shape[1] + 1), dtype=np.int32)
    np.cumsum(active, axis=1, out=running[:, 1:])
    last12 = running[:, 13:] - running[:, 1:-12]
    last6 = running[:, 13:] - running[:, 7:-6]
    reg = registered[:, None]
    state = np.full(last12.shape, STATES.index("occasional"), dtype=np.int8)
    state[last12 >= REGULAR_MONTHS] = STATES.index("regular")
    state[last6 == 0] = STATES.index("at_risk")
    state[last12 == 0] = STATES.index("lapsed")
    new = (reg > ends - NEW_WEEKS * 7) & (reg <= ends)
    state[new & (last12 > 0)] = STATES.index("new_active")
    state[new & (last12 == 0)] = STATES.index("new_inactive")
    state[reg > ends] = STATES.index("unregistered")
    return state


class _Bands(dict):
    """(age band as imported, birth year) → age_band(), worked out once per pair."""

    def __init__(self, today: date):
        super().__init__()
        self.today = today

    def __missing__(self, key: tuple[str | None, int | None]) -> str:
        band = self[key] = age_band(*key, self.today)
        return band


class _Counter:
    """Sums counts under integer keys across chunks."""

    def __init__(self) -> None:
        self.totals: dict[int, int] = {}

    def add(self, keys: np.ndarray, weights: np.ndarray | None = None) -> None:
        if weights is None:
            unique, counts = np.unique(keys, return_counts=True)
        else:
            unique, inverse = np.unique(keys, return_inverse=True)
            counts = np.bincount(inverse, weights=weights).astype(np.int64)
        for key, value in zip(unique.tolist(), counts.tolist()):
            self.totals[key] = self.totals.get(key, 0) + value


def _window(session: Session, today: date) -> tuple[int, int]:
    """The months summarised: from the first month with activity or programs (or, without either, with
    registrations) to today's, so every month with data can be chosen however long ago the data ends; at
    least 12 months, and at most MAX_MONTHS before the last month with data."""
    end = month_index(today)
    first_activity, last_activity = session.execute(select(func.min(ActivityMonthly.month), func.max(ActivityMonthly.month))).one()
    first_program, last_program = session.execute(select(func.min(ProgramEvent.held_on), func.max(ProgramEvent.held_on))).one()
    first_reg, last_reg = session.execute(select(func.min(Patron.registered_on), func.max(Patron.registered_on))).one()
    first_ils, last_ils = session.execute(select(func.min(Patron.ils_last_activity_on), func.max(Patron.ils_last_activity_on))).one()
    lasts = [month_index(_day(d)) for d in (last_activity, last_program, last_reg, last_ils) if d]
    last_data = min(max(lasts), end) if lasts else end
    firsts = [month_index(_day(d)) for d in (first_activity, first_program, first_ils) if d] or [month_index(_day(d)) for d in (first_reg,) if d]
    start = min(firsts) if firsts else end - 11
    return max(min(start, last_data - 11), last_data - MAX_MONTHS + 1), end


def _patron_chunks(session: Session):
    """Patrons in id order, CHUNK at a time, as plain driver rows (typed rows cost seconds at 1M)."""
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        "SELECT id, branch_id, zone_id, patron_type, age_band, birth_year, registered_on, ils_last_activity_on "
        f"FROM patron WHERE id > {mark} ORDER BY id LIMIT {CHUNK}"
    )
    last = 0
    while rows := conn.exec_driver_sql(sql, (last,)).fetchall():
        last = rows[-1][0]
        yield rows


def _day(value: date | str | None) -> date | None:
    """A date column as the driver gives it (SQLite: ISO text)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


@dataclass
class Summaries:
    """The patron-derived summary rows worked out by `compute_summaries`, ready to store."""

    first: int  # the window's first and last month (month_index)
    last: int
    rows: dict[type, list[dict]]  # summary table → its rows

    def store(self, session: Session) -> None:
        """Replace every summary table's rows: these, and activity's grouped from `activity_monthly` in SQL."""
        for table in _TABLES:
            session.execute(delete(table))
        for model, rows in self.rows.items():
            _insert(session, model, rows)
        _refresh_activity(session, self.first, self.last)


def refresh_summaries(session: Session, *, today: date | None = None) -> None:
    """Rebuild every dashboard summary table from `activity_monthly` and patrons (in the caller's transaction)."""
    compute_summaries(session, today=today).store(session)


def compute_summaries(session: Session, *, today: date | None = None) -> Summaries:
    """The lifecycle, flow, cohort and registration counts, read from the patrons and `activity_monthly`
    (reads only: an import works them out while its indexes are built, then stores them)."""
    today = today or date.today()
    first, last = _window(session, today)
    months = last - first + 1
    states = len(STATES)
    groups: dict[tuple, int] = {}  # (branch, zone, type, age band) -> group number
    state_counts, flow_counts, cohort_counts, registrations = _Counter(), _Counter(), _Counter(), _Counter()
    bands = _Bands(today)
    for rows in _patron_chunks(session):
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        group = np.array([groups.setdefault((r[1] or 0, r[2] or 0, r[3] or "", bands[r[4], r[5]]), len(groups)) for r in rows], dtype=np.int64)
        days = [_day(r[6]) for r in rows]
        registered = np.array([d.toordinal() if d else 0 for d in days], dtype=np.int64)
        active = np.zeros((len(rows), months + 12), dtype=np.int8)
        for patron_id, month in session.connection().execute(
            select(ActivityMonthly.patron_id, ActivityMonthly.month)
            .where(ActivityMonthly.patron_id.between(int(ids[0]), int(ids[-1])))
            .where(ActivityMonthly.month >= month_of(first - 12), ActivityMonthly.month <= month_of(last))
            .distinct()
        ):
            active[np.searchsorted(ids, patron_id), month_index(month) - first + 12] = 1
        # A usage export states only each patron's last active month (no events): that month counts as active.
        for k, row in enumerate(rows):
            if row[7] and 0 <= (column := month_index(_day(row[7])) - first + 12) < months + 12:
                active[k, column] = 1
        state = classify(active, registered, first)
        month_no = np.arange(months)[None, :]

        registered_rows = state > 0
        state_counts.add(((group[:, None] * months + month_no) * states + state)[registered_rows])
        for lag in FLOW_LAGS:
            if lag < months:
                before, after = state[:, :-lag], state[:, lag:]
                keys = (((group[:, None] * months + month_no[:, lag:]) * states + before) * states + after) * 16 + lag
                flow_counts.add(keys[after > 0])
        reg_month = np.array([month_index(d) - first if d else -1 for d in days])
        in_window = (reg_month >= 0) & (reg_month < months)
        registrations.add((group * months + reg_month)[in_window])
        cohort = active[:, 12:].astype(bool) & (month_no >= reg_month[:, None]) & in_window[:, None]
        who, when = np.nonzero(cohort)
        cohort_counts.add((group[who] * months + reg_month[who]) * months + when)

    names = {number: key for key, number in groups.items()}

    def dims(number: int, *, with_age: bool) -> dict:
        branch, zone, kind, band = names[number]
        out = {"branch_id": branch, "zone_id": zone, "patron_type": kind}
        return {**out, "age_band": band} if with_age else out

    return Summaries(first, last, {
        DashState: [
            {"month": month_of(first + key // states % months), "state": STATES[key % states], "patrons": n, **dims(key // states // months, with_age=True)}
            for key, n in state_counts.totals.items()
        ],
        DashRegistration: [
            {"month": month_of(first + key % months), "patrons": n, **dims(key // months, with_age=True)}
            for key, n in registrations.totals.items()
        ],
        DashFlow: _merge_age(flow_counts, names, months, states, first, "flow"),
        DashCohort: _merge_age(cohort_counts, names, months, states, first, "cohort"),
    })


def _merge_age(counter: _Counter, names: dict, months: int, states: int, first: int, kind: str) -> list[dict]:
    """Rows of a table kept without the age band: counts of groups that differ only by age band summed."""
    merged: dict[tuple, int] = {}
    for key, n in counter.totals.items():
        if kind == "flow":
            lag, rest = key % 16, key // 16
            to, rest = rest % states, rest // states
            before, rest = rest % states, rest // states
            month, number = rest % months, rest // months
            head = (month_of(first + month), lag, STATES[before], STATES[to])
        else:
            month, rest = key % months, key // months
            cohort, number = rest % months, rest // months
            head = (month_of(first + cohort), month_of(first + month))
        branch, zone, patron_type, _band = names[number]
        merged[(*head, branch, zone, patron_type)] = merged.get((*head, branch, zone, patron_type), 0) + n
    if kind == "flow":
        return [
            {"month": m, "lag": lag, "from_state": a, "to_state": b, "branch_id": br, "zone_id": z, "patron_type": t, "patrons": n}
            for (m, lag, a, b, br, z, t), n in merged.items()
        ]
    return [
        {"cohort_month": c, "month": m, "branch_id": br, "zone_id": z, "patron_type": t, "patrons": n}
        for (c, m, br, z, t), n in merged.items()
    ]


def _refresh_activity(session: Session, first: int, last: int) -> None:
    activity = ActivityMonthly.__table__
    patron = Patron.__table__
    # Constant SQL for the unknown values: bound parameters would differ between SELECT and GROUP BY.
    dims = (
        func.coalesce(patron.c.branch_id, literal_column("0")),
        func.coalesce(patron.c.zone_id, literal_column("0")),
        func.coalesce(patron.c.patron_type, literal_column("''")),
    )
    grouped = (
        select(activity.c.month, activity.c.kind, *dims, func.sum(activity.c.count), func.count(activity.c.patron_id.distinct()))
        .join(patron, patron.c.id == activity.c.patron_id)
        .where(activity.c.month >= month_of(first), activity.c.month <= month_of(last))
        .group_by(activity.c.month, activity.c.kind, *dims)
    )
    session.execute(
        insert(DashActivity.__table__).from_select(["month", "kind", "branch_id", "zone_id", "patron_type", "events", "patrons"], grouped)
    )


def _insert(session: Session, model, rows: list[dict], batch: int = 20_000) -> None:
    for start in range(0, len(rows), batch):
        session.execute(insert(model.__table__), rows[start : start + batch])
