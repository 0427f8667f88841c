"""B10: personas (features + k-means with k by silhouette) and lapse risk (fit on past months + score every patron)
over the rollups, their times and the peak memory of the whole weekly job in a fresh process.

Works on whichever database `ctx.db()` gives (SQLite or PostgreSQL). The weekly job run for the peak memory
replaces the data set's personas and scores (derived tables only, rebuilt by every run).
"""

from __future__ import annotations

import sys
from datetime import date

from bench.common import Context, Row, median_time, peak_rss

WHAT = "personas and lapse risk"
TARGET = "≤ 60 s and ≤ 30 s; peak ≤ 1 GB"
LIMIT = 2**30


def personas_once(db) -> int:
    from crmcore.insights import features, personas

    with db.read() as session:
        f = features.compute(session, cutoff=features.last_complete_month(date.today()))
    return len(personas.cluster(f, small_k=5).names)


def risk_once(db):
    from crmcore.insights import features, lapse

    with db.read() as session:
        model = lapse.fit(session, today=date.today())
        f = features.compute(session, cutoff=features.last_complete_month(date.today()))
    lapse.score(model, f.values)
    return model


def run(ctx: Context) -> list[Row]:
    db = ctx.db()
    persona_s, found = median_time(lambda: personas_once(db), reps=ctx.reps)
    risk_s, model = median_time(lambda: risk_once(db), reps=ctx.reps)
    peak = peak_rss([sys.executable, "-m", "bench.b10_models", db.engine.url.render_as_string(hide_password=False)])
    trained = "every patron" if model.sample_every == 1 else f"every {model.sample_every}th patron"
    return [
        Row("B10", f"{WHAT}: personas ({found} found)", persona_s, None, "≤ 60 s", met=persona_s <= 60),
        Row("B10", f"{WHAT}: lapse risk (fit and score)", risk_s, None, "≤ 30 s", met=risk_s <= 30,
            note=f"AUC {model.auc} on {model.validated_on}, trained on {trained}", extra={"auc": model.auc, "sample_every": model.sample_every}),
        Row("B10", f"{WHAT}: peak memory of the weekly job", target="≤ 1 GB", met=peak <= LIMIT, extra={"value": f"{peak / 2**20:.0f} MB", "bytes": peak}),
    ]


if __name__ == "__main__":  # the weekly job on a data set (its database URL), for peak_rss
    from crmcore.db import Database
    from crmcore.insights import refresh

    print(refresh.recompute(Database(sys.argv[1])), file=sys.stderr)
