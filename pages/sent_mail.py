"""Campaigns → Sent mail: the messages written to the outbox when no SMTP server is configured."""

import pandas as pd
import streamlit as st

import ui
from crmcore.admin import config
from crmcore.campaigns import outbox

st.title("Sent mail")
db, me = ui.db(), ui.actor()
if config.get("CRM_SMTP_HOST"):
    st.info("An SMTP server is configured, so campaign messages go out by email; earlier outbox files are listed below.")
else:
    st.caption("No SMTP server is configured: every message is written here as an .eml file instead of being sent.")

with ui.user_errors():
    entries = outbox.list_messages(actor=me)
    if not entries:
        st.info("The outbox is empty.")
    else:
        st.dataframe(
            pd.DataFrame([(e.written_at, e.to, e.subject, e.name) for e in entries], columns=["written", "to", "subject", "file"]),
            hide_index=True,
        )
        names = [e.name for e in entries]
        chosen = st.selectbox("Open a message", [None, *names], format_func=lambda n: "—" if n is None else n, key="sent-open")
        if chosen:
            with db.write() as session:  # the message holds a patron's address: audited
                message = outbox.read(session, actor=me, name=chosen)
            st.code("\n".join(f"{k}: {v}" for k, v in message.items()), language=None)
            text = message.get_body(("plain",))
            st.text(text.get_content() if text else "(no text part)")
            html = message.get_body(("html",))
            if html:
                with st.expander("HTML part (source)"):
                    st.code(html.get_content(), language="html")
