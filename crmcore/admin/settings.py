"""Run-time settings that staff change (rows of the `setting` table), with defaults and validation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable

from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Setting, utcnow
from crmcore.privacy import audit


@dataclass(frozen=True)
class SettingSpec:
    default: Any
    help: str
    check: Callable[[Any], Any]  # returns the clean value or raises ValueError


def _int_between(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be a whole number, not {value!r}") from None
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return check


def _public_url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return text


SPECS: dict[str, SettingSpec] = {
    "retention_months": SettingSpec(18, "Raw activity older than this is rolled up and deleted.", _int_between(1, 120)),
    "small_cell_k": SettingSpec(5, "Groups of fewer patrons than this show as '<k'.", _int_between(2, 100)),
    "frequency_cap_per_7_days": SettingSpec(
        2, "At most this many campaign messages per patron in any 7 days.", _int_between(1, 50)
    ),
    "conversion_window_days": SettingSpec(
        30, "A recipient converts with any library activity this many days after sending.", _int_between(1, 365)
    ),
    "public_url": SettingSpec("http://127.0.0.1:8501", "Public address used in links inside messages.", _public_url),
    "send_rate_per_minute": SettingSpec(600, "The worker sends at most this many messages a minute.", _int_between(1, 100_000)),
    "backup_keep": SettingSpec(7, "How many daily backups the worker keeps.", _int_between(1, 365)),
    "session_idle_hours": SettingSpec(8, "Staff who do nothing for this many hours are signed out.", _int_between(1, 72)),
}


# What the Settings page calls each setting (and what its messages say).
LABELS = {
    "retention_months": "Months of raw activity kept",
    "small_cell_k": "Smallest group shown",
    "frequency_cap_per_7_days": "Messages per patron in 7 days, at most",
    "conversion_window_days": "Days a recipient has to convert",
    "public_url": "Public address",
    "send_rate_per_minute": "Messages sent per minute, at most",
    "backup_keep": "Daily backups kept",
    "session_idle_hours": "Hours before an idle sign-out",
}


def get(session: Session, key: str) -> Any:
    """The current value of a setting, or its default."""
    spec = SPECS[key]
    row = session.get(Setting, key)
    return spec.default if row is None else row.value


def version(session: Session) -> str:
    """A short digest of every stored setting: in a cache key, it makes a change reach every process at once."""
    rows = session.exec(select(Setting.key, Setting.value).order_by(Setting.key)).all()
    return hashlib.blake2b(json.dumps([list(r) for r in rows], default=str).encode(), digest_size=8).hexdigest()


def get_all(session: Session) -> dict[str, Any]:
    stored = {row.key: row.value for row in session.exec(select(Setting))}
    return {key: stored.get(key, spec.default) for key, spec in SPECS.items()}


def put(session: Session, *, actor: Actor, key: str, value: Any) -> Any:
    """Validate and store a setting; audited. Raises ValueError naming the setting on bad input."""
    require(actor, Perm.MANAGE_SETTINGS)
    if key not in SPECS:
        raise ValueError(f"Unknown setting {key!r}.")
    try:
        clean = SPECS[key].check(value)
    except ValueError as exc:
        raise ValueError(f"{LABELS[key]}: {exc}.") from None
    row = session.get(Setting, key)
    old = None if row is None else row.value
    if row is None:
        row = Setting(key=key, value=clean)
    row.value, row.updated_at, row.updated_by_id = clean, utcnow(), actor.id
    session.add(row)
    audit.record(session, actor=actor, action="setting.change", entity="setting", entity_id=key, detail={"old": old, "new": clean})
    return clean
