"""B1b: an activity CSV (2,000,000 rows by default, `--rows N`) through crmcore's importer, then the same file
again, against `sqlite-utils insert --csv` of the same file.

The file is what an ILS's circulation export looks like with its titles still in it (a title column the
mapping leaves unread): one row per use, about 7 % of them identical to another row (the same patron,
day, kind, branch and count: two checkouts of the same day), each a separate event. The patrons are in
the database already (a template with one patron per 40 rows, copied fresh for each repetition). Both
sides run as the command an operator would type. Reported: the first load against the baseline
(target ≤ 2.0), the re-import of the unchanged file as a share of the first load (≤ 10 %), and the
peak resident memory of the first load and of the re-import (≤ 600 MB each). With `--db postgres` the
patrons are a PostgreSQL database copied (CREATE DATABASE … TEMPLATE) for each repetition and the baseline
is psql's `\copy` of the same file into a bare table of text columns.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import sqlite3
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine

from bench import postgres
from bench.common import DATA_DIR, SEED, Context, Row, backend, check_agree, fresh_database, median_time, peak_rss, run_checked, say

WHAT = "import activity (2M rows), re-import"
TARGET = "ratio ≤ 2.0"
ROWS = 2_000_000
SHARE_LIMIT, MEMORY_LIMIT = 0.10, 600 * 2**20
HEADER = ["patron_barcode", "date", "type", "branch", "count", "genre", "title"]
MAPPING = {"columns": {"patron": "patron_barcode", "occurred_on": "date", "kind": "type", "branch": "branch", "count": "count", "category": "genre"}}
KINDS = ["Checkout"] * 6 + ["Renewal"] * 2 + ["digital loan", "Visit", "PC session"]
BRANCHES = ["CEN", "BAL", "COL", "NGA", "FRE", "UNI", "MAG", "DEL"]
GENRES = ["Mystery", "Fiction", "Cooking", "Biography", "Science fiction", "Children's", "History", "Romance", "Travel", "Picture book", "DVD"] + [""] * 5


def patrons_for(rows: int) -> int:
    return max(1_000, rows // 40)


def template(patrons: int) -> Path | str:
    """A migrated database holding `patrons` patrons (card numbers 21000000000001 …), a tenth opted in to history:
    a file, or on PostgreSQL the name of a database of this checkout."""
    if backend() == "postgres":
        return _postgres_template(patrons)
    path = DATA_DIR / f"b1b-patrons-{patrons}.db"
    if path.exists():
        return path
    say(f"  B1b: {patrons:,} patrons into {path.name} …")
    db = fresh_database(f"b1b-patrons-{patrons}.partial.db")
    partial = Path(db.engine.url.database)
    db.dispose()
    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    with sqlite3.connect(partial) as conn:
        conn.executemany(
            "INSERT INTO patron (ils_id, history_opt_in, created_at, updated_at) VALUES (?, ?, ?, ?)",
            ((card(i), i % 10 == 0, now, now) for i in range(1, patrons + 1)),
        )
    with sqlite3.connect(partial) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    partial.rename(path)
    for stale in partial.parent.glob(partial.name + "*"):
        stale.unlink()
    return path


def _postgres_template(patrons: int) -> str:
    name = postgres.scratch_name(f"b1b-patrons-{patrons}.db")
    if postgres.exists(name):
        return name
    say(f"  B1b: {patrons:,} patrons into the PostgreSQL database {name} …")
    partial = fresh_database(f"b1b-patrons-{patrons}-partial.db")
    now = datetime.now(timezone.utc)
    with partial.engine.begin() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy("COPY patron (ils_id, history_opt_in, created_at, updated_at) FROM STDIN") as copy:
            for i in range(1, patrons + 1):
                copy.write_row((card(i), i % 10 == 0, now, now))
    partial.dispose()
    postgres.rename(partial.engine.url.database, name)
    return name


def card(i: int) -> str:
    return f"{21000000000000 + i}"


def activity_csv(rows: int) -> Path:
    """`rows` activity rows over 2024–2025 (written once per size and cached)."""
    path = DATA_DIR / f"b1b-activity-{rows}.csv"
    if path.exists():
        return path
    say(f"  B1b: writing {rows:,} activity rows to {path.name} …")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    patrons, start = patrons_for(rows), date(2024, 1, 1)
    days = [(start + timedelta(days=d)).isoformat() for d in range(731)]
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        written, previous = 0, None
        while written < rows:
            if previous is not None and rng.random() < 0.07:
                row = previous[:6] + [f"Another Title {rng.randrange(10**6)}"]  # the same event values: another checkout that day
            else:
                row = [card(rng.randint(1, patrons)), rng.choice(days), rng.choice(KINDS), rng.choice(BRANCHES), rng.choice((1, 1, 1, 1, 2, 3)), rng.choice(GENRES), f"Some Title {rng.randrange(10**6)}"]
            writer.writerow(row)
            previous, written = row, written + 1
    partial.rename(path)
    return path


def product_command(csv_path: Path, mapping_path: Path) -> list[str]:
    return [sys.executable, "-m", "crmcore", "import", "activity", str(csv_path), "--mapping", str(mapping_path), "--errors", str(DATA_DIR / "scratch" / "b1b-errors.csv")]


def baseline_command(csv_path: Path, target: Path) -> list[str]:
    return [sys.executable, "-m", "sqlite_utils", "insert", str(target), "activity", str(csv_path), "--csv"]


def product_answer(url: str) -> dict:
    events, total, monthly = _one(url, "SELECT count(*), sum(count), (SELECT sum(count) FROM activity_monthly) FROM activity_event")
    return {"events": events, "sum of count": int(total or 0), "sum of monthly rollups": int(monthly or 0)}


def baseline_answer(url: str) -> dict:
    events, total = _one(url, "SELECT count(*), sum(CAST(count AS INTEGER)) FROM activity")
    return {"events": events, "sum of count": int(total or 0), "sum of monthly rollups": int(total or 0)}


def _one(url: str, sql: str) -> tuple:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.exec_driver_sql(sql).one())
    finally:
        engine.dispose()


def psql_copy_command(csv_path: Path, name: str) -> list[str]:
    """The PostgreSQL baseline: psql's client-side COPY of the file into the bare table `activity` of database `name`."""
    copy = f"\\copy activity FROM '{csv_path}' WITH (FORMAT csv, HEADER true)"
    return ["psql", postgres.libpq_url(name), "-v", "ON_ERROR_STOP=1", "-q", "-c", copy]


