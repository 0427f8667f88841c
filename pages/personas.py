"""Personas and lapse risk: behaviour clusters and the lapse-risk score, from the monthly rollups only."""

import altair as alt
import pandas as pd
import streamlit as st

import ui
from ui import charts
from crmcore.insights import features, reports
from crmcore.privacy import small_cells

actor = ui.actor()
db = ui.db()
st.title("Personas and lapse risk")
st.caption("Computed weekly by the worker from each patron's monthly activity (kinds, how often, how recently, how long a member, age band) — never titles.")

with ui.user_errors():
    with db.read() as session:
        found = reports.personas(session, actor=actor)
        risk = reports.lapse_risk(session, actor=actor)
    run = found["run"]
    if run is None:
        st.info("No personas yet: the worker computes them weekly.")
    else:
        st.caption(f"Computed {ui.local(run['computed_at'])}: {run['personas']} personas of {run['patrons']:,} patrons active in the last 12 months "
                   f"(k = {run['k']} chosen by silhouette; groups smaller than the smallest group shown are merged into the nearest).")
        table = found["table"]
        numbers = small_cells.numeric(table)
        chart = (
            alt.Chart(numbers.dropna(), title="Patrons per persona").mark_bar()
            .encode(x=alt.X("patrons:Q", title="Patrons"), y=alt.Y("persona:N", title=None, sort="-x"), tooltip=["persona", "patrons"])
        )
        st.altair_chart(chart, width="stretch")
        st.caption(charts.summary(table, measure="patrons", by="persona"))
        ui.table(table, hide_index=True)
        ui.download_buttons(table, name="personas", key="personas-csv")
        by = st.radio("Sizes by", ["branch", "zone"], format_func=lambda v: f"home {v}" if v == "branch" else v, horizontal=True, key="personas-by")
        with db.read() as session:
            places = reports.persona_places(session, actor=actor, by=by)
        ui.table(places, hide_index=True)
        ui.download_buttons(places, name=f"personas-by-{by}", key="personas-places")

    st.subheader("Lapse risk")
    if not risk["enabled"]:
        st.info("Lapse risk is turned off (Settings).")
    elif risk["run"] is None:
        st.info("No lapse risk yet: the worker computes it weekly.")
    elif risk["run"].get("error"):
        st.warning(risk["run"]["error"])
    else:
        r = risk["run"]
        row = st.columns(3)
        row[0].metric("AUC on held-out months", f"{r['auc']:.2f}", help="0.5 is a coin toss, 1 is perfect: how well the risk told apart patrons who lapsed from those who stayed, in months it was not trained on.")
        row[1].metric("Validated on", r["validated_on"])
        row[2].metric("Lapsed there", f"{r['lapse_share'] * 100:.0f} %")
        st.caption(f"The probability of no activity in the next 6 months, by logistic regression trained on {', '.join(r['trained_on'])} and checked on {r['validated_on']}. "
                   "Segments can use it: Lapse risk (%) at least x.")
        bands = risk["bands"]
        chart = alt.Chart(small_cells.numeric(bands).dropna(), title="Patrons by lapse risk").mark_bar().encode(
            x=alt.X("risk:N", title="Lapse risk", sort=None), y=alt.Y("patrons:Q", title="Patrons"), tooltip=["risk", "patrons"])
        st.altair_chart(chart, width="stretch")
        st.caption(charts.summary(bands, measure="patrons", by="risk"))
        ui.table(bands, hide_index=True)
        ui.download_buttons(bands, name="lapse-risk", key="lapse-csv")
        with st.expander("What the score reads (features and their weights)"):
            weights = pd.DataFrame({"feature": list(r["weights"]), "weight": list(r["weights"].values())})
            weights["feature"] = weights["feature"].map(features.LABELS)
            ui.table(weights, hide_index=True)
            st.caption("Weights on standardised features: a positive weight raises the risk. The age band is the only personal attribute read.")
