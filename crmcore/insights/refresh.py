"""The worker's weekly job: personas and lapse risk recomputed from the rollups and stored for segments and pages
(also on demand: `run`, for `python -m crmcore insights refresh`).

The computation reads in one session and writes in one short transaction at the end, replacing every
persona and every patron's persona and risk (a patron erased or without recent activity keeps no row).
With the setting "lapse_risk_enabled" off no risk is computed and every stored score is removed.
"""

from __future__ import annotations

from datetime import date

import numpy as np
from sqlalchemy import delete

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.bulk import BulkWriter
from crmcore.insights import features, lapse, personas
from crmcore.models import InsightRun, PatronInsight, Persona, utcnow

INSIGHT = PatronInsight.__table__


def recompute(db, *, today: date | None = None) -> str:
    """Recompute and store personas and (unless turned off) lapse risk; returns a one-line account for the log."""
    today = today or date.today()
    with db.read() as session:
        small_k = settings.get(session, "small_cell_k")
        risk_on = bool(settings.get(session, "lapse_risk_enabled"))
        now_features = features.compute(session, cutoff=features.last_complete_month(today))
        try:
            clusters = personas.cluster(now_features, small_k=small_k)
        except ValueError:
            clusters = None
        model, risks, risk_error = None, None, None
        if risk_on:
            try:
                model = lapse.fit(session, today=today)
                risks = lapse.score(model, now_features.values)
            except ValueError as exc:
                risk_error = str(exc)
    stamp = utcnow()
    with db.write() as session:
        conn = session.connection()
        conn.execute(delete(INSIGHT))
        conn.execute(delete(Persona.__table__))
        persona_ids: list[int] = []
        if clusters is not None:
            for name, size, centre in zip(clusters.names, clusters.sizes, clusters.centres):
                row = Persona(name=name, size=size, centre=centre, computed_at=stamp)
                session.add(row)
                session.flush()
                persona_ids.append(row.id)
            session.add(InsightRun(kind="personas", computed_at=stamp, details={
                "k_tried": {str(k): v for k, v in clusters.k_tried.items()}, "k": clusters.k, "personas": len(clusters.names), "patrons": int(len(now_features.patron_ids)),
            }))
        if risk_on:
            details = {"error": risk_error} if model is None else {
                "auc": model.auc, "trained_on": model.trained_on, "validated_on": model.validated_on, "train_rows": model.train_rows,
                "valid_rows": model.valid_rows, "lapse_share": model.lapse_share, "sample_every": model.sample_every, "weights": lapse.coefficients(model),
            }
            session.add(InsightRun(kind="lapse_risk", computed_at=stamp, details=details))
        n = len(now_features.patron_ids)
        if n and (clusters is not None or risks is not None):
            ids = np.asarray(persona_ids, dtype=np.int64)
            persona = [int(v) for v in ids[clusters.labels]] if clusters is not None else [None] * n
            risk = [round(float(v), 4) for v in risks] if risks is not None else [None] * n
            writer = BulkWriter(conn)
            stamp_value = writer.timestamp(INSIGHT, "computed_at", stamp)
            writer.append(INSIGHT, ["patron_id", "persona_id", "lapse_risk", "computed_at"],
                          [[int(v) for v in now_features.patron_ids], persona, risk, [stamp_value] * n])
    parts = [f"{len(clusters.names)} personas" if clusters else "no personas (too few active patrons)"]
    if risk_on:
        parts.append(f"lapse risk AUC {model.auc}" if model else "no lapse risk (too little history)")
    return f"{n:,} patrons: " + ", ".join(parts)


def weekly(db) -> str:
    """The worker's weekly recomputation (worker.JOBS)."""
    return recompute(db)


def run(db, *, actor: Actor, today: date | None = None) -> str:
    """Recompute personas and lapse risk now (an administrator, from the command line), as the weekly job does."""
    require(actor, Perm.MANAGE_SETTINGS)
    return recompute(db, today=today)
