"""Everything behind the manager dashboard in one call, small cells already suppressed.

`dashboard_data` is what the page shows, caches and offers for download, and what the benchmark
times: nothing unsuppressed leaves this module.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.kpis import figures as f
from crmcore.kpis import programs as p
from crmcore.kpis.summaries import ACTIVE_STATES, STATES, month_index, month_of
from crmcore.models import Branch, DashState, Zone
from crmcore.privacy import small_cells

NO_EARLIER = "no earlier data"  # a card's change when the previous period lies (partly) before the first month of data
PARTIAL = (
    "The current month, still under way, is left out of trends and retention (a month two days old would read as a cliff); "
    "the cards include it."
)
FINE_STATES = STATES[1:]  # the finest partition of registered patrons at a month's end
LIFECYCLE = {  # what the lifecycle chart shows, from the finest cells
    "new": ("new_active", "new_inactive"),
    "occasional": ("occasional",),
    "regular": ("regular",),
    "at_risk": ("at_risk",),
    "lapsed": ("lapsed",),
}


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    value: object  # a number, "<k", or None (no data)
    previous: object
    change: object
    definition: str


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    caption: str
    frame: pd.DataFrame  # suppressed: what is shown and downloaded


@dataclass
class Dashboard:
    filters: f.Filters
    k: int
    cards: list[Card] = field(default_factory=list)
    charts: dict[str, Chart] = field(default_factory=dict)
    zone_shapes: dict | None = None  # a GeoJSON FeatureCollection keyed by zone code, when zones have shapes
    withheld: str | None = None  # why the filtered figures are withheld as a whole (cards read "<k", no charts)


def _doc(function) -> str:
    return " ".join((function.__doc__ or "").split())


def partition(counts: dict[str, int], k: int) -> dict[str, object]:
    """Each aggregate of the lifecycle cells (registered, active, lifecycle states) as shown: a number, or
    "<k" when it is small or built from a cell that was hidden (primary and complementary suppression
    over the one partition, so no subtraction between the shown figures isolates a small group)."""
    sizes = np.array([[counts[s] for s in FINE_STATES]], dtype=float)
    mask = small_cells.complementary(sizes, small_cells.primary(sizes, k), k)[0]
    hidden = {state for state, masked in zip(FINE_STATES, mask) if masked}
    aggregates = {"registered": FINE_STATES, "active": ACTIVE_STATES, **LIFECYCLE}
    out: dict[str, object] = {}
    for name, cells in aggregates.items():
        value = sum(counts[c] for c in cells)
        whole = name == "registered"  # the line total: shown unless itself small
        out[name] = small_cells.label(k) if small_cells.is_small(value, k) or (not whole and hidden & set(cells)) else value
    return out


def _card(key: str, label: str, now: object, before: object, k: int, definition: str) -> Card:
    return Card(key, label, now, before, small_cells.change(now, before, k), definition)


def _events_shown(events: int, patrons: int, k: int) -> object:
    return small_cells.label(k) if small_cells.is_small(patrons, k) else events


def _no_earlier(card: Card) -> Card:
    return replace(card, previous=None, change=NO_EARLIER)


def _cards(session: Session, filters: f.Filters, k: int, now: dict, before: dict, activity: pd.DataFrame, outreach: pd.DataFrame, first_program: date | None) -> list[Card]:
    """The KPI cards; the previous period is the same number of months just before, and a card whose
    previous period starts before its first month of data says "no earlier data" instead of a change."""
    previous = filters.previous()
    first_data = f.first_data_month(session)
    earlier = first_data is not None and previous.first_month >= first_data
    this_part, prev_part = partition(now, k), partition(before, k)
    cards = [
        _card(key, label, this_part[key], prev_part[key], k, _doc(fn))
        for key, label, fn in (
            ("registered", "Registered patrons", f.registered_patrons),
            ("active", "Active patrons", f.active_patrons),
            ("lapsed", "Lapsed", f.lapsed_patrons),
            ("at_risk", "At risk", f.at_risk_patrons),
        )
    ]
    new_now, new_before = f.new_registrations(session, filters=filters), f.new_registrations(session, filters=previous)
    cards.append(_card("new_registrations", "New registrations", small_cells.count(new_now, k), small_cells.count(new_before, k), k, _doc(f.new_registrations)))
    residents = f.population(session, filters=filters)
    per_capita = []
    attendance = []
    for period in (filters, previous):
        part = _months(activity, period.first_month, period.end_month)
        events, patrons = f.activity_total(part)
        per_capita.append(small_cells.label(k) if small_cells.is_small(patrons, k) else f.activity_per_capita(events, residents))
        attendance.append(_events_shown(*f.program_attendance(part), k))
    cards.append(Card("per_capita", "Activity per capita", per_capita[0], per_capita[1], _per_capita_change(*per_capita), _doc(f.activity_per_capita)))
    if not earlier:
        cards = [_no_earlier(card) for card in cards]
    if first_program is not None:  # imported programs: attendance as the events system reports it (no patrons, nothing to suppress)
        now_n, before_n = p.program_totals(session, filters=filters)[1], p.program_totals(session, filters=previous)[1]
        card = Card("program_attendance", "Program attendance", now_n, before_n, now_n - before_n, _doc(f.program_attendance))
        cards.append(card if previous.first_month >= first_program else _no_earlier(card))
    else:
        card = _card("program_attendance", "Program attendance", attendance[0], attendance[1], k, _doc(f.program_attendance))
        cards.append(card if earlier else _no_earlier(card))
    now_n = f.outreach_interactions(outreach, first=filters.first_month, last=filters.end_month)
    before_n = f.outreach_interactions(outreach, first=previous.first_month, last=previous.end_month)
    card = Card("outreach_interactions", "Outreach interactions", now_n, before_n, now_n - before_n, _doc(f.outreach_interactions))
    first_outreach = f.first_outreach_month(session)
    cards.append(card if first_outreach is not None and previous.first_month >= first_outreach else _no_earlier(card))
    return cards


def _months(activity: pd.DataFrame, first: date, last: date) -> pd.DataFrame:
    """The rows of `first` to `last` of an activity frame (months ascending, as activity_by_month orders them)."""
    months = activity["month"].tolist()
    return activity.iloc[bisect.bisect_left(months, first):bisect.bisect_right(months, last)]


def _per_capita_change(now: object, before: object) -> object:
    if isinstance(now, (int, float)) and isinstance(before, (int, float)):
        return round(now - before, 3)
    return None


def _activity_chart(activity: pd.DataFrame, k: int) -> Chart:
    if len(activity):  # one row per month and kind (activity_by_month): a pivot, not a group-by
        events = activity.pivot(index="month", columns="kind", values="events").fillna(0).astype(int)
        patrons = activity.pivot(index="month", columns="kind", values="patrons").fillna(0).astype(int)
    else:
        events = activity.groupby(["month", "kind"])["events"].sum().unstack(fill_value=0)
        patrons = activity.groupby(["month", "kind"])["patrons"].sum().unstack(fill_value=0)
    shown = small_cells.suppress_grid(events.astype(int), k, sizes=patrons) if len(events) else events
    return Chart("activity", "Activity by kind per month", _doc(f.activity_by_month), shown.reset_index())


def _grid(frame: pd.DataFrame, rows: str, columns: str, values: str) -> pd.DataFrame:
    """`values` summed by `rows` × `columns` (0 where none), rows and columns sorted; a pivot when the pairs are
    unique (the summaries' GROUP BY made them so), which costs a fraction of a group-by."""
    if len(frame):
        try:
            return frame.pivot(index=rows, columns=columns, values=values).fillna(0).astype(frame[values].dtype)
        except ValueError:  # a pair twice: sum them
            pass
    return frame.groupby([rows, columns])[values].sum().unstack(fill_value=0)


def _lifecycle_charts(session: Session, filters: f.Filters, k: int, now: dict, start: dict) -> list[Chart]:
    at_end, at_start = partition(now, k), partition(start, k)
    counts = pd.DataFrame({"state": list(LIFECYCLE), "at_start": [at_start[s] for s in LIFECYCLE], "at_end": [at_end[s] for s in LIFECYCLE]})
    flows = f.lifecycle_flows(session, filters=filters)
    grid = _grid(flows, "from_state", "to_state", "patrons")
    order = [s for s in STATES if s in grid.index], [s for s in STATES if s in grid.columns]
    grid = grid.loc[order[0], order[1]].astype(int) if len(grid) else grid
    shown = small_cells.suppress_grid(grid, k) if len(grid) else grid
    return [
        Chart("lifecycle", "Lifecycle at the start and end of the period", _doc(f.lifecycle_counts), counts),
        Chart("flows", "Lifecycle flows within the period", _doc(f.lifecycle_flows), shown.reset_index()),
    ]


def _cohort_chart(session: Session, filters: f.Filters, k: int, first: date, last: date, registrations: pd.DataFrame) -> Chart:
    """Retention of the cohorts registered from `first` to `last`, up to `last` (the last complete month
    shown): a month after it has not happened (or is under way) and is left empty, never drawn as 0 %."""
    frame = f.cohort_retention(session, filters=filters, first=first, last=last)
    sizes = registrations.set_index("month")["patrons"]
    grid = _grid(frame, "cohort_month", "months_since", "active")
    grid = grid.reindex(sizes.index, fill_value=0).astype(float)
    size_mask = small_cells.complementary(sizes.to_numpy(dtype=float).reshape(-1, 1), small_cells.primary(sizes, k).reshape(-1, 1), k, rows=False)[:, 0]
    totals = np.repeat(sizes.to_numpy(dtype=float).reshape(-1, 1), grid.shape[1], axis=1)
    hidden = small_cells.primary(grid, k) | small_cells.remainder(grid.to_numpy(), totals, k) | size_mask[:, None]
    share = (100 * grid.to_numpy() / np.where(totals > 0, totals, np.nan)).round(1)
    out = pd.DataFrame(share, index=grid.index, columns=[str(c) for c in grid.columns]).astype(object)
    out[hidden] = small_cells.label(k)
    if len(out):
        ahead = np.array([[month_index(c) + int(m) > month_index(last) for m in grid.columns] for c in grid.index], dtype=bool).reshape(out.shape)
        out[ahead] = np.nan
    out.insert(0, "patrons", [small_cells.label(k) if m else int(n) for m, n in zip(size_mask, sizes)])
    caption = f"{_doc(f.cohort_retention)} Months after {last:%B %Y} are left empty. {PARTIAL}"
    return Chart("cohorts", "Cohort retention (% of the cohort active, by months since registration)", caption, out.rename_axis("cohort").reset_index())


def _active_split(frame: pd.DataFrame, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks for registered and active in rows whose active + inactive patrons partition the registered."""
    cells = np.column_stack([frame["active"], frame["registered"] - frame["active"]]).astype(float)
    mask = small_cells.complementary(cells, small_cells.primary(cells, k), k)
    registered = small_cells.primary(frame["registered"], k)
    registered = small_cells.complementary(frame[["registered"]].to_numpy(float), registered.reshape(-1, 1), k, rows=False)[:, 0]
    return registered, mask[:, 0] | registered


def _zone_chart(session: Session, filters: f.Filters, k: int) -> Chart:
    frame = f.penetration_by_zone(session, filters=filters, month=filters.end_month)
    registered, active = _active_split(frame, k)
    mask = np.column_stack([registered, active, registered, active])
    shown = small_cells.apply(frame, mask, k, columns=["registered", "active", "registered_per_1000", "active_per_1000"])
    return Chart("zones", "Market penetration by zone", _doc(f.penetration_by_zone), shown.drop(columns=["zone_id"]))


def _branch_chart(session: Session, filters: f.Filters, k: int, activity_first: date, activity: pd.DataFrame) -> Chart:
    frame = f.branch_comparison(session, filters=filters, activity_first=activity_first, activity=activity)
    registered, active = _active_split(frame, k)
    new = small_cells.complementary(frame[["new_registrations"]].to_numpy(float), small_cells.primary(frame["new_registrations"], k).reshape(-1, 1), k, rows=False)[:, 0]
    events = small_cells.complementary(frame[["event_patrons"]].to_numpy(float), small_cells.primary(frame["event_patrons"], k).reshape(-1, 1), k, rows=False)[:, 0]
    shown = small_cells.apply(frame, np.column_stack([registered, active, new, events]), k, columns=["registered", "active", "new_registrations", "events"])
    return Chart("branches", "Branch comparison", _doc(f.branch_comparison), shown.drop(columns=["event_patrons"]))


def zone_shapes(session: Session) -> dict | None:
    """The zones' shapes as one GeoJSON FeatureCollection (feature id = zone code), or None without shapes."""
    features = []
    for code, text in session.execute(select(Zone.code, Zone.geojson).where(Zone.geojson.is_not(None))).all():
        try:
            shape = json.loads(text)
        except ValueError:
            continue  # a broken shape leaves that zone off the map, the bar chart still shows it
        geometry = shape.get("geometry") if shape.get("type") == "Feature" else shape
        if geometry:
            features.append({"type": "Feature", "id": code, "properties": {"code": code}, "geometry": geometry})
    return {"type": "FeatureCollection", "features": features} if features else None


def _neighbours(filters: f.Filters) -> list[f.Filters]:
    """The selections a filtered one could be compared with: each filter dropped in turn, none at all, and
    for a filter of several values each value left out in turn ({adult, homebound} against {adult})."""
    dims = [name for name in ("branch_ids", "zone_ids", "patron_types") if getattr(filters, name)]
    if not dims:
        return []
    out = [replace(filters, **{name: ()}) for name in dims]
    if len(dims) > 1:
        out.append(replace(filters, branch_ids=(), zone_ids=(), patron_types=()))
    for name in dims:
        values = getattr(filters, name)
        if len(values) > 1:
            out += [replace(filters, **{name: tuple(v for v in values if v != left_out)}) for left_out in values]
    return out


def _differencing_risk(session: Session, *, filters: f.Filters, k: int, months: tuple[date, ...]) -> str | None:
    """Why a filtered selection must be suppressed as a whole, or None: its registered patrons at one of
    `months` are fewer than k, or differ from a neighbouring selection's (a filter dropped, or one of its
    values) by fewer than k, so two views subtracted ("all types: 311", "all but homebound: 310") would
    single patrons out."""
    wider = _neighbours(filters)
    if not wider:
        return None
    for month in months:
        own = f.registered_patrons(f.lifecycle_counts(session, filters=filters, month=month))
        if small_cells.is_small(own, k):
            return f"These filters select fewer than {k} patrons: their figures are withheld. Choose a wider selection."
        for other in wider:
            rest = abs(f.registered_patrons(f.lifecycle_counts(session, filters=other, month=month)) - own)
            if small_cells.is_small(rest, k):
                return (
                    f"These filters leave out fewer than {k} patrons of a neighbouring selection (or add fewer than {k} to it), so comparing the two would single "
                    "them out: their figures are withheld. Choose a selection that leaves out more patrons, or none."
                )
    return None


def dashboard_data(session: Session, *, filters: f.Filters, today: date) -> Dashboard:
    """Every figure behind the manager dashboard for `filters`, small cells suppressed."""
    k = int(settings.get(session, "small_cell_k"))
    end = min(filters.end_month, month_of(month_index(today)))
    filters = f.Filters(end, filters.months, filters.branch_ids, filters.zone_ids, filters.patron_types)
    # Trends follow the chosen period, without the month still under way (see PARTIAL).
    trend_first = filters.first_month
    trend_last = min(end, month_of(month_index(today) - 1))
    previous = filters.previous()
    # One read of the activity summary by branch serves the cards, the activity chart and the branch comparison.
    branch_activity = f.activity_by_month(session, filters=filters, first=previous.first_month, last=end, by_branch=True)
    activity = f.by_month(branch_activity)
    outreach = f.outreach_by_month(session, first=previous.first_month, last=end)
    now = f.lifecycle_counts(session, filters=filters, month=end)
    before = f.lifecycle_counts(session, filters=filters, month=previous.end_month)
    registrations = f.registrations_by_month(session, filters=filters, first=trend_first, last=trend_last)

    board = Dashboard(filters=filters, k=k, zone_shapes=zone_shapes(session))
    first_program = p.first_program_month(session)
    board.cards = _cards(session, filters, k, now, before, activity, outreach, first_program)
    regs = small_cells.suppress_column(registrations, k, sizes="patrons", complement=True)
    outreach_trend = outreach[outreach["month"].between(trend_first, trend_last)] if len(outreach) else outreach
    cards_issued = outreach_trend.groupby("month", as_index=False)["cards_issued"].sum() if len(outreach_trend) else pd.DataFrame(columns=["month", "cards_issued"])
    charts = [
        _activity_chart(_months(activity, trend_first, trend_last), k),
        Chart("registrations", "New registrations per month", f"{_doc(f.registrations_by_month)} {PARTIAL}", regs),
        _zone_chart(session, filters, k),
        *_lifecycle_charts(session, filters, k, now, before),
        _cohort_chart(session, filters, k, trend_first, trend_last, registrations),
        _branch_chart(session, filters, k, filters.first_month, branch_activity),
        Chart("age_branch", "Registered patrons by age band and branch", _doc(f.age_band_by_branch), _age_chart(session, filters, k)),
        Chart("outreach", "Outreach interactions per month by type", _doc(f.outreach_by_month), outreach_trend.drop(columns=["cards_issued"]) if len(outreach_trend) else outreach_trend),
        Chart("cards_issued", "Library cards issued at outreach interactions", _doc(f.outreach_by_month), small_cells.suppress_column(cards_issued, k, sizes="cards_issued")),
        *_program_charts(session, filters, trend_first, trend_last, any_programs=first_program is not None),
    ]
    board.charts = {chart.key: chart for chart in charts}
    board.withheld = _differencing_risk(session, filters=filters, k=k, months=(end, previous.end_month))
    if board.withheld:  # suppressed as a whole: nothing of the selection is shown or downloaded
        hidden = small_cells.label(k)
        board.cards = [replace(card, value=hidden, previous=hidden, change=None) for card in board.cards]
        board.charts, board.zone_shapes = {}, None
    return board


_PROGRAM_CHARTS = (  # key, title, the figure defining it, the columns of its frame
    ("programs_month", "Programs per month", p.programs_by_month, ["month", "sessions", "in_person", "online", "attendees", "average"]),
    ("programs_branch", "Programs by branch", p.programs_by_branch, ["branch", "sessions", "in_person", "online", "attendees", "average"]),
    ("programs_category", "Programs by category", p.programs_by_label, ["label", "sessions", "in_person", "online", "attendees", "average"]),
    ("programs_audience", "Programs by audience", p.programs_by_label, ["label", "sessions", "in_person", "online", "attendees", "average"]),
    ("programs_category_month", "Attendees per month by category", p.programs_by_label, ["label", "month", "sessions", "attendees"]),
    ("programs_zone", "Program attendance per 1,000 residents by zone", p.programs_by_zone, ["zone", "population", "sessions", "attendees", "attendees_per_1000"]),
)


def _program_charts(session: Session, filters: f.Filters, trend_first: date, trend_last: date, *, any_programs: bool) -> list[Chart]:
    """The Programs section: programs carry no patrons, so nothing here is suppressed."""
    if not any_programs:  # nothing imported: empty frames, without a query each
        return [Chart(key, title, _doc(fn), pd.DataFrame(columns=columns)) for key, title, fn, columns in _PROGRAM_CHARTS]
    where = "Branch and zone filters select where a program was held (a branch's zone is set under Administration → Settings); the patron type filter does not apply."
    by_month = p.programs_by_month(session, filters=filters, first=trend_first, last=trend_last)
    charts = [
        Chart("programs_month", "Programs per month", f"{_doc(p.programs_by_month)} {PARTIAL}", by_month),
        Chart("programs_branch", "Programs by branch", f"{_doc(p.programs_by_branch)} {where}", p.programs_by_branch(session, filters=filters)),
    ]
    for kind, title in (("category", "Programs by category"), ("audience", "Programs by audience")):
        charts.append(Chart(f"programs_{kind}", title, _doc(p.programs_by_label), p.programs_by_label(session, filters=filters, kind=kind)))
    monthly = p.programs_by_label(session, filters=filters, kind="category", monthly=True, first=trend_first, last=trend_last)
    charts.append(Chart("programs_category_month", "Attendees per month by category", f"{_doc(p.programs_by_label)} {PARTIAL}", monthly[["label", "month", "sessions", "attendees"]]))
    charts.append(Chart("programs_zone", "Program attendance per 1,000 residents by zone", f"{_doc(p.programs_by_zone)} {where}", p.programs_by_zone(session, filters=filters)))
    return charts


def _age_chart(session: Session, filters: f.Filters, k: int) -> pd.DataFrame:
    grid = f.age_band_by_branch(session, filters=filters, month=filters.end_month)
    return (small_cells.suppress_grid(grid, k) if len(grid) else grid).reset_index()


def dashboard(session: Session, *, actor: Actor, filters: f.Filters, today: date) -> Dashboard:
    """`dashboard_data` for a staff member whose role may view the dashboard."""
    require(actor, Perm.VIEW_DASHBOARD)
    return dashboard_data(session, filters=filters, today=today)


@dataclass(frozen=True)
class FilterOptions:
    months: list[date]  # newest first
    branches: dict[int, str]  # id -> name (0: unknown)
    zones: dict[int, str]
    patron_types: list[str]
    last_data: date | None = None  # the last month with activity or registrations: the period offered ends there


def filter_options(session: Session, *, actor: Actor) -> FilterOptions:
    """What the dashboard's filters offer: the months summarised (every month with data, to today's), branches,
    zones and patron types, and the last month with data."""
    require(actor, Perm.VIEW_DASHBOARD)
    # Every month from the first with data (activity, registrations, programs) to the last summarised (today's).
    firsts = [m for m in (f.earliest_month(session), f.first_data_month(session), p.first_program_month(session)) if m]
    lasts = [m for m in (f.latest_month(session), p.last_program_month(session)) if m]
    months = [month_of(i) for i in range(month_index(max(lasts)), month_index(min(firsts)) - 1, -1)] if firsts and lasts else []
    types = [t for (t,) in session.execute(select(DashState.patron_type).distinct().order_by(DashState.patron_type)) if t]
    branches = dict(session.execute(select(Branch.id, Branch.name).order_by(Branch.name)).all())
    zones = dict(session.execute(select(Zone.id, Zone.name).order_by(Zone.name)).all())
    return FilterOptions(months, branches, zones, types, f.last_data_month(session) or (months[0] if months else None))
