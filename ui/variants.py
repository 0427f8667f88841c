"""The words of a message in other languages: the editor beside a message's default words (`words`: a journey's
send step keeps them in its definition; `editor`: a campaign's, kept as its variants), and the language picker
of a preview."""

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


def words(*, existing: dict[str, tuple[str, str]], tag: str, editable: bool, subject: bool = True) -> tuple[str, str, str, str] | None:
    """The words of one message in other languages (campaigns, journeys' send steps): a table of those written,
    and a form to add, change or remove the words in one language. Returns what was submitted, ("save" or
    "remove", language, subject, body), for the caller to keep; `subject=False` for a text (it has none)."""
    db, me = ui.db(), ui.actor()
    with db.read() as session:
        choices = _choices(session, actor=me, existing=existing)
    st.subheader("In other languages")
    st.caption("Patrons whose preferred language has its own words get them; everyone else gets the message above.")
    if existing:
        shown = [(codes.name(c).capitalize(), c, s if subject else b) for c, (s, b) in existing.items()]
        ui.table(pd.DataFrame(shown, columns=["language", "code", "subject" if subject else "message"]), hide_index=True)
    if not editable:
        return None
    language = st.selectbox("Language", choices, format_func=lambda c: f"{codes.name(c).capitalize()} ({c})", key=f"var-lang-{tag}",
                            accept_new_options=True, help="Choose one, or type a code such as vi or zh.")
    old_subject, old_body = existing.get(language or "", ("", ""))
    with st.form(f"var-form-{tag}-{language}"):
        new_subject = st.text_input("Subject in this language", value=old_subject, key=f"var-subject-{tag}-{language}") if subject else ""
        new_body = st.text_area("Message in this language", value=old_body, height=200, key=f"var-body-{tag}-{language}",
                                help="The same merge fields as the message above, e.g. {{ first_name }}.")
        save_col, remove_col = st.columns(2)
        save = save_col.form_submit_button("Save these words", type="primary")
        remove = remove_col.form_submit_button("Remove this language", disabled=language not in existing)
    if save or remove:
        return ("save" if save else "remove", language, new_subject, new_body)
    return None


def done_text(action: str, language: str) -> str:
    """What a page says once words in a language were saved or removed."""
    name = codes.name(codes.normalise(language)).capitalize()
    return f"Saved the words in {name}." if action == "save" else f"Removed the words in {name}: those patrons get the message above."


def editor(*, owner: str, owner_id: int, editable: bool, done, subject: bool = True) -> None:
    """The variants a campaign keeps (crmcore.languages.variants): `words` over them. `done(text)` reports a change (and reruns)."""
    db, me = ui.db(), ui.actor()
    with db.read() as session:
        existing = variants.variants(session, actor=me, owner=owner, owner_id=owner_id)
    submitted = words(existing=existing, tag=f"{owner}-{owner_id}", editable=editable, subject=subject)
    if submitted:
        action, language, new_subject, new_body = submitted
        with ui.user_errors():
            with db.write() as session:
                if action == "save":
                    variants.save(session, actor=me, owner=owner, owner_id=owner_id, language=language, subject=new_subject if subject else None, body=new_body)
                else:
                    variants.remove(session, actor=me, owner=owner, owner_id=owner_id, language=language)
            done(done_text(action, language))


def languages_of(*, owner: str, owner_id: int) -> list[str]:
    """The languages a campaign has words in."""
    db, me = ui.db(), ui.actor()
    with db.read() as session:
        return list(variants.variants(session, actor=me, owner=owner, owner_id=owner_id))


def preview_language(*, languages, key: str) -> str | None:
    """The language to preview in: the patron's own (None), or one of `languages`, those the message has words in."""
    existing = list(languages)
    if not existing:
        return None
    options = [OWN, catalogues.DEFAULT if catalogues.DEFAULT not in existing else None, *existing]
    options = [o for o in options if o is not None]
    picked = st.selectbox("Language", options, key=key, format_func=lambda c: "The patron's own language" if c == OWN else
                          ("The message above (default)" if c == catalogues.DEFAULT and c not in existing else codes.name(c).capitalize()))
    return picked or None
