"""The dashboard's figures: one function per figure, whose docstring is its definition.

The docstrings are shown as captions on the dashboard and listed in the README. Every function reads
the `dash_*` summary tables (or, for outreach, the interaction table) with SQL aggregates, so figures
do not change when retention deletes raw activity. Months are calendar months, given by their first
day; a figure "at" a month is its value at that month's end. These numbers are not yet suppressed:
crmcore.kpis.dashboard applies small-cell suppression before anything is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session

from crmcore.kpis.summaries import ACTIVE_STATES, STATES, month_index, month_of, month_start
from crmcore.models import Branch, DashActivity, DashCohort, DashFlow, DashRegistration, DashState, Interaction, Patron, ProgramEvent, Zone

PROGRAM_KIND = "event_attendance"


@dataclass(frozen=True)
class Filters:
    """What the manager selected: the period (`months` calendar months ending with `end_month`) and
    home branches, zones and patron types (empty = all). Hashable, so it can key a cache."""

    end_month: date
    months: int = 12
    branch_ids: tuple[int, ...] = ()
    zone_ids: tuple[int, ...] = ()
    patron_types: tuple[str, ...] = ()

    @classmethod
    def between(cls, first_month: date, last_month: date, **groups) -> Filters:
        """The period from `first_month` to `last_month`, both included (swapped if given backwards)."""
        first, last = sorted((month_index(first_month), month_index(last_month)))
        return cls(month_of(last), last - first + 1, **groups)

    @property
    def first_month(self) -> date:
        return month_of(month_index(self.end_month) - self.months + 1)

    def previous(self) -> Filters:
        """The period of the same length just before this one."""
        return Filters(month_of(month_index(self.end_month) - self.months), self.months, self.branch_ids, self.zone_ids, self.patron_types)


def _where(model, filters: Filters) -> list:
    conditions = []
    if filters.branch_ids:
        conditions.append(model.branch_id.in_(filters.branch_ids))
    if filters.zone_ids:
        conditions.append(model.zone_id.in_(filters.zone_ids))
    if filters.patron_types:
        conditions.append(model.patron_type.in_(filters.patron_types))
    return conditions


def _frame(rows, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=columns)


# --- Patrons at a month's end ------------------------------------------------------------------


def lifecycle_counts(session: Session, *, filters: Filters, month: date) -> dict[str, int]:
    """Lifecycle: each registered patron's state at a month's end. New: registered in the 12 weeks up to
    it; otherwise lapsed: no activity in the last 12 calendar months; at risk: activity in the last 12
    months but none in the last 6; regular: activity in at least 6 of the last 12 months; occasional: the
    rest."""
    rows = session.execute(
        select(DashState.state, func.sum(DashState.patrons)).where(DashState.month == month, *_where(DashState, filters)).group_by(DashState.state)
    ).all()
    found = {state: int(n) for state, n in rows}
    return {state: found.get(state, 0) for state in STATES[1:]}


def registered_patrons(counts: dict[str, int]) -> int:
    """Registered patrons: patrons whose registration date is on or before the month's end (or unknown)."""
    return sum(counts.values())


def active_patrons(counts: dict[str, int]) -> int:
    """Active patrons: registered patrons with any recorded activity in the 12 calendar months up to the month's end."""
    return sum(counts[state] for state in ACTIVE_STATES)


def lapsed_patrons(counts: dict[str, int]) -> int:
    """Lapsed patrons: registered more than 12 weeks ago and no activity in the 12 calendar months up to the month's end."""
    return counts["lapsed"]


def at_risk_patrons(counts: dict[str, int]) -> int:
    """At-risk patrons: activity in the 12 months up to the month's end, but none in the last 6 of them."""
    return counts["at_risk"]


# --- Flows within a period ---------------------------------------------------------------------


def new_registrations(session: Session, *, filters: Filters) -> int:
    """New registrations: patrons whose registration date falls in the period."""
    total = session.execute(
        select(func.sum(DashRegistration.patrons)).where(
            DashRegistration.month.between(filters.first_month, filters.end_month), *_where(DashRegistration, filters)
        )
    ).scalar()
    return int(total or 0)


