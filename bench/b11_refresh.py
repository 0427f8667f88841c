"""B11: incremental refresh. One day's activity (1 % of the patrons, one to three uses each) through crmcore's
importer, which brings the monthly rollups, the patrons' activity dates and last months per kind, and the
dashboard summaries up to date for those patrons alone; against the full rebuild an import did before (every
patron's rollups from the day's month on, then every summary table), on the same copy of the data set.

Each repetition imports another day (today, yesterday …: other patrons), then runs the full rebuild on the
result; the summary tables must be the same row for row, and the rollups and patron dates the same by their
fingerprints, before and after the full rebuild — a fast wrong answer is a failure. Target at 1M: ≤ 5 s.
With B11_CHECK=last (a full rebuild costs minutes at 1M on a loaded machine), every day is imported first and
the full rebuild runs once, on the result of all of them, compared the same way; it is the baseline.
"""

from __future__ import annotations

import csv
import os
import random
import statistics
import time
from datetime import date, timedelta

from sqlalchemy import text

from bench.common import DATA_DIR, Context, Row, WrongAnswer, check_agree, say, scratch_copy

WHAT = "incremental refresh: one day's activity imported"
TARGET = "≤ 5 s"
LIMIT_S = 5.0
SHARE = 100  # one patron in a hundred
MAPPING = {"columns": {"patron": "card", "occurred_on": "date", "kind": "type", "branch": "branch", "count": "count"}}
SUMMARIES = ("dash_state", "dash_flow", "dash_activity", "dash_registration", "dash_cohort", "dash_window")
LAST = ("first_activity_on", "last_activity_on", "last_checkout_month", "last_renewal_month", "last_digital_loan_month",
        "last_pc_session_month", "last_event_attendance_month", "last_visit_month", "last_survey_response_month")


def day_file(db, day: date, number: int) -> tuple[str, int]:
    """The day's activity file: the patrons whose id leaves `number` over SHARE; its path and row count."""
    from crmcore.library.activity import KINDS

    rng = random.Random(number)
    with db.read() as session:
        cards = session.execute(text(f"SELECT ils_id FROM patron WHERE erased_at IS NULL AND id % {SHARE} = :n ORDER BY id"), {"n": number}).scalars().all()
        branches = session.execute(text("SELECT code FROM branch ORDER BY id")).scalars().all()
    path = DATA_DIR / "scratch" / f"b11-day-{number}.csv"
    rows = 0
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["card", "date", "type", "branch", "count"])
        for card in cards:
            for _ in range(rng.choice((1, 1, 2, 3))):
                writer.writerow([card, day.isoformat(), rng.choice(KINDS), rng.choice(branches), rng.choice((1, 1, 2))])
                rows += 1
    return str(path), rows


def answer(db, since: date) -> dict:
    """Every summary table's rows; fingerprints of the rollups and patron dates from `since` on."""
    out: dict = {}
    with db.read() as session:
        for table in SUMMARIES:
            out[table] = sorted(tuple(str(v) for v in row) for row in session.execute(text(f"SELECT * FROM {table}")))
        out["activity_monthly"] = [tuple(row) for row in session.execute(text(
            "SELECT kind, count(*), sum(count), sum(patron_id * count), sum((patron_id % 9973) * (branch_id + 1)) "
            "FROM activity_monthly WHERE month >= :since GROUP BY kind ORDER BY kind"), {"since": since})]
        columns = ", ".join(f"count({c}), sum(CASE WHEN {c} >= :since THEN id % 9973 ELSE 0 END)" for c in LAST)
        out["patron"] = tuple(session.execute(text(f"SELECT {columns} FROM patron"), {"since": since}).one())
    return out


def run(ctx: Context) -> list[Row]:
    db = scratch_copy(ctx.db(), "b11-refresh.db")
    try:
        return [measure(db, size=ctx.size, reps=ctx.reps, check=os.environ.get("B11_CHECK", "each"))]
    finally:
        db.dispose()


def measure(db, *, size: int, reps: int, check: str = "each", first_rebuild: bool = True, first_number: int = 1) -> Row:
    """B11 on `db`, a copy of the data set that it changes (bench/b11_refresh.py's run, or by hand on any backend).
    `check`: "each" day against a full rebuild, or the "last" only (after every day); `first_rebuild` False on a
    copy whose summaries are already those of today's months (one this has run on: then `first_number` past
    the days it imported, whose files would be recognised as imported already)."""
    if check not in ("each", "last"):
        raise ValueError(f"B11_CHECK is 'each' or 'last', not {check!r}")
    from crmcore import imports
    from crmcore.admin.auth import CLI_ACTOR
    from crmcore.library import activity

    today = date.today()

    def full_rebuild() -> None:
        with db.write() as session:
            activity.rebuild_rollups(session, since=state["since"])

    state = {"since": today.replace(day=1)}
    if first_rebuild:
        say("  B11: a first full rebuild (the data set's summaries predate the record of their months) …")
        full_rebuild()
    times, baseline_times, touched, loads = [], [], [], []
    for number in range(reps + 1):  # the first is the warm-up
        day = today - timedelta(days=number)
        path, rows = day_file(db, day, first_number + number)
        state["since"] = min(state["since"], day.replace(day=1)) if check == "last" else day.replace(day=1)
        product_s, summary = _timed(lambda: imports.run_import(db, actor=CLI_ACTOR, kind="activity", path=path, mapping=MAPPING))
        if summary.new != rows:
            raise WrongAnswer(f"B11: {summary.new:,} of the day's {rows:,} rows imported")
        load = _load()
        baseline_s = None
        if check == "each":
            followed = answer(db, state["since"])
            baseline_s, _ = _timed(full_rebuild)
            check_agree(f"B11 day {number + 1} (incremental vs full rebuild)", followed, answer(db, state["since"]))
        say(f"  B11: day {day}: {rows:,} rows, import {product_s:.2f} s, full rebuild {'–' if baseline_s is None else f'{baseline_s:.2f} s'}, load {load}")
        if number:
            times.append(product_s)
            baseline_times.append(baseline_s)
            touched.append(rows)
            loads.append(load)
    if check == "last":
        followed = answer(db, state["since"])
        baseline_s, _ = _timed(full_rebuild)
        check_agree(f"B11 all {reps + 1} days (incremental vs full rebuild)", followed, answer(db, state["since"]))
        say(f"  B11: the full rebuild after every day: {baseline_s:.2f} s, load {_load()}")
        baseline_times = [baseline_s]
    product, baseline = statistics.median(times), statistics.median(baseline_times)
    row = Row("B11", f"{WHAT} ({touched[0]:,} rows, 1 % of {size:,} patrons) vs the full rebuild", product, baseline, TARGET,
              extra={"rows": touched, "import_s": times, "full_rebuild_s": baseline_times, "backend": db.engine.dialect.name,
                     "check": check, "load_average": loads})
    row.met = product <= LIMIT_S if size >= 1_000_000 else None
    return row


def _load() -> str:
    """The 1, 5 and 15 minute load averages (the machine is shared: a figure is read beside its load)."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _timed(fn):
    """Wall time of one call (each repetition imports another day, so median_time's repeated call does not fit) and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result
