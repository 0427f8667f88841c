"""python -m bench --size N [--db sqlite|postgres] [--only B1,B3] [--reps 3] [--rows N (B1b)]: run the benchmarks,
print a table, write latest.json (and size-N.json, the newest run at that size); on PostgreSQL
latest-postgres.json and size-N-postgres.json. A run of some benchmarks only (--only) writes its own file
instead, named for them (b2-b3-1000000-postgres.json), so a full run's files keep every benchmark.

Defined in BENCHMARKS.md (shared folder). Run by hand (`make bench SIZE=100000`), never in CI.
Exit status 1 when a product answer differs from its baseline's (a fast wrong answer is a failure).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone

from bench import postgres
from bench.common import BACKENDS, RESULTS_DIR, Context, Row, WrongAnswer, machine, say

# id -> module (bench/<module>.py) with `WHAT`, `TARGET` and `run(ctx) -> list[Row]`.
BENCHMARKS = {
    "B1": "b1_import",
    "B1b": "b1b_activity",
    "B2": "b2_dashboard",
    "B3": "b3_segments",
    "B4": "b4_sending",
    "B4r": "b4r_recommendations",
    "B5": "b5_memory",
    "B6": "b6_page",
    "B7": "b7_growth",
    "B8": "b8_journeys",
    "B10": "b10_models",
    "B9": "b9_texts",
    "B11": "b11_refresh",
    "B12": "b12_workers",
    "B13": "b13_replicas",
}


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _result(row: Row) -> str:
    if not row.agree:
        return "WRONG ANSWER"
    if row.met is None:
        return row.note or "–"
    return ("met" if row.met else "MISSED") + (f" ({row.note})" if row.note else "")


def table(rows: list[Row]) -> str:
    """The results as a Markdown table (printed, and pasted into the README)."""
    lines = ["| id | what | product | baseline | ratio | target at 1M | result |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "–" if r.ratio is None else f"{r.ratio:.2f}×"
        if "value" in r.extra:  # benchmarks that measure something other than time (memory)
            product = str(r.extra["value"])
        else:
            product = _seconds(r.product_s)
        lines.append(f"| {r.id} | {r.what} | {product} | {_seconds(r.baseline_s)} | {ratio} | {r.target} | {_result(r)} |")
    return "\n".join(lines)


def run_one(bench_id: str, ctx: Context) -> list[Row]:
    """Run one benchmark; a missing feature or a disagreement becomes a row that says so."""
    module = importlib.import_module(f"bench.{BENCHMARKS[bench_id]}")
    say(f"{bench_id}: {module.WHAT} …")
    try:
        return module.run(ctx)
    except WrongAnswer as exc:
        return [Row(bench_id, module.WHAT, target=module.TARGET, met=False, agree=False, note=str(exc))]
    except (ImportError, AttributeError) as exc:
        # The feature this benchmark measures has not landed (or its API changed): say which.
        traceback.print_exc()
        return [Row(bench_id, module.WHAT, target=module.TARGET, note=f"not run: {type(exc).__name__}: {exc}")]


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def result_names(size: int, backend: str, only: list[str] | None = None) -> tuple[str, ...]:
    """The result files of a run: SQLite keeps the plain names, another backend adds its own; a partial run
    (`only`) writes one file named for its benchmarks."""
    suffix = "" if backend == "sqlite" else f"-{backend}"
    if only:
        return (f"{'-'.join(i.lower() for i in only)}-{size}{suffix}.json",)
    return f"latest{suffix}.json", f"size-{size}{suffix}.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Liaison's benchmarks.")
    parser.add_argument("--size", type=int, default=10_000, help="patrons in the demo library (about 20 events each)")
    parser.add_argument("--only", default="", help="comma-separated ids, e.g. B1,B3 (default: all)")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions after the warm-up (median reported)")
    parser.add_argument("--rows", type=int, default=None, help="B1b: activity rows in its file (default 2,000,000)")
    parser.add_argument("--db", choices=BACKENDS, default="sqlite",
                        help=f"the backend: sqlite (bench/data/), or postgres (the server at ${postgres.URL_VARIABLE}, default {postgres.DEFAULT_URL})")
    parser.add_argument("--regenerate", action="store_true", help="regenerate the cached data set")
    args = parser.parse_args(argv)
    if args.reps < 3:
        parser.error("--reps must be at least 3 (figures are medians of at least 3 runs)")
    by_upper = {b.upper(): b for b in BENCHMARKS}
    ids = [by_upper.get(i.strip().upper(), i.strip()) for i in args.only.split(",") if i.strip()] or list(BENCHMARKS)
    unknown = [i for i in ids if i not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")

    ctx = Context(size=args.size, reps=args.reps, regenerate=args.regenerate, rows=args.rows, backend=args.db)
    started = time.perf_counter()
    rows: list[Row] = []
    for bench_id in ids:
        rows.extend(run_one(bench_id, ctx))

    print(f"\nLiaison benchmarks, {args.size:,} patrons on {args.db}, median of {args.reps} after a warm-up\n")
    print(table(rows))
    for r in rows:
        if not r.agree:
            print(f"\n{r.id} FAILED: product and baseline disagree: {r.note}")
    report = {
        "size": args.size,
        "backend": args.db,
        "reps": args.reps,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
        "commit": git_commit(),
        "machine": machine(backend=args.db),
        "rows": [r.as_dict() for r in rows],
        "table": table(rows),
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=2, default=str) + "\n"
    names = result_names(args.size, args.db, ids if args.only else None)
    for name in names:
        (RESULTS_DIR / name).write_text(text)
    print(f"\nmachine: {report['machine']}\nwritten: {' and '.join(str(RESULTS_DIR / n) for n in names)}")
    return 1 if any(not r.agree for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
