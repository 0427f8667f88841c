"""B1's floor: what SQLite alone needs to store what a patron import stores, with nothing else to do.

    python -m bench.b1_floor IMPORTED.db [--synchronous FULL|NORMAL|OFF]

Copies the rows a finished import left (patrons with the columns an import writes, consent history,
current consent) out of IMPORTED.db into memory as ready-made tuples, then times writing them into an
empty migrated database the way an import does (executemany in 20,000-row transactions, secondary
indexes dropped first and built at the end), on a connection set up as Liaison's are (WAL, foreign
keys, synchronous=FULL unless told otherwise). No reading, checking, hashing or summaries: any import of
the same rows on the same machine takes at least this long.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from crmcore.db import migrate

BATCH = 20_000
WRITTEN = {  # the columns a patron import writes, per table
    "patron": "ils_id, first_name, last_name, email, phone, birth_year, age_band, zone_id, branch_id, patron_type, "
    "registered_on, expires_on, history_opt_in, row_hash, created_at, updated_at",
    "consent_record": "patron_id, channel, topic, granted, recorded_at, source, wording_version",
    "current_consent": "patron_id, channel, topic, granted, updated_at",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("imported", type=Path)
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL", "OFF"])
    args = parser.parse_args(argv)
    source = sqlite3.connect(args.imported)
    codes = {t: source.execute(f"SELECT * FROM {t}").fetchall() for t in ("branch", "zone")}
    rows = {t: source.execute(f"SELECT {columns} FROM {t} ORDER BY rowid").fetchall() for t, columns in WRITTEN.items()}
    indexes = source.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN (?, ?, ?)", tuple(WRITTEN)
    ).fetchall()
    source.close()
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "floor.db"
        migrate(f"sqlite:///{target}")
        conn = sqlite3.connect(target, isolation_level=None)
        for pragma in ("journal_mode = WAL", f"synchronous = {args.synchronous}", "foreign_keys = ON"):
            conn.execute(f"PRAGMA {pragma}")
        for table, values in codes.items():
            conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(values[0]))})", values)
        for name, _sql in indexes:
            conn.execute(f"DROP INDEX {name}")
        total = 0.0
        for table, columns in WRITTEN.items():
            sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(columns.split(',')))})"
            start = time.perf_counter()
            for at in range(0, len(rows[table]), BATCH):
                conn.execute("BEGIN")
                conn.executemany(sql, rows[table][at : at + BATCH])
                conn.execute("COMMIT")
            total += _report(f"{table}: {len(rows[table]):,} rows", start)
        start = time.perf_counter()
        conn.execute("BEGIN")
        for _name, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        total += _report(f"{len(indexes)} secondary indexes", start)
        conn.close()
    print(f"total {total:.2f} s (synchronous={args.synchronous})")


def _report(what: str, start: float) -> float:
    elapsed = time.perf_counter() - start
    print(f"{what}: {elapsed:.2f} s", flush=True)
    return elapsed


if __name__ == "__main__":
    main()
