"""Outreach KPIs: aggregates only (no community names or notes), so the viewer role may see them too."""

from datetime import date, timedelta

import pandas as pd
import streamlit as st

import ui
from ui import charts, inbox
from crmcore.outreach.kpis import outreach_kpis

actor = ui.actor()
db = ui.db()
st.title("Outreach KPIs")

period = st.date_input("Between", (date.today().replace(day=1) - timedelta(days=335), date.today()), key="okpi-period")
if not isinstance(period, (tuple, list)) or len(period) != 2:
    st.info("Pick the last day of the period too.")
    st.stop()

with ui.user_errors():
    with db.read() as session:
        kpis = outreach_kpis(session, actor=actor, date_from=period[0], date_to=period[1])
    row = st.columns(3)
    row[0].metric("Interactions", f"{kpis['interactions']:,}")
    row[1].metric("Organizations touched", f"{kpis['organizations_touched']:,}")
    row[2].metric("New partners", f"{kpis['new_partners']:,}")
    row = st.columns(3)
    row[0].metric("Overdue follow-ups (now)", f"{kpis['overdue_follow_ups']:,}")
    row[1].metric("Cards issued at outreach", f"{kpis['cards_issued']:,}")
    row[2].metric("Sign-ups collected", f"{kpis['signups']:,}")
    figures = pd.DataFrame(
        [("From", period[0].isoformat()), ("To", period[1].isoformat()), ("Interactions", kpis["interactions"]),
         ("Organizations touched", kpis["organizations_touched"]), ("New partners", kpis["new_partners"]),
         ("Overdue follow-ups (now)", kpis["overdue_follow_ups"]), ("Cards issued at outreach", kpis["cards_issued"]),
         ("Sign-ups collected", kpis["signups"])],
        columns=["figure", "value"],
    ).astype({"value": "string"})
    ui.download_buttons(figures, name=f"outreach-kpis-{period[0]}-{period[1]}", key="okpi-figures")

    st.subheader("Interactions per month, by type")
    if kpis["by_month_type"].empty:
        st.caption("No interactions in this period.")
    else:
        st.bar_chart(kpis["by_month_type"], x="month", y="interactions", color="type")
        st.caption(ui.md(charts.summary(kpis["by_month_type"], measure="interactions", label="interactions")))
        ui.download_buttons(kpis["by_month_type"], name="outreach-kpis-by-type", key="okpi-by-type")
    if kpis["by_month_staff"] is not None:
        st.subheader("Interactions per month, by staff member")
        if kpis["by_month_staff"].empty:
            st.caption("No interactions in this period.")
        else:
            st.bar_chart(kpis["by_month_staff"], x="month", y="interactions", color="staff")
            st.caption(ui.md(charts.summary(kpis["by_month_staff"], measure="interactions", by="staff", label="interactions")))
            ui.download_buttons(kpis["by_month_staff"], name="outreach-kpis-by-staff", key="okpi-by-staff")

    inbox.figures(db, actor, period, key="okpi")
