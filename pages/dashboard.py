"""Manager dashboard: KPI cards, trends, penetration by zone, lifecycle, branches, outreach.

Thin: reads the filters, asks crmcore for the (already suppressed) figures, draws them. Every chart has
its definition as a caption and its data as a CSV download.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, timedelta

import altair as alt
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

import ui
from ui import charts, inbox
from ui.maps import zone_map
from crmcore import kpis
from crmcore.admin import settings
from crmcore.campaigns import results
from crmcore.privacy import small_cells

STATE_LABELS = {
    "unregistered": "not yet registered",
    "new_active": "new",
    "new_inactive": "new",
    "new": "new",
    "regular": "regular",
    "occasional": "occasional",
    "at_risk": "at risk",
    "lapsed": "lapsed",
}


@st.cache_data(ttl=600, show_spinner=False)
def _options(url: str, role: str, _actor) -> kpis.FilterOptions:
    with ui.db().read() as session:
        return kpis.filter_options(session, actor=_actor)


@dataclass
class Shown:
    """One board and what is drawn from it (figures, chart frames, summary sentences), each made once and shared by
    every session of the replica that shows the same board (B13: a run then only sends them). Nothing in it is
    changed once made."""

    board: kpis.Dashboard
    made: dict = field(default_factory=dict)

    def once(self, key: tuple, make, spinner: str | None = None):
        if key not in self.made:
            if spinner:
                with st.spinner(spinner):
                    self.made[key] = make()
            else:
                self.made[key] = make()
        return self.made[key]


@st.cache_resource(ttl=600, max_entries=100, show_spinner="Computing the dashboard…")
def _board(url: str, role: str, filters: tuple, today: date, settings_version: str, _actor) -> Shown:
    # The role is part of the key: never serve one role's cached figures to another. The settings'
    # version is too: a change of small_cell_k saved by any process applies on the next run, not in ten minutes.
    # Shared, not copied for each run as st.cache_data would: this process's writes clear it (ui.refresh_after_write).
    with ui.db().read() as session:
        return Shown(kpis.dashboard(session, actor=_actor, filters=kpis.Filters(*filters), today=today))


ui.AFTER_WRITE["dashboard"] = _board


def _label(value: object) -> str:
    """Import-supplied names made inert for Plotly, which reads a few HTML tags in labels."""
    return html.escape(str(value))


def _filters(options: kpis.FilterOptions) -> kpis.Filters:
    """The period (any run of whole months the summaries cover) and the branch, zone and type filters."""
    cols = st.columns([1, 1, 3])  # the multiselects on a row of their own, wide enough for a branch's name
    months = options.months  # newest first
    label = lambda m: m.strftime("%B %Y")  # noqa: E731
    # Offered by default: the 12 months ending with the last month with data (not today's, which may be years later).
    latest = months.index(options.last_data) if options.last_data in months else 0
    last = cols[1].selectbox("To", months, index=latest, format_func=label, key="dash-to")
    first = cols[0].selectbox("From", months, index=min(latest + 11, len(months) - 1), format_func=label, key="dash-from")
    if first > last:
        st.caption("The months were chosen backwards: showing the period between them.")
    branch_names = {0: "(branch unknown)", **options.branches}
    zone_names = {0: "(zone unknown)", **options.zones}
    cols = st.columns(3)
    branches = cols[0].multiselect("Home branch", list(branch_names), format_func=branch_names.get, placeholder="All branches")
    zones = cols[1].multiselect("Zone", list(zone_names), format_func=zone_names.get, placeholder="All zones")
    types = cols[2].multiselect("Patron type", options.patron_types, placeholder="All types")
    ui.chosen_caption(("Home branch", branches, branch_names.get), ("Zone", zones, zone_names.get), ("Patron type", types, None))
    return kpis.Filters.between(first, last, branch_ids=tuple(sorted(branches)), zone_ids=tuple(sorted(zones)), patron_types=tuple(sorted(types)))


def _cards(board: kpis.Dashboard) -> None:
    cols = st.columns(4)
    for i, card in enumerate(board.cards):
        value = "–" if card.value is None else (f"{card.value:,}" if isinstance(card.value, int) else str(card.value))
        delta = None if card.change is None else (f"{card.change:+,}" if isinstance(card.change, (int, float)) else str(card.change))
        neutral = card.key in ("lapsed", "at_risk") or not isinstance(card.change, (int, float))  # "no earlier data", "<k": no arrow colour
        cols[i % 4].metric(card.label, value, delta, help=f"{card.definition} Change: against the previous period.", delta_color="off" if neutral else "normal")


def _chart_footer(shown: Shown, chart: kpis.Chart, key: str, **summary) -> None:
    """Under every chart: what it shows in one sentence (ui.charts.summary), its definition, and its CSV."""
    st.caption(shown.once(("summary", key, *sorted(summary.items())), lambda: ui.md(charts.summary(chart.frame, **summary))))
    st.caption(chart.caption)
    ui.download_buttons(chart.frame, name=f"dashboard-{key}", key=f"dl-{key}")


def _table(shown: Shown, key: str, frame: pd.DataFrame) -> None:
    # Suppressed columns mix numbers and "<k": shown as text so the table keeps both.
    ui.table(shown.once(("table", key), lambda: frame.apply(lambda c: c.map(str) if c.dtype == object else c)), hide_index=True, width="stretch")


# Building a figure was most of this page's time (B13): each one is built once per board (and measure), from the frame
# `data()` makes, and shared by every session of the replica. st.plotly_chart only reads it (it serialises a copy).
def _plot(shown: Shown, key: tuple, draw, data, **options) -> None:
    """The chart `draw(data(), **options)` (a plotly express function, or zone_map), made once per `key` of the board."""
    st.plotly_chart(shown.once(("figure", *key), lambda: _figure(draw, data(), options)), width="stretch")


def _figure(draw, frame: pd.DataFrame, options: dict) -> Drawn:
    figure = draw(frame, **options)
    figure.update_layout(margin=dict(l=10, r=10, t=30, b=10), height=340)
    return Drawn(ui.plain_figure(figure))


class Drawn(go.Figure):
    """A figure shared by the sessions that show it, never changed: st.plotly_chart turns it into a dict on every run
    (a deep copy of every trace), so the dict is made once. It holds the same figure (go.Figure(figure))."""

    def to_dict(self) -> dict:
        try:
            return self._as_dict
        except AttributeError:
            self._as_dict = super().to_dict()
            return self._as_dict


def _trends(shown: Shown) -> None:
    board = shown.board
    st.subheader("Trends")
    left, right = st.columns(2)
    with left:
        activity = board.charts["activity"]

        def long() -> pd.DataFrame:
            frame = small_cells.numeric(activity.frame).melt(id_vars="month", var_name="kind", value_name="events")
            frame["kind"] = frame["kind"].map(_label)
            return frame

        _plot(shown, ("activity",), px.line, long, x="month", y="events", color="kind", title=activity.title, markers=True)
        _chart_footer(shown, activity, "activity", measure="total", label="activity events")
    with right:
        regs = board.charts["registrations"]
        _plot(shown, ("registrations",), px.bar, lambda: small_cells.numeric(regs.frame), x="month", y="patrons", title=regs.title)
        _chart_footer(shown, regs, "registrations", measure="patrons", label="new registrations")


def _zones(shown: Shown) -> None:
    board = shown.board
    st.subheader("Market penetration by zone")
    chart = board.charts["zones"]

    def named() -> pd.DataFrame:
        frame = small_cells.numeric(chart.frame)
        frame["zone"] = frame["name"].map(_label)
        return frame

    measure = st.radio("Measure", ["registered_per_1000", "active_per_1000"], horizontal=True, format_func=lambda m: m.replace("_per_1000", " per 1,000 residents"))
    if board.zone_shapes:
        # Drawn from the zones' own shapes: a geographic map would fetch a world outline from another server.
        _plot(shown, ("zones", measure), zone_map, named, shapes=board.zone_shapes, code="code", value=measure, name="zone", title=chart.title,
              label=measure.replace("_per_1000", " per 1,000 residents"))
    else:
        _plot(shown, ("zones", measure), px.bar, lambda: named().dropna(subset=[measure]).sort_values(measure), x=measure, y="zone", orientation="h", title=chart.title)
    _table(shown, "zones", chart.frame)
    _chart_footer(shown, chart, "zones", measure=measure, by="name")


def _lifecycle(shown: Shown) -> None:
    board = shown.board
    st.subheader("Lifecycle")
    left, right = st.columns(2)
    with left:
        chart = board.charts["lifecycle"]

        def long() -> pd.DataFrame:
            frame = small_cells.numeric(chart.frame).melt(id_vars="state", var_name="when", value_name="patrons")
            frame["state"] = frame["state"].map(STATE_LABELS)
            return frame

        _plot(shown, ("lifecycle",), px.bar, long, x="state", y="patrons", color="when", barmode="group", title=chart.title)
        _chart_footer(shown, chart, "lifecycle", measure=chart.frame.columns[-1], by="state", label=f"patrons {chart.frame.columns[-1]}")
    with right:
        flows = board.charts["flows"]
        st.markdown(f"**{flows.title}** (rows: state at the start, columns: at the end)")
        _table(shown, "flows", flows.frame)
        _chart_footer(shown, flows, "flows")
    cohorts = board.charts["cohorts"]

    def grid() -> pd.DataFrame:
        frame = small_cells.numeric(cohorts.frame.drop(columns=["patrons"])).set_index("cohort")
        frame.index = [c.strftime("%Y-%m") for c in frame.index]
        return frame

    if len(cohorts.frame) and cohorts.frame.shape[1] > 2:  # a cohort column, a patrons column and at least one month
        _plot(shown, ("cohorts",), px.imshow, grid, labels=dict(x="months since registration", y="cohort", color="% active"), aspect="auto", title=cohorts.title,
              color_continuous_scale="Blues")
    else:
        st.info("No registrations in the months shown.")
    _chart_footer(shown, cohorts, "cohorts", measure="patrons", by="cohort", label="patrons registered")


def _branches(shown: Shown) -> None:
    board = shown.board
    st.subheader("Branches")
    left, right = st.columns(2)
    with left:
        chart = board.charts["branches"]

        def named() -> pd.DataFrame:
            frame = small_cells.numeric(chart.frame)
            frame["branch"] = frame["branch"].map(_label)
            return frame

        _plot(shown, ("branches",), px.bar, named, x="branch", y=["registered", "active"], barmode="group", title=chart.title)
        _table(shown, "branches", chart.frame)
        _chart_footer(shown, chart, "branches", measure="registered", by="branch", label="registered patrons")
    with right:
        ages = board.charts["age_branch"]
        st.markdown(f"**{ages.title}**")
        _table(shown, "age-branch", ages.frame)
        _chart_footer(shown, ages, "age-branch")


def _altair(chart) -> None:
    st.altair_chart(chart, width="stretch")


def _programs(shown: Shown) -> None:
    st.subheader("Programs")
    charts = shown.board.charts
    if not len(charts["programs_branch"].frame):
        st.info("No programs held in this period: import a program file (Imports → Event attendance) to see sessions and attendees here.")
        return
    st.caption(
        "Sessions and attendees as the events system reports them. Programs carry no patrons, so their counts are shown whole; "
        "the branch and zone filters select where a program was held, the patron type filter does not apply."
    )
    left, right = st.columns(2)
    with left:
        chart = charts["programs_month"]
        long = lambda: chart.frame[["month", "in_person", "online"]].melt(id_vars="month", var_name="attended", value_name="attendees")  # noqa: E731
        _plot(shown, ("programs-month",), px.bar, long, x="month", y="attendees", color="attended", title=chart.title, hover_data={"attended": True})
        _table(shown, "programs-month", chart.frame)
        _chart_footer(shown, chart, "programs-month", measure="attendees")
    with right:
        branches = charts["programs_branch"]
        named = lambda: branches.frame.assign(branch=branches.frame["branch"].map(_label))  # noqa: E731
        _plot(shown, ("programs-branch",), px.bar, named, x="branch", y=["sessions", "attendees"], barmode="group", title=branches.title)
        _table(shown, "programs-branch", branches.frame)
        _chart_footer(shown, branches, "programs-branch", measure="attendees", by="branch")
    left, right = st.columns(2)
    for column, kind in ((left, "category"), (right, "audience")):
        with column:
            chart = charts[f"programs_{kind}"]
            dots = alt.Chart(chart.frame, title=chart.title).mark_circle(size=90).encode(
                x=alt.X("average:Q", title="average attendance per session"),
                y=alt.Y("label:N", sort="-x", title=kind),
                size=alt.Size("sessions:Q", title="sessions"),
                tooltip=["label", "sessions", "attendees", "average"],
            )
            _altair(dots)
            _table(shown, f"programs-{kind}", chart.frame)
            _chart_footer(shown, chart, f"programs-{kind}", measure="average", by="label", label="average attendance per session")
    chart = charts["programs_category_month"]
    if len(chart.frame):
        top = chart.frame.groupby("label")["attendees"].sum().nlargest(12).index
        lines = alt.Chart(chart.frame[chart.frame["label"].isin(top)]).mark_line(point=True).encode(
            x=alt.X("month:T", title=None), y=alt.Y("attendees:Q"), tooltip=["label", "month", "sessions", "attendees"],
        ).properties(width=160, height=110).facet(facet=alt.Facet("label:N", title=None), columns=4, title=chart.title)
        _altair(lines)
    _chart_footer(shown, chart, "programs-category-month", measure="attendees")
    zones = charts["programs_zone"]
    ranked = lambda: zones.frame.assign(zone=zones.frame["zone"].map(_label)).dropna(subset=["attendees_per_1000"]).sort_values("attendees_per_1000")  # noqa: E731
    _plot(shown, ("programs-zone",), px.bar, ranked, x="attendees_per_1000", y="zone", orientation="h", title=zones.title)
    _table(shown, "programs-zone", zones.frame)
    _chart_footer(shown, zones, "programs-zone", measure="attendees_per_1000", by="zone")


def _lifetime_section(shown: Shown, actor) -> None:
    st.subheader("Lifetime totals")
    st.caption("Lifetime checkouts and renewals to date, as the ILS reported them at the last patron import: whole lifetimes, so never shown by month.")
    if not st.toggle("Show patrons by lifetime checkouts and renewals", key="dash-lifetime"):
        return

    def counted() -> list:
        with ui.db().read() as session:
            return kpis.lifetime.lifetime_distributions(session, actor=actor, filters=shown.board.filters)

    shown_charts = shown.once(("lifetime",), counted, spinner="Counting lifetime totals…")
    if not shown_charts:
        st.info("No lifetime totals imported: map a patron file's lifetime checkouts or renewals columns (Imports → Patrons).")
        return
    for column, chart in zip(st.columns(len(shown_charts)), shown_charts):
        with column:
            long = lambda chart=chart: small_cells.numeric(chart.frame).melt(id_vars="band", var_name="residence", value_name="patrons")  # noqa: E731
            _plot(shown, ("lifetime", chart.key), px.bar, long, x="band", y="patrons", color="residence", title=chart.title,
                  category_orders={"band": list(chart.frame["band"])})
            _table(shown, f"lifetime-{chart.key}", chart.frame)
            st.caption(shown.once(("summary", "lifetime", chart.key), lambda chart=chart: ui.md(charts.summary(chart.frame, measure="total", by="band", label="patrons"))))
            st.caption(chart.caption)
            ui.download_buttons(chart.frame, name=f"dashboard-lifetime-{chart.key}", key=f"dl-lifetime-{chart.key}")


def _outreach(shown: Shown) -> None:
    board = shown.board
    st.subheader("Outreach")
    left, right = st.columns(2)
    with left:
        chart = board.charts["outreach"]
        if len(chart.frame):
            named = lambda: chart.frame.assign(kind=chart.frame["kind"].map(_label))  # noqa: E731
            _plot(shown, ("outreach",), px.bar, named, x="month", y="interactions", color="kind", title=chart.title)
        else:
            st.info("No outreach interactions logged in the months shown.")
        _chart_footer(shown, chart, "outreach", measure="interactions", label="outreach interactions")
    with right:
        cards = board.charts["cards_issued"]
        if len(cards.frame):
            _plot(shown, ("cards-issued",), px.bar, lambda: small_cells.numeric(cards.frame), x="month", y="cards_issued", title=cards.title)
        _chart_footer(shown, cards, "cards-issued", measure="cards_issued")


@st.cache_data(ttl=120, show_spinner=False)
def _campaign_rows(url: str, role: str, settings_version: str, _actor) -> list[dict]:
    with ui.db().read() as session:
        return results.dashboard_rows(session, actor=_actor)


def _campaigns(actor) -> None:
    rows = _campaign_rows(ui.db().url, actor.role.value, version, actor)
    if not rows:  # no campaign launched yet: no section
        return
    st.subheader("Campaigns")
    st.caption(
        "Conversion: share of patrons with any library activity in the days after the campaign went out, recipients "
        "against the holdout (sent nothing). Lift in percentage points with its 95 % confidence interval. No tracking pixels."
    )
    frame = pd.DataFrame(rows).astype("string").fillna("–")
    ui.table(frame, hide_index=True)
    ui.download_buttons(frame, name="dashboard-campaigns", key="dl-campaigns")


def _signups(actor) -> None:
    """Sign-ups from the public form (crmcore.signups): per month, with the share confirmed; small cells "<k"."""
    from crmcore.signups import figures

    with ui.db().read() as session:
        frame = figures.by_month(session, actor=actor)
    if not len(frame):  # nobody signed up yet: no section
        return
    st.subheader("Sign-ups")
    st.caption("People without a card who signed up for news on the library's form, by the month they signed up, and how many "
               "confirmed by email (unconfirmed sign-ups are deleted after 7 days).")
    data = small_cells.numeric(frame).assign(month=pd.to_datetime(frame["month"]))
    bars = alt.Chart(data).mark_bar().encode(
        x=alt.X("month:T", title=None, axis=alt.Axis(format="%b %Y")), y=alt.Y("sign-ups:Q", title="sign-ups"),
        tooltip=[alt.Tooltip("month:T", format="%B %Y"), alt.Tooltip("sign-ups:Q"), alt.Tooltip("confirmed %:Q")],
    ).properties(height=200)
    st.altair_chart(bars)
    st.caption(ui.md(charts.summary(frame, measure="sign-ups", label="sign-ups")))
    with st.expander("Table"):
        ui.table(frame.astype("string").fillna("–"), hide_index=True)
    ui.download_buttons(frame, name="dashboard-sign-ups", key="dl-sign-ups")


def _circulation(actor) -> None:
    """Circulation counts without patrons (imported as circulation), by material type or branch: small multiples.
    One self-contained section: its own period, widgets and figure (crmcore.kpis.circulation)."""
    import altair as alt

    from crmcore.kpis import circulation

    with ui.db().read() as session:
        options = circulation.circulation_options(session, actor=actor)
    if not options.months:  # no circulation counts imported: no section
        return
    st.subheader("Circulation")
    label = lambda m: m.strftime("%B %Y")  # noqa: E731
    cols = st.columns(4)
    last = cols[1].selectbox("To", options.months, format_func=label, key="circ-to")
    first = cols[0].selectbox("From", options.months, index=min(23, len(options.months) - 1), format_func=label, key="circ-from")
    by = cols[2].radio("One panel per", list(circulation.BY), format_func=circulation.BY.get, horizontal=True, key="circ-by")
    kind = cols[3].selectbox("Kind", [None, *options.kinds], format_func=lambda k: "All kinds" if k is None else k.replace("_", " "), key="circ-kind")
    with ui.user_errors():
        with ui.db().read() as session:
            chart = circulation.circulation_trends(session, actor=actor, first=first, last=last, by=by, kind=kind)
        series = circulation.BY[by]
        data = pd.DataFrame({"month": pd.to_datetime(chart.frame["month"]), "series": chart.frame[series], "count": chart.frame["count"]})
        lines = (
            alt.Chart(data)
            .mark_line(point=True)
            .encode(
                x=alt.X("month:T", title=None, axis=alt.Axis(format="%b %Y")),
                y=alt.Y("count:Q", title="count"),
                tooltip=[alt.Tooltip("series:N", title=series), alt.Tooltip("month:T", format="%B %Y"), alt.Tooltip("count:Q", format=",")],
            )
            .properties(width=230, height=140)
            .facet(facet=alt.Facet("series:N", title=None), columns=3)
            .properties(title=chart.title)
        )
        st.altair_chart(lines)
        _chart_footer(Shown(board=None), chart, "circulation", measure="count", label="circulation")  # its own figures, made on each run


def _personas(actor) -> None:
    """Patrons of each persona by home branch or zone, small cells suppressed (crmcore.insights); none computed: no section."""
    from crmcore.insights import reports

    with ui.db().read() as session:
        if reports.personas(session, actor=actor)["run"] is None:
            return
        st.subheader("Personas")
        by = st.radio("Patrons of each persona by", ["branch", "zone"], format_func=lambda v: "home branch" if v == "branch" else v, horizontal=True, key="dash-personas-by")
        places = reports.persona_places(session, actor=actor, by=by)
    st.caption("Behaviour groups from the monthly activity, recomputed weekly (see Personas and lapse risk).")
    ui.table(places, hide_index=True)
    ui.download_buttons(places, name=f"dashboard-personas-by-{by}", key="dl-personas")


st.title("Dashboard")
actor = ui.actor()
options = _options(ui.db().url, actor.role.value, actor)
if not options.months:
    st.info("No figures yet: import patrons and activity (or load the demo library) and they appear here.")
    _circulation(actor)  # circulation counts need no patrons
    st.stop()
filters = _filters(options)
with ui.db().read() as session:
    version = settings.version(session)  # one small read per run
with ui.user_errors():
    shown = _board(ui.db().url, actor.role.value, (filters.end_month, filters.months, filters.branch_ids, filters.zone_ids, filters.patron_types), date.today(), version, actor)
    board = shown.board
    length = f"{board.filters.months} month" + ("s" if board.filters.months > 1 else "")
    st.caption(
        f"{board.filters.first_month:%B %Y} – {board.filters.end_month:%B %Y}, against the {length} before. "
        f"Groups of fewer than {board.k} patrons show as “<{board.k}”."
    )
    _cards(board)
    if board.withheld:
        st.warning(board.withheld)
    else:
        _trends(shown)
        _zones(shown)
        _lifecycle(shown)
        _branches(shown)
        _programs(shown)
        _lifetime_section(shown, actor)
        _outreach(shown)
    _campaigns(actor)
    _signups(actor)
    if not (filters.branch_ids or filters.zone_ids or filters.patron_types):  # requests are the whole library's
        last_day = (board.filters.end_month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        inbox.figures(ui.db(), actor, (board.filters.first_month, last_day), key="dash", only_if_any=True)
_circulation(actor)
_personas(actor)
