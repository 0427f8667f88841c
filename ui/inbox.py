"""The requests KPIs (crmcore.inbox.kpis), on Outreach KPIs and on the dashboard: counts, medians and the share
answered within target, requests per week by topic and by branch as small multiples; small cells "<k"."""

from __future__ import annotations

from datetime import date

import altair as alt
import streamlit as st

import ui
from crmcore.inbox.kpis import request_kpis
from crmcore.privacy import small_cells
from ui import charts


def figures(db, actor, period: tuple[date, date], *, key: str, only_if_any: bool = False) -> None:
    """The section for requests received between the two dates (with `only_if_any`, none when there were none)."""
    with db.read() as session:
        asked = request_kpis(session, actor=actor, date_from=period[0], date_to=period[1])
    if only_if_any and asked["requests"] == 0:
        return
    st.subheader("Requests from patrons and partners")
    row = st.columns(4)
    hours = lambda value: "—" if value is None else f"{value:,} h"  # noqa: E731
    row[0].metric("Requests", f"{asked['requests']:,}" if isinstance(asked["requests"], int) else asked["requests"])
    row[1].metric("Median first response", hours(asked["median_first_response_hours"]))
    row[2].metric("Median time to resolve", hours(asked["median_resolution_hours"]))
    row[3].metric("Answered within target", "—" if asked["within_target_share"] is None else f"{asked['within_target_share']}%")
    st.caption(f"Medians and the share need at least {asked['k']} requests; weeks and groups of fewer than {asked['k']} show as <{asked['k']}.")
    for by, title in (("topic", "Requests per week, by topic"), ("branch", "Requests per week, by branch")):
        weekly = asked[f"by_week_{by}"]
        st.markdown(f"**{title}**")
        if weekly.empty:
            st.caption("No requests in this period.")
            continue
        chart = alt.Chart(small_cells.numeric(weekly)).mark_bar().encode(
            x=alt.X("week:O", title="week starting"), y=alt.Y("requests:Q", title="requests"), tooltip=["week", by, "requests"]
        ).properties(width=180, height=120).facet(facet=alt.Facet(f"{by}:N", title=by), columns=3)
        st.altair_chart(chart)
        st.caption(ui.md(charts.summary(weekly, measure="requests", by=by, label="requests")))
        ui.download_buttons(weekly, name=f"requests-by-week-{by}", key=f"{key}-requests-{by}")
