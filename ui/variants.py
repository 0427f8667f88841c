"""The words of a message in other languages: the editor beside a message's default words (campaigns; journey
steps may reuse it with their own owner), and the language picker of a preview."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import ui
from crmcore.languages import catalogues, codes, variants

OWN = ""  # the preview picker's "the patron's own language"


def _choices(session, *, actor, existing: dict) -> list[str]:
    """Languages to write in: those patrons prefer, those the public pages speak, those written already."""
    found = variants.languages_in_use(session, actor=actor)
    return list(dict.fromkeys([*existing, *found, *(c for c in catalogues.supported() if c != catalogues.DEFAULT)]))


def editor(*, owner: str, owner_id: int, editable: bool, done) -> None:
    """The variants of one message: a table, and a form to add, change or remove the words in one language.
    `done(text)` reports a change (and reruns)."""
    db, me = ui.db(), ui.actor()
    with db.read() as session:
        existing = variants.variants(session, actor=me, owner=owner, owner_id=owner_id)
        choices = _choices(session, actor=me, existing=existing)
    st.subheader("In other languages")
    st.caption("Patrons whose preferred language has its own words get them; everyone else gets the message above.")
    if existing:
        ui.table(pd.DataFrame([(codes.name(c).capitalize(), c, s) for c, (s, _b) in existing.items()], columns=["language", "code", "subject"]), hide_index=True)
    if not editable:
        return
    tag = f"{owner}-{owner_id}"
    language = st.selectbox("Language", choices, format_func=lambda c: f"{codes.name(c).capitalize()} ({c})", key=f"var-lang-{tag}",
                            accept_new_options=True, help="Choose one, or type a code such as vi or zh.")
    subject, body = existing.get(language or "", ("", ""))
    with st.form(f"var-form-{tag}-{language}"):
        new_subject = st.text_input("Subject in this language", value=subject, key=f"var-subject-{tag}-{language}")
        new_body = st.text_area("Message in this language", value=body, height=200, key=f"var-body-{tag}-{language}",
                                help="The same merge fields as the message above, e.g. {{ first_name }}.")
        save_col, remove_col = st.columns(2)
        save = save_col.form_submit_button("Save these words", type="primary")
        remove = remove_col.form_submit_button("Remove this language", disabled=language not in existing)
    if save or remove:
        with ui.user_errors():
            with db.write() as session:
                if save:
                    variants.save(session, actor=me, owner=owner, owner_id=owner_id, language=language, subject=new_subject, body=new_body)
                else:
                    variants.remove(session, actor=me, owner=owner, owner_id=owner_id, language=language)
            name = codes.name(codes.normalise(language)).capitalize()
            done(f"Saved the words in {name}." if save else f"Removed the words in {name}: those patrons get the message above.")


def preview_language(*, owner: str, owner_id: int, key: str) -> str | None:
    """The language to preview in: the patron's own (None), or one the message has words in."""
    db, me = ui.db(), ui.actor()
    with db.read() as session:
        existing = variants.variants(session, actor=me, owner=owner, owner_id=owner_id)
    if not existing:
        return None
    options = [OWN, catalogues.DEFAULT if catalogues.DEFAULT not in existing else None, *existing]
    options = [o for o in options if o is not None]
    picked = st.selectbox("Language", options, key=key, format_func=lambda c: "The patron's own language" if c == OWN else
                          ("The message above (default)" if c == catalogues.DEFAULT and c not in existing else codes.name(c).capitalize()))
    return picked or None
