"""Cell values as libraries export them: missing markers, booleans, dates in several orders, numbers.

Each parser takes a stripped, non-missing string and returns the clean value or raises ValueError with
a reason for a person (the runner adds the line and the field).

A million-row file has millions of cells, so each type also has a column function (`*_column`) that
takes a whole column of such strings and returns their values in a few C-level passes when the cells
have the common shape, and SLOW for a cell it leaves to the exact parser (an unusual shape, or an
error whose message the parser words). Both give the same value for every cell the fast one accepts.
"""

from __future__ import annotations

import itertools
import re
from datetime import date

from crmcore import validation

MISSING = frozenset({"", "NONE", "NULL", "N/A"})
TRUE = frozenset({"TRUE", "T", "YES", "Y", "1"})
FALSE = frozenset({"FALSE", "F", "NO", "N", "0"})
DATE_ORDERS = {"iso": "ISO (2024-03-31)", "dmy": "day/month/year (31/03/2024)", "mdy": "month/day/year (03/31/2024)"}
# A plausible year: a month number mapped as a year (5 → 0005) or a typo (2204) is a row error, not a date.
FIRST_YEAR = 1900


def last_year(years_ahead: int = 1) -> int:
    """The latest plausible year of a date: next year (a card's expiry may lie further ahead)."""
    return date.today().year + years_ahead

# The common shape of an address, checked without email_validator (tens of microseconds a call);
# anything else, and special-use domains, go through crmcore.validation for the real verdict.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test", "example", "internal", "home", "lan"})
_PHONE_CHARS = frozenset("0123456789+()-. /x")


def _every_case(words) -> frozenset[str]:
    return frozenset("".join(chars) for word in words for chars in itertools.product(*({c.lower(), c.upper()} for c in word)))


# Every spelling is_missing accepts, and parse_bool's words in every case: set lookups instead of upper().
MISSING_FORMS = _every_case(MISSING)
BOOL_FORMS = {form: value for words, value in ((TRUE, True), (FALSE, False)) for form in _every_case(words)}
SLOW = object()  # a column function's answer for a cell the exact parser must see


def is_missing(text: str) -> bool:
    """Blank, 'None', 'NULL' or 'N/A' (any case): the value is missing."""
    return len(text) <= 4 and text.upper() in MISSING


def parse_bool(text: str) -> bool:
    """true/false, yes/no, y/n, t/f, 1/0 in any case (an export's "true", "TRUE" and "True" alike)."""
    upper = text.upper()
    if upper in TRUE:
        return True
    if upper in FALSE:
        return False
    raise ValueError(f"{text!r} is not yes/no (use true/false, yes/no, Y/N, T/F or 1/0)")


def parse_int(text: str) -> int:
    cleaned = text.replace(",", "").replace(" ", "").replace("\u00a0", "")
    try:
        number = float(cleaned)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if number != int(number):
        raise ValueError(f"{text!r} is not a whole number")
    return int(number)


def parse_date(text: str, order: str = "iso", *, first_year: int = FIRST_YEAR, last_year: int | None = None) -> date:
    """A date in the chosen order; a bare year (1987) means 1 January; ISO is always accepted. Its year must
    lie between `first_year` and `last_year` (default next year)."""
    last = _last(last_year)
    head = text[:10]
    if len(head) == 10 and head[4] == "-" and head[7] == "-":
        try:
            day = date.fromisoformat(head)
        except ValueError:
            raise ValueError(f"{text!r} is not a valid date") from None
        return _plausible(day, text, first_year, last)
    if len(text) == 4 and text.isdigit():
        return _checked(_plausible_year(int(text), text, first_year, last), 1, 1, text)
    parts = text.split(" ")[0].replace(".", "/").replace("-", "/").split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a date ({DATE_ORDERS[order]})")
    a, b, c = (int(p) for p in parts)
    if len(parts[0]) == 4:  # 2024/03/31 whatever the chosen order
        return _plausible(_checked(a, b, c, text), text, first_year, last)
    year = _year(c) if len(parts[2]) <= 2 else c  # 24 is 2024, but 0005 is the year 5 (and implausible)
    if order == "mdy":
        return _plausible(_checked(year, a, b, text), text, first_year, last)
    if order == "dmy":
        return _plausible(_checked(year, b, a, text), text, first_year, last)
    raise ValueError(f"{text!r} is not an ISO date (choose day/month/year or month/day/year in the mapping)")


def _last(last_year: int | None) -> int:
    return date.today().year + 1 if last_year is None else last_year


def _plausible_year(year: int, text: str, first_year: int, last_year: int) -> int:
    if not first_year <= year <= last_year:
        raise ValueError(f"{text!r} is not a plausible year ({first_year}–{last_year})")
    return year


def _plausible(day: date, text: str, first_year: int, last_year: int) -> date:
    if not first_year <= day.year <= last_year:
        raise ValueError(f"{text!r} is not a plausible date (years {first_year}–{last_year})")
    return day


def _year(value: int) -> int:
    return value + (2000 if value < 70 else 1900) if value < 100 else value