def activity_by_month(session: Session, *, filters: Filters, first: date, last: date, by_branch: bool = False) -> pd.DataFrame:
    """Activity by kind per month: the events (checkouts, renewals, digital loans, PC sessions, event
    attendances, visits …) recorded in each month, and how many distinct patrons they came from."""
    keys = [DashActivity.month, DashActivity.kind, *([DashActivity.branch_id] if by_branch else [])]
    rows = session.execute(
        select(*keys, func.sum(DashActivity.events), func.sum(DashActivity.patrons))
        .where(DashActivity.month.between(first, last), *_where(DashActivity, filters))
        .group_by(*keys)
        .order_by(*keys)
    ).all()
    return _frame(rows, ["month", "kind", *(["branch_id"] if by_branch else []), "events", "patrons"])


def by_month(activity: pd.DataFrame) -> pd.DataFrame:
    """`activity_by_month` from its frame `by_branch` (the branches summed): one read of the summary serves both."""
    if "branch_id" not in activity:
        return activity
    sums: dict[tuple, list[int]] = {}
    for month, kind, events, patrons in zip(activity["month"], activity["kind"], activity["events"], activity["patrons"]):
        cell = sums.setdefault((month, kind), [0, 0])
        cell[0] += int(events)
        cell[1] += int(patrons)
    return _frame([(*key, *cell) for key, cell in sorted(sums.items())], ["month", "kind", "events", "patrons"])


def activity_total(activity: pd.DataFrame, *, kind: str | None = None) -> tuple[int, int]:
    """Events in the period (of one kind, or all), with the largest number of distinct patrons behind
    them in any one month (a lower bound of how many patrons they came from)."""
    # A few hundred rows at most (months × kinds): plain Python beats a filtered copy and a group-by.
    events, per_month = 0, {}
    for month, each, n, patrons in zip(activity["month"], activity["kind"], activity["events"], activity["patrons"]):
        if kind is None or each == kind:
            events += int(n)
            per_month[month] = per_month.get(month, 0) + int(patrons)
    return (events, max(per_month.values())) if per_month else (0, 0)


def population(session: Session, *, filters: Filters) -> int:
    """Residents: the census population of the selected zones (all zones when none is selected)."""
    query = select(func.sum(Zone.population))
    if filters.zone_ids:
        query = query.where(Zone.id.in_(filters.zone_ids))
    return int(session.execute(query).scalar() or 0)


def activity_per_capita(events: int, residents: int) -> float | None:
    """Activity per capita: events in the period divided by the residents of the selected zones."""
    return round(events / residents, 3) if residents else None


def program_attendance(activity: pd.DataFrame) -> tuple[int, int]:
    """Program attendance: attendees (in person and online) of the programs held in the period, as the
    imported programs report them; without imported programs, event attendances recorded as patron activity."""
    return activity_total(activity, kind=PROGRAM_KIND)


def registrations_by_month(session: Session, *, filters: Filters, first: date, last: date) -> pd.DataFrame:
    """New registrations per month: patrons whose registration date falls in each month."""
    rows = session.execute(
        select(DashRegistration.month, func.sum(DashRegistration.patrons))
        .where(DashRegistration.month.between(first, last), *_where(DashRegistration, filters))
        .group_by(DashRegistration.month)
        .order_by(DashRegistration.month)
    ).all()
    return _frame(rows, ["month", "patrons"])


def lifecycle_flows(session: Session, *, filters: Filters) -> pd.DataFrame:
    """Lifecycle flows: patrons by their lifecycle state at the end of the month before the period (or not
    yet registered) and at the end of the period."""
    rows = session.execute(
        select(DashFlow.from_state, DashFlow.to_state, func.sum(DashFlow.patrons))
        .where(DashFlow.month == filters.end_month, DashFlow.lag == filters.months, *_where(DashFlow, filters))
        .group_by(DashFlow.from_state, DashFlow.to_state)
    ).all()
    return _frame(rows, ["from_state", "to_state", "patrons"])


