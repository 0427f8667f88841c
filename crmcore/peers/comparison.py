"""Per-capita measures of the library against its peers (own value, peer median, percentile, rank), a trend over
the imported years, and Liaison's own live figures beside the survey's as a data-quality check.

Percentile: the share of peers with a lower value, counting equal values half (0–100). Rank: 1 is the highest
value among the peers and the library. A measure whose parts are missing (survey codes -1, -3, -4, -9) is left
out for that library, never taken as zero.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import ActivityMonthly, CirculationMonthly, Patron, ProgramEvent
from crmcore.peers import choice, survey

# measure → (label, numerator column, scale per person of the service population)
MEASURES = {
    "visits": ("Visits per person", "visits", 1),
    "circulation": ("Circulation per person", "circulation", 1),
    "registered": ("Registered users per person (market penetration)", "registered", 1),
    "programs": ("Program sessions per 1,000 people", "programs", 1000),
    "attendance": ("Program attendance per 1,000 people", "attendance", 1000),
    "e_circulation": ("Electronic circulation per person", "e_circulation", 1),
    "expenditure": ("Operating expenditure per person", "expenditure", 1),
}


def per_capita(rows: pd.DataFrame) -> pd.DataFrame:
    """FSCS key × measure: each measure per person (or per 1,000) of the service population; NaN when unknown."""
    population = pd.to_numeric(rows["population"], errors="coerce").astype(float).where(lambda p: p > 0)
    out = pd.DataFrame(index=rows["fscs_key"].to_numpy())
    for measure, (_label, column, scale) in MEASURES.items():
        out[measure] = (pd.to_numeric(rows[column], errors="coerce").astype(float) * scale / population).to_numpy()
    return out


def standing(values: pd.DataFrame, *, own: str, peer_keys: list[str]) -> pd.DataFrame:
    """One row per measure: own value, peer median, percentile among peers, rank among peers and own, how many."""
    out = []
    for measure, (label, _c, _s) in MEASURES.items():
        mine = values.at[own, measure] if own in values.index else np.nan
        theirs = values.loc[[k for k in peer_keys if k in values.index], measure].dropna()
        if np.isnan(mine) or theirs.empty:
            out.append({"measure": label, "own": None if np.isnan(mine) else round(float(mine), 3), "peer_median": None if theirs.empty else round(float(theirs.median()), 3),
                        "percentile": None, "rank": None, "compared": int(len(theirs))})
            continue
        below, equal = float((theirs < mine).sum()), float((theirs == mine).sum())
        out.append({"measure": label, "own": round(float(mine), 3), "peer_median": round(float(theirs.median()), 3),
                    "percentile": round(100 * (below + equal / 2) / len(theirs), 1), "rank": int((theirs > mine).sum()) + 1, "compared": int(len(theirs))})
    return pd.DataFrame(out)


def compare(session: Session, *, actor: Actor, year: int, own: str, way: str, n: int = 10) -> dict:
    """Everything the Peers page shows for one year: the peers, the standing table and the dots of each measure."""
    require(actor, Perm.VIEW_DASHBOARD)
    rows = survey.year_rows(session, actor=actor, year=year)
    if rows.empty:
        raise ValueError(f"No survey year {year} is imported.")
    own = own.strip().upper()
    keys = choice.peers(rows, own=own, way=way, n=n)
    if not keys:
        raise ValueError(f"No other library in the {year} survey is a peer by {choice.WAY_LABELS[way].lower()}; choose peers another way.")
    values = per_capita(rows)
    names = dict(zip(rows["fscs_key"], rows["name"]))
    dots = values.loc[[own, *keys]].reset_index(names="fscs_key").melt(id_vars="fscs_key", var_name="measure", value_name="value").dropna()
    dots["library"] = dots["fscs_key"].map(names)
    dots["own"] = dots["fscs_key"] == own
    dots["measure"] = dots["measure"].map(lambda m: MEASURES[m][0])
    peer_rows = rows[rows["fscs_key"].isin(keys)][["fscs_key", "name", "state", "locale", "population", "expenditure", "branches"]]
    return {"peers": peer_rows.reset_index(drop=True), "standing": standing(values, own=own, peer_keys=keys), "dots": dots.reset_index(drop=True),
            "own_name": names.get(own, own)}


def trend(session: Session, *, actor: Actor, own: str, way: str, n: int = 10) -> pd.DataFrame:
    """Each imported year: the library's per-capita measures and its peers' medians (peers chosen again each year)."""
    require(actor, Perm.VIEW_DASHBOARD)
    out = []
    for year in sorted(survey.years(session, actor=actor)):
        rows = survey.year_rows(session, actor=actor, year=year)
        if own not in set(rows["fscs_key"]):
            continue
        try:
            keys = choice.peers(rows, own=own, way=way, n=n)
        except ValueError:
            keys = []
        values = per_capita(rows)
        for measure, (label, _c, _s) in MEASURES.items():
            mine = values.at[own, measure]
            theirs = values.loc[keys, measure].dropna() if keys else pd.Series(dtype=float)
            out.append({"year": year, "measure": label, "own": None if np.isnan(mine) else round(float(mine), 3),
                        "peer_median": None if theirs.empty else round(float(theirs.median()), 3)})
    return pd.DataFrame(out, columns=["year", "measure", "own", "peer_median"])


def live_figures(session: Session, *, actor: Actor, year: int, own: str) -> pd.DataFrame:
    """Liaison's own figures for the calendar year beside the survey row's (registered patrons, circulation,
    program attendance): far apart means an import is missing or the survey counts differently."""
    require(actor, Perm.VIEW_DASHBOARD)
    start, end = date(year, 1, 1), date(year + 1, 1, 1)
    p, am, cm, pe = Patron.__table__.c, ActivityMonthly.__table__.c, CirculationMonthly.__table__.c, ProgramEvent.__table__.c
    registered = session.execute(select(func.count()).select_from(Patron.__table__).where(p.erased_at.is_(None), (p.registered_on.is_(None)) | (p.registered_on < end))).scalar_one()
    lent = ("checkout", "renewal", "digital_loan")
    by_patron = session.execute(select(func.coalesce(func.sum(am.count), 0)).where(am.month >= start, am.month < end, am.kind.in_(lent))).scalar_one()
    counted = session.execute(select(func.coalesce(func.sum(cm.count), 0)).where(cm.month >= start, cm.month < end, cm.kind.in_(lent))).scalar_one()
    attended = session.execute(select(func.coalesce(func.sum(func.coalesce(pe.attendance_in_person, 0) + func.coalesce(pe.attendance_online, 0)), 0))
                               .where(pe.held_on >= start, pe.held_on < end)).scalar_one()
    row = survey.year_rows(session, actor=actor, year=year)
    row = row[row["fscs_key"] == own.strip().upper()]
    reported = row.iloc[0] if not row.empty else None

    def said(column: str):
        value = None if reported is None else reported[column]
        return None if value is None or pd.isna(value) else int(value)

    return pd.DataFrame([
        {"figure": "Registered patrons", "survey": said("registered"), "liaison": int(registered)},
        {"figure": "Circulation (checkouts, renewals, digital loans)", "survey": said("circulation"), "liaison": int(max(by_patron, counted))},
        {"figure": "Program attendance", "survey": said("attendance"), "liaison": int(attended)},
    ])