def _checked(year: int, month: int, day: int, text: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValueError(f"{text!r} is not a valid date") from None


def parse_month(text: str) -> int:
    """A month as a number (1–12, "05") or an English name or abbreviation ("May", "sept.", "DEC")."""
    word = text.strip().rstrip(".").lower()
    if word in _MONTH_WORDS:
        return _MONTH_WORDS[word]
    try:
        month = parse_int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a month (1–12, or a name such as May or Sep)") from None
    if not 1 <= month <= 12:
        raise ValueError(f"{text!r} is not a month (1–12, or a name such as May or Sep)")
    return month


def year_month(year_text: str | int | None, month_text: str | None, *, first_year: int = FIRST_YEAR, last_year: int | None = None) -> date | None:
    """The first day of a month given as a year column (or the mapping's year) and a month column (number
    or name); None when the year is missing (blank, 'None', 'NULL', 'N/A': no such month, not an error)."""
    if year_text is None or (isinstance(year_text, str) and is_missing(year_text.strip())):
        return None
    shown = str(year_text).strip()
    try:
        year = year_text if isinstance(year_text, int) else parse_int(shown)
    except ValueError:
        raise ValueError(f"{shown!r} is not a year") from None
    _plausible_year(year, shown, first_year, _last(last_year))
    month = parse_month(month_text) if month_text and not is_missing(month_text.strip()) else 1
    return _checked(year, month, 1, f"{shown}-{month_text}")


_MONTH_NAMES = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"]
_MONTH_WORDS = {
    **{name: i for i, name in enumerate(_MONTH_NAMES, 1)},
    **{name[:3]: i for i, name in enumerate(_MONTH_NAMES, 1)},
    "sept": 9,
}


def parse_email(text: str) -> str:
    """The normalised address (domain lower-cased), checked like crmcore.validation.email."""
    match = _EMAIL.fullmatch(text)
    if match and len(text) <= 254 and match.group(1).rsplit(".", 1)[1].lower() not in _SPECIAL_TLDS:
        local, _, domain = text.rpartition("@")
        if len(local) <= 64:
            return f"{local}@{domain.lower()}"
    try:
        return validation.email(text, field="email")
    except ValueError as exc:
        raise ValueError(str(exc).removeprefix("email: ")) from None


def parse_phone(text: str) -> str:
    """A phone number as exported, if it looks like one (7 to 15 digits, usual punctuation)."""
    digits = sum(ch.isdigit() for ch in text)
    if not 7 <= digits <= 15 or not set(text) <= _PHONE_CHARS:
        raise ValueError(f"{text!r} is not a phone number")
    return text


# The fast shapes: ASCII digits only (str.isdigit and \d accept other scripts' digits, which the
# parsers turn down), an ISO date at the head of each cell, an address whose domain is lower case.
_ISO_DATES = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:\n[0-9]{4}-[0-9]{2}-[0-9]{2})*")
_DIGITS = re.compile(r"[0-9]{1,15}(?:\n[0-9]{1,15})*")
_YEARS = re.compile(r"[0-9]{4}(?:\n[0-9]{4})*")
_FAST_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)(?=.{1,254}\Z)"
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?!(?:" + "|".join(sorted(_SPECIAL_TLDS)) + r")\Z)[a-z]{2,63}",
    re.DOTALL,
)
_PHONE_PUNCTUATION = str.maketrans("", "", "".join(_PHONE_CHARS - set("0123456789")))


def _every_cell(pattern: re.Pattern, cells: list[str]) -> bool:
    """Whether every cell matches `pattern` (the cells joined by newlines: one C-level pass; a cell that
    holds a newline itself, from a quoted field, makes it False)."""
    joined = "\n".join(cells)
    return bool(cells) and joined.count("\n") == len(cells) - 1 and pattern.fullmatch(joined) is not None


def text_column(cells: list[str], max_len: int) -> list:
    if not cells or max(map(len, cells)) <= max_len:
        return cells
    return [c if len(c) <= max_len else SLOW for c in cells]


def bool_column(cells: list[str]) -> list:
    get = BOOL_FORMS.get
    return [get(c, SLOW) for c in cells]


def date_column(cells: list[str], *, first_year: int = FIRST_YEAR, last_year: int | None = None) -> list:
    """ISO dates (anything after the tenth character ignored, as parse_date does) with a plausible year."""
    heads = [c[:10] for c in cells]
    if _every_cell(_ISO_DATES, heads):
        try:
            days = list(map(date.fromisoformat, heads))
        except ValueError:
            return [SLOW] * len(cells)
        last = _last(last_year)
        if first_year <= min(days).year and max(days).year <= last:
            return days
        return [d if first_year <= d.year <= last else SLOW for d in days]
    return [SLOW] * len(cells)


def year_column(cells: list[str], low: int, high: int) -> list:
    """Years (1987, or an ISO date's year) within low..high."""
    if _every_cell(_YEARS, cells):
        years = list(map(int, cells))
    else:
        days = date_column(cells, first_year=1, last_year=9999)  # the bounds checked are low..high
        if SLOW in days:
            return days
        years = [d.year for d in days]
    if years and low <= min(years) and max(years) <= high:
        return years
    return [y if low <= y <= high else SLOW for y in years]


def count_column(cells: list[str]) -> list:
    """Whole numbers written as plain digits."""
    if _every_cell(_DIGITS, cells):
        return list(map(int, cells))
    return [SLOW] * len(cells)


def email_column(cells: list[str]) -> list:
    return [c if m else SLOW for c, m in zip(cells, map(_FAST_EMAIL.fullmatch, cells))]


def phone_column(cells: list[str]) -> list:
    """Numbers of 7 to 15 ASCII digits once the usual punctuation is taken out."""
    digits = [c.translate(_PHONE_PUNCTUATION) for c in cells]
    return [c if 7 <= len(d) <= 15 and d.isascii() and d.isdigit() else SLOW for c, d in zip(cells, digits)]
