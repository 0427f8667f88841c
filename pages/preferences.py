"""Public: a patron's email preferences, reached by the signed link in every message (no sign-in).

Opening the page changes nothing (mail scanners open links); only the buttons do.
"""

import streamlit as st

import ui
from crmcore import labels
from crmcore.admin import settings
from crmcore.campaigns import preferences
from crmcore.library import consent

TOPIC_LABELS = {t: label.capitalize() for t, label in consent.TOPIC_LABELS.items()}
CHANNEL_LABELS = {"email": "Email", "sms": "Text message", "phone": "Phone", "mail": "Post"}

db = ui.db()
with db.read() as session:
    brand = settings.branding(session)
if logo := brand.logo_image():
    st.image(logo[0], width=160)  # from the database, served by this app (Streamlit's own media files)
st.title("Your preferences")
st.caption(ui.md(brand.name))
token = st.query_params.get("token")
if message := st.session_state.pop("pref-done", None):
    st.success(message)

with ui.user_errors():
    with db.read() as session:
        shown = preferences.view(session, token=token)
    st.write(f"Hello {ui.md(shown.first_name)}, choose what the library may send you." if shown.first_name else "Choose what the library may send you.")
    # The boxes are keyed by the state they show: after any change (here or elsewhere) they start afresh
    # from the stored choices, never from ticks left over from before.
    state = "".join("1" if shown.consent[(c, t)] else "0" for c in consent.CHANNELS for t in consent.TOPICS)
    with st.form(f"pref-form-{state}"):
        choices = {}
        for channel in consent.CHANNELS:
            st.subheader(CHANNEL_LABELS[channel])
            cols = st.columns(len(consent.TOPICS))
            for col, topic in zip(cols, consent.TOPICS):
                choices[(channel, topic)] = col.checkbox(TOPIC_LABELS[topic], value=shown.consent[(channel, topic)], key=f"pref-{channel}-{topic}-{state}")
        save = st.form_submit_button("Save my choices", type="primary")
    if save:
        with db.write() as session:
            changed = preferences.save(session, token=token, choices=choices, shown=shown.consent)
        st.session_state["pref-done"] = f"Saved: {changed} change(s)." if changed else "Nothing changed."
        st.rerun()
    st.divider()
    st.write("Or stop everything the library sends you:")
    if st.button("Unsubscribe from everything", key="pref-unsubscribe"):
        with db.write() as session:
            withdrawn = preferences.unsubscribe_all(session, token=token)
        st.session_state["pref-done"] = f"You are unsubscribed from everything ({labels.plural(withdrawn, 'consent')} withdrawn)."
        st.rerun()

st.divider()
st.text("\n".join(line for line in [brand.name, *brand.address.splitlines()] if line))  # literal: the library's own words
