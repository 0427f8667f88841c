"""Public: a patron's email preferences, reached by the signed link in every message (no sign-in).

Opening the page changes nothing (mail scanners open links); only the buttons do. It speaks the language
chosen on it (?lang=), else the patron's own, else the browser's, else English (crmcore.languages.catalogues).
"""

import streamlit as st

import ui
from crmcore.admin import settings
from crmcore.campaigns import preferences
from crmcore.languages import catalogues
from crmcore.languages.catalogues import N_, gettext
from crmcore.library import consent

TOPIC_LABELS = {"events": N_("Events"), "new_materials": N_("New materials"), "newsletter": N_("Newsletter"), "fundraising": N_("Fundraising"),
                "services": N_("Library services")}
CHANNEL_LABELS = {"email": N_("Email"), "sms": N_("Text message"), "phone": N_("Phone"), "mail": N_("Post")}

db = ui.db()
token = st.query_params.get("token")
with db.read() as session:
    brand = settings.branding(session)
    try:
        shown, problem = preferences.view(session, token=token), None
    except ValueError as exc:
        shown, problem = None, exc
lang = catalogues.for_page(chosen=st.query_params.get("lang"), patron=shown.language if shown else None, accept_language=st.context.headers.get("Accept-Language"))
names = catalogues.names()


def _switch() -> None:
    st.query_params["lang"] = st.session_state["pref-lang"]


st.radio(gettext(lang, "Language"), list(names), index=list(names).index(lang), format_func=names.get, horizontal=True, key="pref-lang", on_change=_switch)
if logo := brand.logo_image():
    st.image(logo[0], width=160)  # from the database, served by this app (Streamlit's own media files)
st.title(gettext(lang, "Your preferences"))
st.caption(ui.md(brand.name))
if message := st.session_state.pop("pref-done", None):
    st.success(message)

with ui.user_errors(language=lang):
    if problem is not None:
        raise problem
    st.write(gettext(lang, "Hello {name}, choose what the library may send you.").format(name=ui.md(shown.first_name)) if shown.first_name
             else gettext(lang, "Choose what the library may send you."))
    # The boxes are keyed by the state they show: after any change (here or elsewhere) they start afresh
    # from the stored choices, never from ticks left over from before.
    state = "".join("1" if shown.consent[(c, t)] else "0" for c in consent.CHANNELS for t in consent.TOPICS)
    with st.form(f"pref-form-{state}"):
        choices = {}
        for channel in consent.CHANNELS:
            st.subheader(gettext(lang, CHANNEL_LABELS[channel]))
            cols = st.columns(len(consent.TOPICS))
            for col, topic in zip(cols, consent.TOPICS):
                choices[(channel, topic)] = col.checkbox(gettext(lang, TOPIC_LABELS[topic]), value=shown.consent[(channel, topic)], key=f"pref-{channel}-{topic}-{state}")
        save = st.form_submit_button(gettext(lang, "Save my choices"), type="primary")
    if save:
        with db.write() as session:
            changed = preferences.save(session, token=token, choices=choices, shown=shown.consent)
        st.session_state["pref-done"] = gettext(lang, "Saved: {count} change(s).").format(count=changed) if changed else gettext(lang, "Nothing changed.")
        st.rerun()
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
    st.write(gettext(lang, "Or stop everything the library sends you:"))
    if st.button(gettext(lang, "Unsubscribe from everything"), key="pref-unsubscribe"):
        with db.write() as session:
            withdrawn = preferences.unsubscribe_all(session, token=token)
        st.session_state["pref-done"] = gettext(lang, "You are unsubscribed from everything (consents withdrawn: {count}).").format(count=withdrawn)
        st.rerun()

st.divider()
st.text("\n".join(line for line in [brand.name, *brand.address.splitlines()] if line))  # literal: the library's own words