def cohort_retention(session: Session, *, filters: Filters, first: date, last: date) -> pd.DataFrame:
    """Cohort retention: of the patrons registered in a month (the cohort), the share with any activity
    in each following month (0 = the month of registration)."""
    active = session.execute(
        select(DashCohort.cohort_month, DashCohort.month, func.sum(DashCohort.patrons))
        .where(DashCohort.cohort_month.between(first, last), DashCohort.month <= last, *_where(DashCohort, filters))
        .group_by(DashCohort.cohort_month, DashCohort.month)
    ).all()
    frame = _frame(active, ["cohort_month", "month", "active"])
    frame["months_since"] = [month_index(m) - month_index(c) for c, m in zip(frame["cohort_month"], frame["month"])]
    return frame[["cohort_month", "months_since", "active"]]


# --- Where and who -----------------------------------------------------------------------------


def penetration_by_zone(session: Session, *, filters: Filters, month: date) -> pd.DataFrame:
    """Market penetration by zone: registered and active patrons living in each zone per 1,000 of its
    residents (census population), at the end of the period."""
    active = func.sum(DashState.patrons).filter(DashState.state.in_(ACTIVE_STATES))
    counts = {
        zone_id: (int(registered), int(shown or 0))
        for zone_id, registered, shown in session.execute(
            select(DashState.zone_id, func.sum(DashState.patrons), active).where(DashState.month == month, *_where(DashState, filters)).group_by(DashState.zone_id)
        )
    }
    zones = {zone_id: (code, name, people) for zone_id, code, name, people in session.execute(select(Zone.id, Zone.code, Zone.name, Zone.population))}
    if filters.zone_ids:
        zones = {zone_id: zone for zone_id, zone in zones.items() if zone_id in filters.zone_ids}
    # Every zone summarised or selected, in id order (the order sorting by penetration starts from).
    ids = sorted(zones.keys() | counts.keys())
    unknown = ("", "(zone unknown)", None)
    rows = [(i, *zones.get(i, unknown if i == 0 else (None, None, None)), *counts.get(i, (0, 0))) for i in ids]
    out = _frame(rows, ["zone_id", "code", "name", "population", "registered", "active"]).astype({"registered": int, "active": int})
    residents = out["population"].where(out["population"] > 0) if len(out) else out["population"]
    for column in ("registered", "active"):
        out[f"{column}_per_1000"] = (1000 * out[column] / residents).round(1)
    return out.sort_values("registered_per_1000", ascending=False, na_position="last").reset_index(drop=True)


def branch_comparison(session: Session, *, filters: Filters, activity_first: date, activity: pd.DataFrame | None = None) -> pd.DataFrame:
    """Branch comparison, by home branch: registered and active patrons at the end of the period, new
    registrations and events in the period."""
    active = func.sum(DashState.patrons).filter(DashState.state.in_(ACTIVE_STATES))
    cells: dict[int, list[int]] = {}  # branch id -> registered, active, new registrations, events, most event patrons in a month

    def cell(branch_id) -> list[int]:
        return cells.setdefault(int(branch_id or 0), [0, 0, 0, 0, 0])

    for branch_id, registered, shown in session.execute(
        select(DashState.branch_id, func.sum(DashState.patrons), active).where(DashState.month == filters.end_month, *_where(DashState, filters)).group_by(DashState.branch_id)
    ):
        cell(branch_id)[:2] = int(registered), int(shown or 0)
    for branch_id, new in session.execute(
        select(DashRegistration.branch_id, func.sum(DashRegistration.patrons))
        .where(DashRegistration.month.between(filters.first_month, filters.end_month), *_where(DashRegistration, filters))
        .group_by(DashRegistration.branch_id)
    ):
        cell(branch_id)[2] = int(new)
    if activity is None:  # else `activity_by_month(…, by_branch=True)` of months including these, already read
        activity = activity_by_month(session, filters=filters, first=activity_first, last=filters.end_month, by_branch=True)
    monthly: dict[tuple[int, date], int] = {}
    for branch_id, month, events, patrons in zip(activity["branch_id"], activity["month"], activity["events"], activity["patrons"]):
        if activity_first <= month <= filters.end_month:
            cell(branch_id)[3] += int(events)
            monthly[int(branch_id), month] = monthly.get((int(branch_id), month), 0) + int(patrons)
    for (branch_id, _), patrons in monthly.items():
        cells[branch_id][4] = max(cells[branch_id][4], patrons)
    names = dict(session.execute(select(Branch.id, Branch.name)).all())
    columns = ["registered", "active", "new_registrations", "events", "event_patrons"]
    ids = sorted(cells)  # id order: the order sorting by name starts from
    out = _frame([(names.get(i, "(branch unknown)") if i else "(branch unknown)", *cells[i]) for i in ids], ["branch", *columns])
    out[columns] = out[columns].astype(int)
    return out.sort_values("branch").reset_index(drop=True)


