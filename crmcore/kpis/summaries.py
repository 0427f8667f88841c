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

from crmcore.bulk import BulkWriter
from crmcore.models import ActivityMonthly, DashActivity, DashCohort, DashFlow, DashRegistration, DashState, DashWindow, Patron, ProgramEvent

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


class _Columns(dict):
    """A month as the driver gives it → its column in a Tally's `active` matrix (12 look-back months first)."""

    def __init__(self, first: int):
        super().__init__()
        self.first = first

    def __missing__(self, month) -> int:
        column = self[month] = month_index(_day(month)) - self.first + 12
        return column


class _Counter:
    """Sums (signed) counts under integer keys across chunks: arrays gathered and summed by numpy, compacted
    now and then so memory stays bounded."""

    COMPACT = 4_000_000

    def __init__(self) -> None:
        self.keys: list[np.ndarray] = []
        self.weights: list[np.ndarray] = []
        self.pending = 0

    def add(self, keys: np.ndarray, weight: int = 1) -> None:
        self.keys.append(keys.astype(np.int64, copy=False))
        self.weights.append(np.full(len(keys), weight, dtype=np.int64))
        self.pending += len(keys)
        if self.pending > self.COMPACT:
            self._compact()

    def _compact(self) -> None:
        keys, weights = np.concatenate(self.keys or [np.empty(0, np.int64)]), np.concatenate(self.weights or [np.empty(0, np.int64)])
        unique, inverse = np.unique(keys, return_inverse=True)
        # Float sums are exact far beyond any count here (2**53).
        sums = np.rint(np.bincount(inverse.ravel(), weights=weights, minlength=len(unique))).astype(np.int64)
        kept = sums != 0
        self.keys, self.weights, self.pending = [unique[kept]], [sums[kept]], int(kept.sum())

    @property
    def totals(self) -> dict[int, int]:
        """Key → its sum, for the keys whose sum is not 0."""
        self._compact()
        return dict(zip(self.keys[0].tolist(), self.weights[0].tolist()))


def window(session: Session, today: date) -> tuple[int, int]:
    """The months summarised (month_index): from the first month with activity or programs (or, without either,
    with registrations) to today's, so every month with data can be chosen however long ago the data ends; at
    least 12 months, and at most MAX_MONTHS before the last month with data."""
    end = month_index(today)
    # One subquery per bound: each is then an index seek (SQLite scans the table for min and max in one SELECT).
    columns = (ActivityMonthly.month, ProgramEvent.held_on, Patron.registered_on, Patron.ils_last_activity_on)
    bounds = session.execute(select(*(select(bound(c)).scalar_subquery() for c in columns for bound in (func.min, func.max)))).one()
    first_activity, last_activity, first_program, last_program, first_reg, last_reg, first_ils, last_ils = (_day(d) for d in bounds)
    lasts = [month_index(_day(d)) for d in (last_activity, last_program, last_reg, last_ils) if d]
    last_data = min(max(lasts), end) if lasts else end
    firsts = [month_index(_day(d)) for d in (first_activity, first_program, first_ils) if d] or [month_index(_day(d)) for d in (first_reg,) if d]
    start = min(firsts) if firsts else end - 11
    return max(min(start, last_data - 11), last_data - MAX_MONTHS + 1), end


def stored_window(session: Session) -> tuple[int, int] | None:
    """The months the stored summaries were worked out for; None when they need a full rebuild."""
    row = session.execute(select(DashWindow.first_month, DashWindow.last_month)).first()
    return (month_index(_day(row[0])), month_index(_day(row[1]))) if row else None


def forget_window(session: Session) -> None:
    """Mark the summaries as needing a full rebuild (a change they could not follow)."""
    session.execute(delete(DashWindow))


_PATRON_COLUMNS = "id, branch_id, zone_id, patron_type, age_band, birth_year, registered_on, ils_last_activity_on"


def _patron_chunks(session: Session):
    """Patrons in id order, CHUNK at a time, as plain driver rows (typed rows cost seconds at 1M)."""
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"SELECT {_PATRON_COLUMNS} FROM patron WHERE id > {mark} ORDER BY id LIMIT {CHUNK}"
    last = 0
    while rows := conn.exec_driver_sql(sql, (last,)).fetchall():
        last = rows[-1][0]
        yield rows


def patrons(session: Session, ids: list[int]) -> list:
    """These patrons (ids sorted), as `_patron_chunks` gives them."""
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return conn.exec_driver_sql(f"SELECT {_PATRON_COLUMNS} FROM patron WHERE id IN ({', '.join([mark] * len(ids))}) ORDER BY id", tuple(ids)).fetchall()


