"""B2: every figure behind the manager dashboard (crmcore.kpis.dashboard_data, no cache) vs pandas reading
the raw tables (patrons, raw activity events, zones, interactions) and computing the same figures (for the
months retention has rolled up and deleted from the raw events, the monthly rollups it left). On
PostgreSQL pandas reads the same tables from the same PostgreSQL database (`pandas.read_sql_query`).

The product shows figures with small cells suppressed ("<k"); every figure it shows as a number must
equal the baseline's. Cohort retention is not recomputed by the baseline (so the baseline does less
work than the product, which only flatters the baseline).
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import Context, Row, WrongAnswer, backend, check_agree, load_average, median_time

WHAT = "dashboard data"
LIMIT = {"sqlite": 0.1, "postgres": 0.5}  # seconds at 1,000,000 patrons, per backend
SPEEDUP = 20
BASELINE_ONCE = 1_000_000  # from this size the pandas baseline is timed once (see run)
TARGET = "≤ 0.1 s on SQLite, ≤ 0.5 s on PostgreSQL, ≥ 20× faster than pandas"
STATES = ("unregistered", "new_active", "new_inactive", "regular", "occasional", "at_risk", "lapsed")
ACTIVE = ("new_active", "regular", "occasional", "at_risk")
LIFECYCLE = {"new": ("new_active", "new_inactive"), "occasional": ("occasional",), "regular": ("regular",), "at_risk": ("at_risk",), "lapsed": ("lapsed",)}


def month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def month_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def end_month(db) -> date:
    """The last month the dashboard covers (the data set may have been made on an earlier day)."""
    from crmcore.kpis import figures

    with db.read() as session:
        return figures.latest_month(session)


def product(db, end: date):
    from crmcore import kpis

    with db.read() as session:
        return kpis.dashboard_data(session, filters=kpis.Filters(end), today=date.today())


def product_once(where: str) -> None:
    """Entry point for the memory benchmark: one dashboard computation in a fresh process, on a database URL
    (or a SQLite file's path)."""
    from crmcore.db import Database

    db = Database(where if "://" in where else f"sqlite:///{where}")
    product(db, end_month(db))


# --- the baseline ----------------------------------------------------------------------------------


def _states(patrons: pd.DataFrame, active: pd.DataFrame, month: int) -> pd.Series:
    """Each patron's lifecycle state at the end of month `month` (an index), as the dashboard defines it."""
    end = month_of(month + 1) - timedelta(days=1)
    window = active[(active["m"] > month - 12) & (active["m"] <= month)]
    last12 = window.groupby("patron_id").size().reindex(patrons.index, fill_value=0)
    last6 = window[window["m"] > month - 6].groupby("patron_id").size().reindex(patrons.index, fill_value=0)
    reg = patrons["registered_on"]
    new = (reg > pd.Timestamp(end - timedelta(weeks=12))) & (reg <= pd.Timestamp(end))
    state = pd.Series("occasional", index=patrons.index)
    state[last12 >= 6] = "regular"
    state[last6 == 0] = "at_risk"
    state[last12 == 0] = "lapsed"
    state[new & (last12 > 0)] = "new_active"
    state[new & (last12 == 0)] = "new_inactive"
    state[reg > pd.Timestamp(end)] = "unregistered"
    return state


def _connect(source):
    """A connection pandas reads with: a SQLite file's path, or the engine of a PostgreSQL database."""
    return contextlib.closing(sqlite3.connect(source)) if isinstance(source, str) else source.connect()


def baseline(source, end: date) -> dict:
    """The dashboard's figures for the 12 months ending with `end`, from the raw tables with pandas (`source`:
    a SQLite file's path, or a SQLAlchemy engine)."""
    with _connect(source) as conn:
        patrons = pd.read_sql_query("SELECT id, branch_id, zone_id, patron_type, age_band, registered_on FROM patron WHERE erased_at IS NULL", conn, index_col="id")
        events = pd.read_sql_query("SELECT patron_id, occurred_on, kind, count FROM activity_event", conn)
        # Retention has rolled the months before its window up and deleted their raw events: those months are
        # read from the monthly rollups (each row one month's events of a kind, dated the first of the month).
        first_raw = pd.to_datetime(events["occurred_on"]).min()
        kept = "" if pd.isna(first_raw) else f" WHERE month < '{first_raw.date().replace(day=1).isoformat()}'"
        rolled = pd.read_sql_query(f"SELECT patron_id, month AS occurred_on, kind, count FROM activity_monthly{kept}", conn)
        events = pd.concat([rolled, events], ignore_index=True) if len(rolled) else events
        zones = pd.read_sql_query("SELECT id, code, population FROM zone", conn)
        branches = pd.read_sql_query("SELECT id, name FROM branch", conn)
        interactions = pd.read_sql_query("SELECT occurred_at FROM interaction", conn)
    patrons["registered_on"] = pd.to_datetime(patrons["registered_on"])
    day = pd.to_datetime(events["occurred_on"])
    events["m"] = day.dt.year * 12 + day.dt.month - 1
    active = events[events["count"] > 0][["patron_id", "m"]].drop_duplicates()

    e, last = month_index(end), month_index(end)
    first = e - 11
    now, before = _states(patrons, active, e), _states(patrons, active, e - 12)
    out: dict = {}
    for label, states in (("now", now), ("before", before)):
        counts = states.value_counts()
        out[f"card registered {label}"] = int(counts.drop("unregistered", errors="ignore").sum())
        out[f"card active {label}"] = int(counts.reindex(ACTIVE, fill_value=0).sum())
        out[f"card lapsed {label}"] = int(counts.get("lapsed", 0))
        out[f"card at_risk {label}"] = int(counts.get("at_risk", 0))
        for name, cells in LIFECYCLE.items():
            out[f"lifecycle {name} {'at_end' if label == 'now' else 'at_start'}"] = int(counts.reindex(cells, fill_value=0).sum())
    reg_m = patrons["registered_on"].dt.year * 12 + patrons["registered_on"].dt.month - 1
    out["card new_registrations now"] = int(reg_m.between(first, last).sum())
    out["card new_registrations before"] = int(reg_m.between(first - 12, last - 12).sum())
    residents = int(zones["population"].sum())
    at = pd.to_datetime(interactions["occurred_at"], utc=True, format="ISO8601")
    outreach_m = at.dt.year * 12 + at.dt.month - 1
    for label, shift in (("now", 0), ("before", 12)):
        part = events[events["m"].between(first - shift, last - shift)]
        out[f"card per_capita {label}"] = round(int(part["count"].sum()) / residents, 3)
        out[f"card program_attendance {label}"] = int(part.loc[part["kind"] == "event_attendance", "count"].sum())
        out[f"card outreach_interactions {label}"] = int(outreach_m.between(first - shift, last - shift).sum())
    period = events[events["m"].between(first, last)]

    for (m, kind), n in events[events["m"].between(last - 23, last)].groupby(["m", "kind"])["count"].sum().items():
        out[f"activity {month_of(m)} {kind}"] = int(n)
    for m, n in reg_m[reg_m.between(last - 23, last)].value_counts().items():
        out[f"registrations {month_of(int(m))}"] = int(n)

    registered = now != "unregistered"
    is_active = now.isin(ACTIVE)
    codes = dict(zip(zones["id"], zones["code"]))
    zone = patrons["zone_id"].map(codes).fillna("")
    for code, group in registered.groupby(zone):
        out[f"zone {code} registered"] = int(group.sum())
        out[f"zone {code} active"] = int(is_active[group.index].sum())
    names = dict(zip(branches["id"], branches["name"]))
    branch = patrons["branch_id"].map(names).fillna("(branch unknown)")
    home = events["patron_id"].map(branch)
    for name, group in registered.groupby(branch):
        out[f"branch {name} registered"] = int(group.sum())
        out[f"branch {name} active"] = int(is_active[group.index].sum())
        out[f"branch {name} new_registrations"] = int(reg_m[group.index].between(first, last).sum())
        out[f"branch {name} events"] = int(period.loc[home[period.index] == name, "count"].sum())
    band = patrons["age_band"].fillna("").replace("", "(age unknown)")
    for (b, name), n in pd.crosstab(band[registered], branch[registered]).stack().items():
        out[f"age {b} {name}"] = int(n)
    flows = pd.crosstab(before[registered], now[registered])
    for (a, b), n in flows.stack().items():
        out[f"flow {a} {b}"] = int(n)
    return out


# --- comparing what the product shows with the baseline --------------------------------------------


def shown(board) -> dict:
    """The product's figures under the baseline's keys, only those shown as numbers (not "<k")."""
    out: dict = {}
    for card in board.cards:
        out[f"card {card.key} now"], out[f"card {card.key} before"] = card.value, card.previous
    charts = board.charts
    for row in charts["lifecycle"].frame.itertuples():
        out[f"lifecycle {row.state} at_start"], out[f"lifecycle {row.state} at_end"] = row.at_start, row.at_end
    activity = charts["activity"].frame.set_index("month")
    for m, row in activity.iterrows():
        for kind, n in row.items():
            out[f"activity {m} {kind}"] = n
    for row in charts["registrations"].frame.itertuples():
        out[f"registrations {row.month}"] = row.patrons
    for row in charts["zones"].frame.itertuples():
        out[f"zone {row.code or ''} registered"], out[f"zone {row.code or ''} active"] = row.registered, row.active
    for row in charts["branches"].frame.to_dict("records"):
        for column in ("registered", "active", "new_registrations", "events"):
            out[f"branch {row['branch']} {column}"] = row[column]
    for row in charts["age_branch"].frame.to_dict("records"):
        for name, n in row.items():
            if name != "age_band":
                out[f"age {row['age_band']} {name}"] = n
    for row in charts["flows"].frame.to_dict("records"):
        for to, n in row.items():
            if to != "from_state":
                out[f"flow {row['from_state']} {to}"] = n
    return {key: _number(value) for key, value in out.items() if _number(value) is not None}


def _number(value):
    if isinstance(value, (bool, str)) or value is None:
        return None
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    return int(value)


def compare(board, expected: dict) -> int:
    """Raise WrongAnswer unless every figure the product shows equals the baseline's; returns how many."""
    figures = shown(board)
    zero_ok = {k for k, v in figures.items() if v == 0}  # cells the baseline has no row for are 0
    missing = [k for k in figures if k not in expected and k not in zero_ok]
    if missing:
        raise WrongAnswer(f"B2: the baseline has no figure for {missing[:5]}")
    check_agree("B2 dashboard figures", figures, {k: expected.get(k, 0) for k in figures})
    if len(figures) < 50:
        raise WrongAnswer(f"B2: only {len(figures)} figures shown as numbers; too few to compare")
    return len(figures)


def run(ctx: Context) -> list[Row]:
    db = ctx.db()
    end = end_month(db)
    source = str(Path(db.engine.url.database)) if db.is_sqlite else db.engine
    limit = LIMIT[backend()]
    product_s, board = median_time(lambda: product(db, end), reps=ctx.reps)
    # At 1,000,000 patrons pandas reads 20,000,000 events for a minute or more: one cold run is its time (a
    # warm-up and repetitions would only make the baseline look faster, never change the ratio's verdict).
    once = ctx.size >= BASELINE_ONCE
    baseline_s, expected = median_time(lambda: baseline(source, end), reps=1 if once else ctx.reps, warm_up=not once)
    compared = compare(board, expected)
    row = Row("B2", WHAT, product_s, baseline_s, TARGET, extra={"figures_compared": compared, "load_average": load_average(), "baseline_runs": 1 if once else ctx.reps})
    speedup = baseline_s / product_s
    row.met = product_s <= limit and speedup >= SPEEDUP
    row.note = f"{speedup:.0f}× faster, {compared} figures agree"
    if product_s > limit:
        row.note += f"; {product_s / limit:.1f}× the {limit} s"
    if once:
        row.note += "; pandas timed once, cold"
    return [row]


if __name__ == "__main__":  # python -m bench.b2_dashboard URL: one run, for the memory benchmark
    product_once(sys.argv[1])
