"""Campaigns → Sent mail: the messages written to the outbox when no SMTP server is configured; text messages and their delivery reports."""

import pandas as pd
import streamlit as st

import ui
from crmcore.admin import config
from crmcore.campaigns import inbound, outbox, results
from crmcore.texts import sent as texts_sent

st.title("Sent mail")
db, me = ui.db(), ui.actor()
if config.get("CRM_SMTP_HOST"):
    st.info("An SMTP server is configured, so campaign messages go out by email; earlier outbox files are listed below.")
else:
    st.caption("No SMTP server is configured: every message is written here as an .eml file instead of being sent.")

with ui.user_errors():
    queue = ui.sending_paused()
    with db.read() as session:
        failed = results.failures(session, actor=me)
    if not queue["paused"] and queue["waiting"]:
        st.caption(f"{queue['waiting']:,} messages wait to go out.")
    if failed:
        with st.expander(f"Messages that failed ({len(failed):,}{'+' if len(failed) == 200 else ''})"):
            ui.table(pd.DataFrame(failed)[["campaign", "patron", "reason"]], hide_index=True)

with ui.user_errors():
    with db.write() as session:  # the list shows patrons' addresses: audited
        entries = outbox.list_messages(session, actor=me)
    if not entries:
        st.info("The outbox is empty.")
    else:
        ui.table(
            pd.DataFrame([(ui.local(e.written_at), e.to, e.subject, e.name) for e in entries], columns=["written", "to", "subject", "file"]),
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
            ui.personal_download("Download this message (.eml)", file_name=chosen, content_type="message/rfc822", make=message.as_bytes, key="sent-eml")

st.subheader("Mail that came back")
st.caption("Unsubscribes by mail, bounces and complaints reaching the inbound listener in the last 30 days. "
           "Anything Liaison could not understand is kept here for you to read, then mark as reviewed.")
with ui.user_errors():
    with db.read() as session:
        inbound_mail = inbound.recent(session, actor=me)
    ui.table([{inbound.KIND_LABELS[k]: n for k, n in inbound_mail["counts"].items()}], hide_index=True)
    for item in inbound_mail["review"]:
        with st.container(border=True):
            st.text(f"{ui.local(item['received_at'])} · {item['subject'] or '(no subject)'} · {item['outcome']}")
            if st.button("Mark as reviewed", key=f"inbound-reviewed-{item['id']}"):
                with db.write() as session:
                    inbound.mark_reviewed(session, actor=me, inbound_id=item["id"])
                st.rerun()

st.subheader("Text messages")
st.caption("Texts sent lately, with the delivery report the gateway sent back; and what patrons texted in over the last 30 days. "
           + ("Texts go through the text gateway." if config.get("CRM_SMS_URL") else "No text gateway is configured: texts are written to the outbox folder instead."))
with ui.user_errors():
    with db.read() as session:
        sent_texts = texts_sent.recent(session, actor=me)
    ui.table([sent_texts["keywords"]], hide_index=True)
    if sent_texts["texts"]:
        ui.table(pd.DataFrame(sent_texts["texts"]).pipe(ui.local_frame, "sent", "reported"), hide_index=True)
    else:
        st.info("No text messages have gone out yet.")
