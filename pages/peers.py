"""Peers: the library against its peers in the IMLS Public Libraries Survey, with Liaison's own figures beside."""

import altair as alt
import streamlit as st

import ui
from crmcore.admin.permissions import Perm
from crmcore.peers import choice, comparison, survey

actor = ui.actor()
db = ui.db()
st.title("Peers")
st.caption("Per-person measures from the national Public Libraries Survey (IMLS), imported on the Imports page, one fiscal year at a time.")

with db.read() as session:
    years = survey.years(session, actor=actor)
    own = survey.own_key(session)
if not years:
    st.info("No survey year is imported yet: import the Public Libraries Survey file (library systems) on the Imports page.")
    st.stop()

with st.expander("Our library in the survey", expanded=not own):
    query = st.text_input("Find a library by FSCS key or name", key="peers-search")
    if query:
        with db.read() as session:
            found = survey.search(session, actor=actor, query=query)
        ui.table(found, hide_index=True)
        if found and actor.can(Perm.MANAGE_SETTINGS):
            pick = st.selectbox("This is our library", [f["fscs_key"] for f in found], format_func=lambda k: next(f"{f['name']} ({f['state']}, {k})" for f in found if f["fscs_key"] == k), key="peers-pick")
            if st.button("Use as our library", key="peers-choose"):
                with ui.user_errors():
                    with db.write() as session:
                        survey.choose_own(session, actor=actor, fscs_key=pick)
                    st.rerun()
if not own:
    st.info("Choose the library's own row first (an administrator can, above).")
    st.stop()

left, middle, right = st.columns(3)
year = left.selectbox("Survey year", years, key="peers-year")
way = middle.selectbox("Peers", choice.WAYS, format_func=choice.WAY_LABELS.get, index=choice.WAYS.index("nearest"), key="peers-way")
n = int(right.number_input("How many nearest peers", min_value=1, max_value=500, value=10, key="peers-n", disabled=way != "nearest"))

with ui.user_errors():
    with db.read() as session:
        result = comparison.compare(session, actor=actor, year=year, own=own, way=way, n=n)
        trend = comparison.trend(session, actor=actor, own=own, way=way, n=n)
        live = comparison.live_figures(session, actor=actor, year=year, own=own)
    st.subheader(f"{result['own_name']} against {len(result['peers'])} peers, {year}")
    ui.table(result["standing"], hide_index=True)
    ui.download_buttons(result["standing"], name=f"peers-{year}", key="peers-standing")
    st.caption("Percentile: the share of peers with a lower value (equal values count half). Rank 1 is the highest value among the peers and our library.")

    dots = result["dots"]
    summary = "Summary: " + "; ".join(
        f"{row['measure']} {row['own']} against a peer median of {row['peer_median']}" for row in result["standing"].to_dict("records") if row["own"] is not None
    ) + "."
    chart = (
        alt.Chart(dots, title=alt.Title("Our library among its peers", subtitle="Each dot a library; ours in orange"))
        .mark_circle(size=70)
        .encode(
            x=alt.X("value:Q", title=None, scale=alt.Scale(zero=False)),
            y=alt.Y("library:N", title=None, axis=None),
            color=alt.Color("own:N", scale=alt.Scale(domain=[False, True], range=["#8c8c8c", "#e45756"]), legend=alt.Legend(title="Our library")),
            tooltip=[alt.Tooltip("library:N", title="Library"), alt.Tooltip("value:Q", title="Value", format=".2f")],
        )
        .properties(height=120, width=220)
        .facet(facet=alt.Facet("measure:N", title=None), columns=3)
        .resolve_scale(x="independent")
    )
    st.altair_chart(chart)
    st.caption(summary)
    with st.expander("The dots as a table"):
        ui.table(dots[["measure", "library", "value", "own"]], hide_index=True)
        ui.download_buttons(dots[["measure", "library", "value", "own"]], name=f"peers-{year}-dots", key="peers-dots")

    st.subheader("Over the imported years")
    if trend["year"].nunique() > 1:
        long = trend.melt(id_vars=["year", "measure"], value_vars=["own", "peer_median"], var_name="who", value_name="value").dropna()
        long["who"] = long["who"].map({"own": "Our library", "peer_median": "Peer median"})
        line = (
            alt.Chart(long).mark_line(point=True)
            .encode(x=alt.X("year:O", title="Survey year"), y=alt.Y("value:Q", title=None), color=alt.Color("who:N", title=None))
            .properties(height=120, width=220)
            .facet(facet=alt.Facet("measure:N", title=None), columns=3)
            .resolve_scale(y="independent")
        )
        st.altair_chart(line)
        first, last = trend["year"].min(), trend["year"].max()
        st.caption(f"Summary: our library and its peers' median for each measure from {first} to {last}; the table below has every figure.")
    else:
        st.caption("Import another survey year to see a trend.")
    ui.table(trend, hide_index=True)
    ui.download_buttons(trend, name="peers-trend", key="peers-trend")

    st.subheader("The survey beside Liaison's own figures")
    st.caption(f"Liaison's figures for the calendar year {year} (the survey's fiscal year may start in another month). Far apart means an import is missing or counts differently.")
    ui.table(live, hide_index=True)

    with st.expander(f"The {len(result['peers'])} peers"):
        ui.table(result["peers"], hide_index=True)
