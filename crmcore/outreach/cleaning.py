"""Cleaning what staff type or import into outreach records: text, web addresses, names, and UNSET.
Bad input raises ValueError naming the field, so an importer can report "line N: website: …".
"""

from __future__ import annotations

import re
from typing import Any


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # "leave this field as it is" in update functions


def text(value: Any, *, field: str, max_length: int | None = None, required: bool = False) -> str | None:
    """Stripped text or None when blank; ValueError naming the field when required or too long."""
    cleaned = None if value is None else str(value).strip() or None
    if cleaned is None and required:
        raise ValueError(f"{field}: required.")
    if cleaned is not None and max_length is not None and len(cleaned) > max_length:
        raise ValueError(f"{field}: at most {max_length} characters (got {len(cleaned)}).")
    return cleaned


def website(value: Any, *, field: str = "website") -> str | None:
    """An http(s) address or None; anything else (javascript:, data:) is refused."""
    cleaned = text(value, field=field, max_length=300)
    if cleaned is None:
        return None
    if not re.match(r"^https?://[^\s/]+", cleaned, re.IGNORECASE):
        raise ValueError(f"{field}: {cleaned!r} must be a web address starting with http:// or https://.")
    return cleaned


def full_name(first: str | None, last: str | None) -> str:
    """A person's name for display: first and last, whichever are known."""
    return " ".join(p for p in (first, last) if p)


def normal_name(name: str) -> str:
    return re.sub(r"\s+", " ", name).strip().lower()