def _day(value: date | str | None) -> date | None:
    """A date column as the driver gives it (SQLite: ISO text)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


# Each patron-derived table's key columns, in the order Tally.tables() gives them.
KEYS = {
    DashState: ("month", "branch_id", "zone_id", "patron_type", "age_band", "state"),
    DashRegistration: ("month", "branch_id", "zone_id", "patron_type", "age_band"),
    DashFlow: ("month", "lag", "from_state", "to_state", "branch_id", "zone_id", "patron_type"),
    DashCohort: ("cohort_month", "month", "branch_id", "zone_id", "patron_type"),
}
ACTIVITY_KEY = ("month", "kind", "branch_id", "zone_id", "patron_type")


class Tally:
    """The lifecycle, flow, cohort and registration counts of the patrons added, chunk by chunk."""

    def __init__(self, first: int, last: int, today: date):
        self.first, self.months = first, last - first + 1
        self.groups: dict[tuple, int] = {}  # (branch, zone, type, age band) -> group number
        self.bands = _Bands(today)
        self.state, self.flow, self.cohort, self.registrations = _Counter(), _Counter(), _Counter(), _Counter()
        self.columns = _Columns(first)

    def active_months(self, session: Session, *, ids: list[int] | None = None, between: tuple[int, int] | None = None, counts: bool = False,
                      since: date | None = None) -> list:
        """(patron id, month) of the rollups the window and its 12 look-back months need (or those from `since`),
        for the patrons `ids` or those with ids `between` (inclusive), as plain driver rows; with `counts`, every
        rollup row there: (patron id, month, kind, count)."""
        conn = session.connection()
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        bounds = [max(month_of(self.first - 12), since or date.min), month_of(self.first + self.months - 1)]
        if conn.dialect.name == "sqlite":
            bounds = [d.isoformat() for d in bounds]
        if ids is not None:
            where, params = f"patron_id IN ({', '.join([mark] * len(ids))})", list(ids)
        else:
            where, params = f"patron_id BETWEEN {mark} AND {mark}", list(between)
        columns = "patron_id, month, kind, count" if counts else "DISTINCT patron_id, month"
        sql = f"SELECT {columns} FROM activity_monthly WHERE {where} AND month >= {mark} AND month <= {mark}"
        return conn.exec_driver_sql(sql, tuple(params + bounds)).fetchall()

    def add(self, rows: list, active_months: list, *, weight: int = 1) -> None:
        """Count patrons `rows` (id order, as `_patron_chunks` gives them) with their rollups (rows starting
        patron id, month); `weight` -1 takes them out again."""
        first, months, states, groups, bands = self.first, self.months, len(STATES), self.groups, self.bands
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        group = np.array([groups.setdefault((r[1] or 0, r[2] or 0, r[3] or "", bands[r[4], r[5]]), len(groups)) for r in rows], dtype=np.int64)
        days = [_day(r[6]) for r in rows]
        registered = np.array([d.toordinal() if d else 0 for d in days], dtype=np.int64)
        active = np.zeros((len(rows), months + 12), dtype=np.int8)
        if active_months:
            columns = self.columns
            who = np.searchsorted(ids, np.fromiter((r[0] for r in active_months), dtype=np.int64, count=len(active_months)))
            active[who, np.fromiter((columns[r[1]] for r in active_months), dtype=np.int64, count=len(active_months))] = 1
        # A usage export states only each patron's last active month (no events): that month counts as active.
        for k, row in enumerate(rows):
            if row[7] and 0 <= (column := month_index(_day(row[7])) - first + 12) < months + 12:
                active[k, column] = 1
        state = classify(active, registered, first)
        month_no = np.arange(months)[None, :]

        registered_rows = state > 0
        self.state.add(((group[:, None] * months + month_no) * states + state)[registered_rows], weight)
        for lag in FLOW_LAGS:
            if lag < months:
                before, after = state[:, :-lag], state[:, lag:]
                keys = (((group[:, None] * months + month_no[:, lag:]) * states + before) * states + after) * 16 + lag
                self.flow.add(keys[after > 0], weight)
        reg_month = np.array([month_index(d) - first if d else -1 for d in days])
        in_window = (reg_month >= 0) & (reg_month < months)
        self.registrations.add((group * months + reg_month)[in_window], weight)
        cohort = active[:, 12:].astype(bool) & (month_no >= reg_month[:, None]) & in_window[:, None]
        who, when = np.nonzero(cohort)
        self.cohort.add((group[who] * months + reg_month[who]) * months + when, weight)

    def tables(self) -> dict[type, dict[tuple, int]]:
        """Table → {key (KEYS[table] values) → patrons}; flows and cohorts summed over age bands (kept without them)."""
        first, months, states = self.first, self.months, len(STATES)
        names = {number: key for key, number in self.groups.items()}
        out: dict[type, dict[tuple, int]] = {table: {} for table in KEYS}
        for key, n in self.state.totals.items():
            month, number = key // states % months, key // states // months
            out[DashState][(month_of(first + month), *names[number], STATES[key % states])] = n
        for key, n in self.registrations.totals.items():
            out[DashRegistration][(month_of(first + key % months), *names[key // months])] = n
        flows, cohorts = out[DashFlow], out[DashCohort]
        for key, n in self.flow.totals.items():
            lag, rest = key % 16, key // 16
            to, rest = rest % states, rest // states
            before, rest = rest % states, rest // states
            month, number = rest % months, rest // months
            head = (month_of(first + month), lag, STATES[before], STATES[to], *names[number][:3])
            flows[head] = flows.get(head, 0) + n
        for key, n in self.cohort.totals.items():
            month, rest = key % months, key // months
            cohort, number = rest % months, rest // months
            head = (month_of(first + cohort), month_of(first + month), *names[number][:3])
            cohorts[head] = cohorts.get(head, 0) + n
        return out


@dataclass
class Summaries:
    """The patron-derived summary rows worked out by `compute_summaries`, ready to store."""

    first: int  # the window's first and last month (month_index)
    last: int
    rows: dict[type, list[dict]]  # summary table → its rows

    def store(self, session: Session) -> None:
        """Replace every summary table's rows: these, and activity's grouped from `activity_monthly` in SQL."""
        for table in (*_TABLES, DashWindow):
            session.execute(delete(table))
        for model, rows in self.rows.items():
            _insert(session, model, rows)
        session.execute(
            insert(DashActivity.__table__).from_select([*ACTIVITY_KEY, "events", "patrons"], _activity_grouped(self.first, self.last))
        )
        session.execute(insert(DashWindow.__table__).values(id=1, first_month=month_of(self.first), last_month=month_of(self.last)))


def refresh_summaries(session: Session, *, today: date | None = None) -> None:
    """Rebuild every dashboard summary table from `activity_monthly` and patrons (in the caller's transaction)."""
    compute_summaries(session, today=today).store(session)


def compute_summaries(session: Session, *, today: date | None = None) -> Summaries:
    """The lifecycle, flow, cohort and registration counts, read from the patrons and `activity_monthly`
    (reads only: an import works them out while its indexes are built, then stores them)."""
    today = today or date.today()
    first, last = window(session, today)
    tally = Tally(first, last, today)
    for rows in _patron_chunks(session):
        tally.add(rows, tally.active_months(session, between=(rows[0][0], rows[-1][0])))
    return Summaries(first, last, {
        table: [{**dict(zip(KEYS[table], key)), "patrons": n} for key, n in counts.items()] for table, counts in tally.tables().items()
    })


def _activity_grouped(first: int, last: int):
    """Activity per month × kind × the patrons' branch, zone and type (ACTIVITY_KEY, events, patrons) in the window."""
    activity = ActivityMonthly.__table__
    patron = Patron.__table__
    # Constant SQL for the unknown values: bound parameters would differ between SELECT and GROUP BY.
    dims = (
        func.coalesce(patron.c.branch_id, literal_column("0")),
        func.coalesce(patron.c.zone_id, literal_column("0")),
        func.coalesce(patron.c.patron_type, literal_column("''")),
    )
    return (
        select(activity.c.month, activity.c.kind, *dims, func.sum(activity.c.count), func.count(activity.c.patron_id.distinct()))
        .join(patron, patron.c.id == activity.c.patron_id)
        .where(activity.c.month >= month_of(first), activity.c.month <= month_of(last))
        .group_by(activity.c.month, activity.c.kind, *dims)
    )


def _insert(session: Session, model, rows: list[dict], batch: int = 20_000) -> None:
    conn = session.connection()
    if conn.dialect.name != "sqlite" and rows:  # PostgreSQL: through COPY (hundreds of thousands of flow rows)
        names = list(rows[0])
        BulkWriter(conn).append(model.__table__, names, [[row[n] for row in rows] for n in names])
        return
    for start in range(0, len(rows), batch):
        session.execute(insert(model.__table__), rows[start : start + batch])