def run(ctx: Context) -> list[Row]:
    rows = getattr(ctx, "rows", None) or ROWS
    csv_path, patrons = activity_csv(rows), template(patrons_for(rows))
    scratch = DATA_DIR / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    mapping_path = scratch / "b1b-mapping.json"
    mapping_path.write_text(json.dumps(MAPPING))
    on_postgres = backend() == "postgres"
    product_path, product_name = scratch / "b1b-product.db", postgres.scratch_name("b1b-product.db")
    product_url = postgres.url_for(product_name) if on_postgres else f"sqlite:///{product_path}"
    env = {"DATABASE_URL": product_url}

    def fresh_product():
        if on_postgres:
            postgres.create(product_name, template=patrons)
            return
        for stale in scratch.glob(product_path.name + "*"):
            stale.unlink()
        shutil.copy(patrons, product_path)

    def product():
        run_checked(product_command(csv_path, mapping_path), env=env)

    baseline_path, baseline_name = scratch / "b1b-baseline.db", postgres.scratch_name("b1b-baseline.db")
    baseline_url = postgres.url_for(baseline_name) if on_postgres else f"sqlite:///{baseline_path}"

    def fresh_baseline():
        if on_postgres:
            postgres.create(baseline_name)
            engine = create_engine(baseline_url)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"CREATE TABLE activity ({', '.join(f'{c} text' for c in HEADER)})")  # constant names
            engine.dispose()
            return
        for stale in scratch.glob(baseline_path.name + "*"):
            stale.unlink()

    def baseline():
        run_checked(psql_copy_command(csv_path, baseline_name) if on_postgres else baseline_command(csv_path, baseline_path))

    say(f"  B1b: {rows:,} rows, first loads …")
    first_s, _ = median_time(product, reps=ctx.reps, setup=fresh_product)
    say("  B1b: re-imports of the unchanged file …")
    again_s, _ = median_time(product, reps=ctx.reps)  # the database holds the file already
    answer = product_answer(product_url)
    say("  B1b: peak memory …")
    again_peak = peak_rss(product_command(csv_path, mapping_path), env=env)
    fresh_product()
    first_peak = peak_rss(product_command(csv_path, mapping_path), env=env)
    say("  B1b: psql \\copy …" if on_postgres else "  B1b: sqlite-utils insert …")
    baseline_s, _ = median_time(baseline, reps=ctx.reps, setup=fresh_baseline)
    check_agree("B1b imported activity", answer, baseline_answer(baseline_url))
    check_agree("B1b first load", product_answer(product_url), answer)

    what = f"import activity ({rows:,} rows)" + (" vs psql \\copy" if on_postgres else "")
    load = Row("B1b", what, first_s, baseline_s, TARGET)
    load.met = load.ratio <= 2.0
    if not load.met:
        load.note = f"{load.ratio / 2.0:.1f}× over"
    share = again_s / first_s
    reimport = Row("B1b", f"re-import of the unchanged file ({again_s:.1f} s)", again_s, None, "≤ 10 % of the first load",
                   met=share <= SHARE_LIMIT, extra={"value": f"{share:.1%}", "share": share})
    memory = [
        Row("B1b", f"peak memory: {label}", target="≤ 600 MB", met=peak <= MEMORY_LIMIT, extra={"value": f"{peak / 2**20:.0f} MB", "bytes": peak})
        for label, peak in (("first load", first_peak), ("re-import", again_peak))
    ]
    return [load, reimport, *memory]
