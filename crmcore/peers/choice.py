"""Choosing peers among one survey year's library systems: same state, same locale, a population band, or nearest N.

The nearest N are by Euclidean distance over three standardised measures of size: the z-scores (over every
library of that year with all three known) of log10(service population), log10(operating expenditure) and
the number of branch libraries. Ties are broken by FSCS key, so the same year and library give the same peers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WAYS = ("state", "locale", "population_band", "nearest")
WAY_LABELS = {"state": "Same state", "locale": "Same locale (city, suburb, town, rural)", "population_band": "Same population band",
              "nearest": "Nearest in size (population, expenditure, branches)"}
# Service-population bands (people), as the survey's own tables group libraries.
BANDS = (0, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, float("inf"))
DISTANCE_COLUMNS = ("population", "expenditure", "branches")


def band_of(population: float | None) -> tuple[float, float] | None:
    """The band [low, high) the population falls in, or None when it is unknown."""
    if population is None or pd.isna(population):
        return None
    i = int(np.searchsorted(BANDS, population, side="right")) - 1
    return BANDS[i], BANDS[i + 1]


def standardised(rows: pd.DataFrame) -> pd.DataFrame:
    """The three distance measures as z-scores (index = FSCS key); libraries missing any are left out."""
    known = rows.dropna(subset=list(DISTANCE_COLUMNS))
    known = known[(known["population"] > 0) & (known["expenditure"] > 0)]
    values = pd.DataFrame({
        "population": np.log10(known["population"].astype(float)),
        "expenditure": np.log10(known["expenditure"].astype(float)),
        "branches": known["branches"].astype(float),
    }).set_axis(known["fscs_key"].to_numpy())
    spread = values.std(ddof=0).replace(0, 1.0)
    return (values - values.mean()) / spread


def distances(rows: pd.DataFrame, own: str) -> pd.Series:
    """Every other library's distance from `own` (FSCS key → distance), nearest first, ties by key."""
    z = standardised(rows)
    if own not in z.index:
        raise ValueError(f"The library {own} lacks a population, an expenditure or a branch count in this year's survey, so no distance can be measured; choose peers another way.")
    d = np.sqrt(((z - z.loc[own]) ** 2).sum(axis=1)).drop(own)
    frame = pd.DataFrame({"key": d.index, "d": d.to_numpy().round(12)}).sort_values(["d", "key"])
    return pd.Series(frame["d"].to_numpy(), index=frame["key"].to_numpy())


def peers(rows: pd.DataFrame, *, own: str, way: str, n: int = 10) -> list[str]:
    """FSCS keys of the peers of `own` in one year's rows, chosen `way` (WAYS); sorted by key except nearest (nearest first)."""
    if way not in WAYS:
        raise ValueError(f"Peers are chosen by {', '.join(WAY_LABELS.values())}; not {way!r}.")
    mine = rows[rows["fscs_key"] == own]
    if mine.empty:
        raise ValueError(f"The library {own} is not in this year's survey; choose another year.")
    me = mine.iloc[0]
    others = rows[rows["fscs_key"] != own]
    if way == "nearest":
        if not 1 <= n <= 500:
            raise ValueError(f"Nearest peers: choose between 1 and 500, not {n}.")
        return list(distances(rows, own).index[:n])
    if way == "population_band":
        band = band_of(me["population"])
        if band is None:
            raise ValueError(f"The library {own} has no service population in this year's survey; choose peers another way.")
        chosen = others[(others["population"] >= band[0]) & (others["population"] < band[1])]
    else:
        value = me[way]
        if value is None or pd.isna(value):
            raise ValueError(f"The library {own} has no {way} in this year's survey; choose peers another way.")
        chosen = others[others[way] == value]
    return sorted(chosen["fscs_key"])
