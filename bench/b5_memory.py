"""B5: peak resident memory of the product side of B1 (import) and of B2 (dashboard), each in a fresh process,
on the run's backend (`--db postgres`: the import into a fresh PostgreSQL database, the dashboard of the copied library)."""

from __future__ import annotations

import sys

from bench import b1_import
from bench.common import Context, Row, fresh_database, peak_rss

WHAT = "peak memory"
TARGET = "≤ 600 MB"
LIMIT = 600 * 2**20


def run(ctx: Context) -> list[Row]:
    target = fresh_database("b5-import.db")
    target.dispose()
    measured = {
        "B1 import": peak_rss(b1_import.product_command(b1_import.koha_csv(ctx)), env={"DATABASE_URL": target.url}),
        "B2 dashboard": peak_rss([sys.executable, "-m", "bench.b2_dashboard", ctx.db().url]),
    }
    rows = []
    for what, peak in measured.items():
        row = Row("B5", f"{WHAT}: {what}", target=TARGET, met=peak <= LIMIT, extra={"value": f"{peak / 2**20:.0f} MB", "bytes": peak})
        if not row.met:
            row.note = f"{peak / LIMIT:.1f}× the limit"
        rows.append(row)
    return rows
