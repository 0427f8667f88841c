"""Behaviour personas: k-means over the rollup features, k chosen by silhouette, seeded, small clusters merged.

The features are standardised (z-scores); k runs over K_RANGE and the k with the best silhouette (on a seeded
sample) wins; the model is fitted on a seeded sample of at most FIT_SAMPLE patrons and every patron is
assigned to the nearest centre. A cluster with fewer patrons than the small-cell k is merged into the nearest
other cluster (repeatedly, smallest first), so no persona describes a handful of people. Each persona is named
in plain words from its centre ("mostly digital loans, nearly every month, aged 25-44").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from crmcore.insights.features import BANDS, FEATURES, Features
from crmcore.library.activity import KIND_LABELS

K_RANGE = range(3, 8)
SEED = 7
FIT_SAMPLE = 50_000
SILHOUETTE_SAMPLE = 5_000
SILHOUETTE_MB = 32
# One thread: k-means on its sample is quick on one core, while OpenMP threads spin-waiting on cores the app and
# the worker share made it five times slower (B10 under load).
THREADS = 1
ASSIGN_CHUNK = 25_000  # patrons assigned to their nearest centre at a time


@dataclass
class Clusters:
    labels: np.ndarray  # per patron, 0..len(names)-1
    names: list[str]
    sizes: list[int]
    centres: list[dict[str, float]]  # feature → value (plain units), per persona
    k_tried: dict[int, float]  # k → silhouette
    k: int  # the k chosen (before merging)


def _sample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=size, replace=False)) if n > size else np.arange(n)


def describe(centre: dict[str, float]) -> str:
    """A persona's centre in plain words: its main kinds of use, how often, how recently, the usual age."""
    shares = sorted(((centre[f"share_{k}"], k) for k in KIND_LABELS if f"share_{k}" in centre), reverse=True)
    top, second = shares[0], shares[1]
    name = lambda k: KIND_LABELS[k].lower()  # noqa: E731
    mix = f"mostly {name(top[1])}" if top[0] >= 0.6 else f"{name(top[1])} and {name(second[1])}"
    months = centre["active_months"]
    often = "nearly every month" if months >= 9 else "most months" if months >= 6 else "some months" if months >= 3 else "a month or two a year"
    if centre["recency_months"] >= 6:
        often += ", not lately"
    ages = {b: centre[f"age_{b}"] for b in BANDS}
    band, share = max(ages.items(), key=lambda item: item[1])
    age = f"aged {band}" if share >= 0.4 else "all ages"
    joined = ", joined this year" if centre["tenure_years"] < 1 else ""
    return f"{mix[0].upper()}{mix[1:]}, {often}, {age}{joined}"


def cluster(features: Features, *, small_k: int, seed: int = SEED) -> Clusters:
    """Personas of these patrons (deterministic for the same features and seed)."""
    x = features.values  # float32, as are the z-scores below (no float64 copy of a million patrons)
    n = len(x)
    if n < max(small_k, 2) * 2:
        raise ValueError(f"Personas need at least {max(small_k, 2) * 2} patrons with activity in the last 12 months; there are {n}.")
    mean, spread = x.mean(axis=0, dtype=np.float64), x.std(axis=0, dtype=np.float64)
    z = ((x - mean) / np.where(spread > 0, spread, 1.0)).astype(np.float32)
    rng = np.random.default_rng(seed)
    fit_rows = z[_sample(n, FIT_SAMPLE, rng)].astype(np.float64)
    score_rows = _sample(len(fit_rows), SILHOUETTE_SAMPLE, rng)
    tried, models = {}, {}
    with threadpool_limits(limits=THREADS):
        for k in K_RANGE:
            if k >= len(fit_rows):
                break
            model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(fit_rows)
            labels = model.labels_[score_rows]
            if len(set(labels)) < 2:
                continue
            with config_context(working_memory=SILHOUETTE_MB):  # its pairwise distances in slices, not 5,000² at once
                tried[k] = round(float(silhouette_score(fit_rows[score_rows], labels)), 4)
            models[k] = model
    best = max(tried, key=lambda k: (tried[k], -k))
    centres = models[best].cluster_centers_
    labels = np.empty(n, dtype=np.int64)
    for lo in range(0, n, ASSIGN_CHUNK):  # nearest centre, in chunks (memory stays flat at a million patrons)
        part = z[lo:lo + ASSIGN_CHUNK].astype(np.float64)
        labels[lo:lo + ASSIGN_CHUNK] = ((part[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    labels, alive = merge_small(labels, centres, small_k=small_k)
    out_names, out_sizes, out_centres = [], [], []
    remap = np.full(len(centres), -1)
    for new, old in enumerate(alive):
        remap[old] = new
        members = x[labels == old]
        centre = dict(zip(FEATURES, (round(float(v), 4) for v in members.mean(axis=0, dtype=np.float64))))
        out_centres.append(centre)
        out_sizes.append(int(len(members)))
        out_names.append(describe(centre))
    seen: dict[str, int] = {}
    for i, name in enumerate(out_names):  # two centres can read alike: number the later ones
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            out_names[i] = f"{name} ({seen[name]})"
    return Clusters(labels=remap[labels], names=out_names, sizes=out_sizes, centres=out_centres, k_tried=tried, k=best)


def merge_small(labels: np.ndarray, centres: np.ndarray, *, small_k: int) -> tuple[np.ndarray, list[int]]:
    """Clusters smaller than `small_k` merged into the nearest other centre, smallest first; → labels, the clusters left."""
    labels = labels.copy()
    alive = sorted(set(range(len(centres))))
    while len(alive) > 1:
        sizes = {c: int((labels == c).sum()) for c in alive}
        smallest = min(alive, key=lambda c: (sizes[c], c))
        if sizes[smallest] >= small_k:
            break
        others = [c for c in alive if c != smallest]
        nearest = min(others, key=lambda c: (float(((centres[c] - centres[smallest]) ** 2).sum()), c))
        labels[labels == smallest] = nearest
        alive.remove(smallest)
    alive = [c for c in alive if (labels == c).any()]
    return labels, alive
