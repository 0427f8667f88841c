"""Lapse risk: the probability that a patron has no activity in the next 6 months, from the rollup features.

A logistic regression (scikit-learn, features standardised) is trained on past months — features at each of
TRAIN_CUTOFFS months before the validation month, labelled by the 6 months after each — and validated on a
later held-out month whose 6 following months are all known: its AUC is what the Personas page shows beside
the scores. Scores are then computed at the last complete month for every included patron (features.py:
activity in the last 12 months; a patron without any is lapsed already and gets no score).

Training and validation read the rollups once, for a deterministic sample of patrons (every n-th by id, at most
TRAIN_PATRONS of them); scoring then reads everyone's last 12 months (features.compute) in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import func, select
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from crmcore.insights import features
from crmcore.kpis.summaries import month_index, month_of
from crmcore.models import Patron

HORIZON = 6  # months ahead the label looks
TRAIN_CUTOFFS = (3, 6)  # months before the validation month that training reads (their labels end before it)
TRAIN_SAMPLE = 200_000  # rows of training data at most (seeded)
TRAIN_PATRONS = 100_000  # patrons read for training and validation at most (every n-th by id)
SCORE_CHUNK = 200_000  # patrons scored at a time
SEED = 7


@dataclass
class Model:
    pipeline: object
    auc: float
    trained_on: list[str]  # the cutoff months
    validated_on: str
    train_rows: int
    valid_rows: int
    lapse_share: float  # of the validation month
    sample_every: int = 1  # training and validation read every n-th patron by id


def _labelled(history: features.History, cutoff: int) -> tuple[np.ndarray, np.ndarray]:
    f = history.at(month_of(cutoff))
    return f.values, (~history.came_back(f, months=HORIZON)).astype(np.int8)


def sample_every(session) -> int:
    """Training reads every n-th patron by id: n so that at most TRAIN_PATRONS are read."""
    patrons = session.scalar(select(func.count()).select_from(Patron).where(Patron.erased_at.is_(None))) or 0
    return max(1, -(-patrons // TRAIN_PATRONS))


def fit(session, *, today: date, seed: int = SEED) -> Model:
    """Train on past months, validate on the latest month whose next 6 months are over; ValueError if too little history."""
    last = month_index(features.last_complete_month(today))
    valid = last - HORIZON
    train = [valid - gap for gap in sorted(TRAIN_CUTOFFS, reverse=True)]
    every = sample_every(session)
    history = features.read(session, first=month_of(train[0] - features.WINDOW + 1), last=month_of(last), every=every)
    labelled = [_labelled(history, cutoff) for cutoff in train]
    x_train, y_train = np.concatenate([x for x, _y in labelled]), np.concatenate([y for _x, y in labelled])
    x_valid, y_valid = _labelled(history, valid)
    valid_month = month_of(valid)
    train_months = [month_of(m) for m in train]
    if len(set(y_train)) < 2 or len(set(y_valid)) < 2:
        raise ValueError(f"Lapse risk needs patrons who lapsed and patrons who stayed in the months before {valid_month:%B %Y}: "
                         "import at least 18 months of activity first.")
    rng = np.random.default_rng(seed)
    if len(x_train) > TRAIN_SAMPLE:
        keep = np.sort(rng.choice(len(x_train), TRAIN_SAMPLE, replace=False))
        x_train, y_train = x_train[keep], y_train[keep]
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    pipeline.fit(x_train, y_train)
    auc = float(roc_auc_score(y_valid, pipeline.predict_proba(x_valid)[:, 1]))
    return Model(pipeline=pipeline, auc=round(auc, 3), trained_on=[f"{m:%Y-%m}" for m in train_months], validated_on=f"{valid_month:%Y-%m}",
                 train_rows=int(len(x_train)), valid_rows=int(len(x_valid)), lapse_share=round(float(y_valid.mean()), 3), sample_every=every)


def score(model: Model, values: np.ndarray) -> np.ndarray:
    """The lapse risk (0–1) of each row of features."""
    out = np.empty(len(values), dtype=np.float64)
    for lo in range(0, len(values), SCORE_CHUNK):
        out[lo:lo + SCORE_CHUNK] = model.pipeline.predict_proba(values[lo:lo + SCORE_CHUNK])[:, 1]
    return out


def coefficients(model: Model) -> dict[str, float]:
    """Each documented feature's weight (on standardised features): positive raises the risk."""
    weights = model.pipeline[-1].coef_[0]
    return {name: round(float(w), 3) for name, w in zip(features.FEATURES, weights)}
