"""The public pages' words in the patron's language, from the gettext catalogues in `crmcore/locales/`.

A message id is the English text itself: `gettext("es", "Unsubscribe")` is its Spanish, and English (or a
language without a catalogue, or a text not yet translated) is the text as written. Text written where no
language is known yet (an error raised deep in crmcore) is marked with `N_` and translated where it is
shown. The .po files are read as they are (Babel's reader), so a new language needs no build step: add
`crmcore/locales/<code>/LC_MESSAGES/messages.po` (see the README's "Languages").
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

from crmcore.languages import codes

DEFAULT = "en"
LOCALES = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
# What marks a translatable text for extraction (tests/test_languages.py, pybabel): the msgid is gettext's
# second argument, N_'s first.
KEYWORDS = {"gettext": (2,), "N_": None}


def N_(msgid: str) -> str:
    """Mark a text for translation where it is shown, later; returns it unchanged."""
    return msgid


class Refusal(ValueError):
    """Bad input refused with words a visitor reads, and `{fields}` filled in where it is shown (a question's
    number, a length): `raise Refusal(N_("Question {n}: please answer this question."), n=2)`. Its str() is
    the English, as for any ValueError; `said(language, exc)` gives it in the page's language."""

    def __init__(self, msgid: str, **fields: object):
        super().__init__(msgid.format(**fields))
        self.msgid, self.fields = msgid, fields


def said(language: str | None, exc: BaseException) -> str:
    """An error's words in `language`: a Refusal's msgid translated then filled in, else its text translated."""
    if isinstance(exc, Refusal):
        return gettext(language, exc.msgid).format(**exc.fields)
    return gettext(language, str(exc))


@lru_cache(maxsize=None)
def _catalogue(code: str) -> dict[str, str]:
    path = LOCALES / code / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        catalogue = read_po(handle, locale=code)
    return {m.id: m.string for m in catalogue if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


@lru_cache(maxsize=1)
def supported() -> tuple[str, ...]:
    """The languages the public pages speak: English, then every language with a catalogue."""
    found = sorted(p.name for p in LOCALES.iterdir() if (p / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()) if LOCALES.is_dir() else []
    return (DEFAULT, *(code for code in found if code != DEFAULT))


def gettext(language: str | None, msgid: str) -> str:
    """`msgid` in `language`; the msgid itself (English) where there is no translation."""
    if not language or language == DEFAULT:
        return msgid
    return _catalogue(language).get(msgid, msgid)


def choose(*wanted: str | None) -> str:
    """The first of `wanted` (a ?lang= choice, the patron's own language …) that the pages speak, else English."""
    for code in wanted:
        if code and code.lower() in supported():
            return code.lower()
    return DEFAULT


def for_page(*, chosen: str | None, patron: str | None, accept_language: str | None) -> str:
    """A public page's language: the one chosen on it (?lang=), else the patron's own (a signed per-patron link),
    else the browser's best (Accept-Language), else English. Every public page asks this one function."""
    return choose(chosen, patron, negotiate(accept_language))


def names() -> dict[str, str]:
    """The languages the pages speak, each named in itself (English, Español, Français): the switcher's words."""
    return {code: codes.name(code)[:1].upper() + codes.name(code)[1:] for code in supported()}


def negotiate(accept_language: str | None) -> str | None:
    """The best language the pages speak for an Accept-Language header ("es-MX,es;q=0.9,en;q=0.5"), if any."""
    ranked = []
    for position, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        code = tag.strip().split("-")[0].split("_")[0].lower()
        if code in supported() and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else None
