"""Language codes: what an ILS export writes (Koha `lang` such as es-ES or default, Evergreen locales such as
fr-CA, a language's name) normalised to the code Liaison keeps, the language alone (es, fr, en)."""

from __future__ import annotations

import re
from functools import lru_cache

from babel import Locale, UnknownLocaleError

# Koha writes "default" for "the library's default language": no language of the patron's own.
NO_LANGUAGE = frozenset({"default", "none", "-"})
_TAG = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*")


@lru_cache(maxsize=1)
def _names() -> dict[str, str]:
    """Language names in English and in each language itself (Spanish, español) → code."""
    english = Locale("en").languages
    out = {name.lower(): code for code, name in english.items() if "_" not in code}
    for code in english:
        if "_" not in code and len(code) == 2:
            try:
                own = Locale(code).get_display_name(code)
            except (UnknownLocaleError, ValueError, TypeError):
                continue
            if own:
                out.setdefault(own.lower(), code)
    return out


def normalise(value: str | None) -> str | None:
    """The language code for `value`, None when it names none ("", "default"); ValueError when it is not a
    language tag or name (the import reports the cell)."""
    text = (value or "").strip()
    if not text or text.lower() in NO_LANGUAGE:
        return None
    match = _TAG.fullmatch(text)
    if match and match.group(1).lower() in known():
        return match.group(1).lower()
    if (code := _names().get(text.lower())) is not None:
        return code
    raise ValueError(f"{text!r} is not a language code such as en, es or fr-CA")


@lru_cache(maxsize=1)
def known() -> frozenset[str]:
    """Every language code Babel knows (en, es, fr, haw …)."""
    return frozenset(code for code in Locale("en").languages if "_" not in code)


def name(code: str | None) -> str:
    """A code's language in its own words (español, français), for staff and patrons alike; "" for none."""
    if not code:
        return ""
    try:
        return Locale(code).get_display_name(code) or code
    except (UnknownLocaleError, ValueError, TypeError):
        return code
