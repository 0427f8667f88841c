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
    st.subheader("New materials you may like")
    st.write("We suggest new items from the categories you like. We never keep which titles you borrowed.")
    if shown.interests:
        st.write("What we think you like: " + ", ".join(ui.md(name) for name, _why in shown.interests) + ".")
    else:
        st.write("We know nothing of what you like yet.")
    with db.read() as session:
        topics = preferences.topic_choices(session)
    with st.form(f"pref-topics-{'-'.join(shown.chosen)}"):
        picked = st.multiselect("Topics I like", topics, default=[t for t in shown.chosen if t in topics], key="pref-topics")
        keep_topics = st.form_submit_button("Save my topics")
    if keep_topics:
        with db.write() as session:
            preferences.choose_topics(session, token=token, topics=picked)
        st.session_state["pref-done"] = "Your topics are saved."
        st.rerun()
    if shown.interests and st.button("Clear my interests", key="pref-clear-interests", help="Forgets the topics you chose and the interests on file."):
        with db.write() as session:
            preferences.clear_interests(session, token=token)
        st.session_state["pref-done"] = "Your interests are cleared."
        st.rerun()
    if shown.history_opt_in:
        st.write("You chose to let the library keep the categories of what you borrow (never the titles).")
        if st.button("Stop keeping my reading history", key="pref-history-off"):
            with db.write() as session:
                preferences.stop_history(session, token=token)
            st.session_state["pref-done"] = "We no longer keep your reading history; the categories we had are gone."
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
