"""Campaigns → Sign-ups: people without a card who signed up for news (double opt-in), the form's address, and
the snippet to paste into the library's website."""

import pandas as pd
import streamlit as st

import ui
from crmcore.campaigns import sending
from crmcore.languages import catalogues
from crmcore.signups import figures, prospects, snippet

st.title("Sign-ups")
st.caption("People without a library card who asked for news by email. Nothing is sent to them until they press Confirm "
           "in the email we send; sign-ups not confirmed within 7 days are deleted. Campaigns can go to them: choose "
           "“Prospects” as the audience of a campaign.")
db, me = ui.db(), ui.actor()
SHOWN = {"all": "Everyone", "confirmed": "Confirmed", "waiting": "Waiting for confirmation"}

with ui.user_errors():
    with db.read() as session:
        months = figures.by_month(session, actor=me)
        address = f"{sending.public_url(session)}/signup"
    if len(months):
        st.subheader("Sign-ups per month")
        ui.table(months, hide_index=True)
        ui.download_buttons(months, name="sign-ups-by-month", key="dl-signups")

    st.subheader("People who signed up")
    shown = st.radio("Show", list(SHOWN), format_func=SHOWN.get, horizontal=True, key="signups-shown")
    with db.write() as session:  # addresses and names: a view of personal data, audited
        rows = prospects.list_prospects(session, actor=me, confirmed={"all": None, "confirmed": True, "waiting": False}[shown])
    if not rows:
        st.info("Nobody has signed up yet.")
    else:
        frame = pd.DataFrame(rows).rename(columns={"signed_up": "signed up", "patron_id": "now a patron (number)", "postal_code": "postal code"})
        frame["confirmed"] = frame["confirmed"].astype("object")
        ui.table(ui.local_frame(frame, "signed up", "confirmed").drop(columns=["id"]), hide_index=True)

    st.subheader("The form")
    st.write(f"The sign-up form is at {ui.md(address)} — link to it, or paste this into a page of the library's website "
             "(it works without JavaScript; copy it again within a year, when its form code expires):")
    names = catalogues.names()
    snippet_language = st.selectbox("The form's language", list(names), format_func=names.get, key="signups-snippet-language",
                                    help="The words of the form and of its messages; the page at the address above follows each visitor's browser.")
    with db.read() as session:
        st.code(snippet.html(session, actor=me, language=snippet_language), language=None, wrap_lines=True)  # plain: highlighted tokens lack contrast