def age_band_by_branch(session: Session, *, filters: Filters, month: date) -> pd.DataFrame:
    """Age band × branch: registered patrons at the end of the period by age band (as imported, or from
    the birth year) and home branch."""
    rows = session.execute(
        select(DashState.age_band, DashState.branch_id, func.sum(DashState.patrons))
        .where(DashState.month == month, *_where(DashState, filters))
        .group_by(DashState.age_band, DashState.branch_id)
    ).all()
    frame = _names(session, _frame(rows, ["age_band", "branch_id", "patrons"]), Branch, "branch_id", "branch", unknown="(branch unknown)")
    frame["age_band"] = frame["age_band"].replace("", "(age unknown)")
    grid = frame.groupby(["age_band", "branch"])["patrons"].sum().unstack(fill_value=0)
    return grid.astype(int)


def _names(session: Session, frame: pd.DataFrame, model, key: str, column: str, *, unknown: str) -> pd.DataFrame:
    names = dict(session.execute(select(model.id, model.name)).all())
    frame[column] = [names.get(int(i), unknown) if i else unknown for i in frame[key]]
    return frame


# --- Outreach ----------------------------------------------------------------------------------


def outreach_by_month(session: Session, *, first: date, last: date) -> pd.DataFrame:
    """Outreach: community interactions logged per month by type, and library cards issued during them
    (all branches, zones and patron types: interactions are not tied to them)."""
    start = datetime.combine(first, datetime.min.time(), tzinfo=timezone.utc)
    end = datetime.combine(month_of(month_index(last) + 1), datetime.min.time(), tzinfo=timezone.utc)
    month = month_start(Interaction.occurred_at)
    rows = session.execute(
        select(month, Interaction.kind, func.count(), func.sum(Interaction.cards_issued))
        .where(Interaction.occurred_at >= start, Interaction.occurred_at < end)
        .group_by(month, Interaction.kind)
        .order_by(month, Interaction.kind)
    ).all()
    return _frame(rows, ["month", "kind", "interactions", "cards_issued"])


def outreach_interactions(outreach: pd.DataFrame, *, first: date, last: date) -> int:
    """Outreach interactions: community interactions logged in the period."""
    if outreach.empty:
        return 0
    return int(outreach.loc[(outreach["month"] >= first) & (outreach["month"] <= last), "interactions"].sum())


def latest_month(session: Session) -> date | None:
    """The last month the summaries cover."""
    return session.execute(select(func.max(DashState.month))).scalar()


def earliest_month(session: Session) -> date | None:
    """The first month the summaries cover."""
    return session.execute(select(func.min(DashState.month))).scalar()


def first_data_month(session: Session) -> date | None:
    """The first month with activity or registrations in the summaries ("no earlier data" before it)."""
    firsts = [session.execute(select(func.min(model.month))).scalar() for model in (DashActivity, DashRegistration)]
    firsts = [m for m in firsts if m is not None]
    return min(firsts) if firsts else None


def last_data_month(session: Session) -> date | None:
    """The last month with activity, registrations, programs or a last active month an ILS reported, among
    the months summarised (the period offered by default ends there)."""
    lasts = [session.execute(select(func.max(model.month))).scalar() for model in (DashActivity, DashRegistration)]
    for day in (session.execute(select(func.max(column))).scalar() for column in (ProgramEvent.held_on, Patron.ils_last_activity_on)):
        if day is not None:
            lasts.append(month_of(month_index(date.fromisoformat(day) if isinstance(day, str) else day)))
    lasts = [m for m in lasts if m is not None]
    latest = latest_month(session)
    return min(max(lasts), latest) if lasts and latest else None


def first_outreach_month(session: Session) -> date | None:
    """The month of the first outreach interaction logged."""
    first = session.execute(select(func.min(Interaction.occurred_at))).scalar()
    if isinstance(first, str):
        first = datetime.fromisoformat(first)
    return first.date().replace(day=1) if first else None
