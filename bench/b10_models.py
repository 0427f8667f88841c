"""B10: personas (features + k-means with k by silhouette) and lapse risk (fit on past months + score every patron)
over the rollups, their times and the peak memory of the whole weekly job in a fresh process."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from bench.common import Context, Row, median_time, peak_rss, scratch_copy

WHAT = "personas and lapse risk"
TARGET = "≤ 60 s and ≤ 30 s; peak ≤ 1 GB"
LIMIT = 2**30


def personas_once(db) -> int:
    from crmcore.insights import features, personas

    with db.read() as session:
        f = features.compute(session, cutoff=features.last_complete_month(date.today()))
    return len(personas.cluster(f, small_k=5).names)


def risk_once(db) -> int:
    from crmcore.insights import features, lapse

    with db.read() as session:
        model = lapse.fit(session, today=date.today())
        f = features.compute(session, cutoff=features.last_complete_month(date.today()))
    return int((lapse.score(model, f.values) >= 0.5).sum())


def run(ctx: Context) -> list[Row]:
    db = ctx.db()
    persona_s, found = median_time(lambda: personas_once(db), reps=ctx.reps)
    risk_s, _ = median_time(lambda: risk_once(db), reps=ctx.reps)
    copy = scratch_copy(db, "b10.db")
    peak = peak_rss([sys.executable, "-m", "bench.b10_models", str(Path(copy.engine.url.database))])
    return [
        Row("B10", f"{WHAT}: personas ({found} found)", persona_s, None, "≤ 60 s", met=persona_s <= 60),
        Row("B10", f"{WHAT}: lapse risk (fit and score)", risk_s, None, "≤ 30 s", met=risk_s <= 30),
        Row("B10", f"{WHAT}: peak memory of the weekly job", target="≤ 1 GB", met=peak <= LIMIT, extra={"value": f"{peak / 2**20:.0f} MB", "bytes": peak}),
    ]


if __name__ == "__main__":  # the weekly job on a copy of a data set, for peak_rss
    from crmcore.db import Database
    from crmcore.insights import refresh

    print(refresh.recompute(Database(f"sqlite:///{sys.argv[1]}")), file=sys.stderr)
