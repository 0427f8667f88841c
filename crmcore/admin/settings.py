"""Run-time settings that staff change (rows of the `setting` table), with defaults and validation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
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


def _time_zone(value: Any) -> str:
    text = str(value or "").strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"must be a time-zone name such as Europe/London or America/Chicago, not {text!r}") from None
    return text


def _default_zone() -> str:
    """The environment's TZ when it names a zone (as the server's clock does), else UTC."""
    try:
        return _time_zone(os.environ.get("TZ", "").lstrip(":"))
    except ValueError:
        return "UTC"
def _text(most: int, *, required: bool, lines: bool = False) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        text = "" if value is None else str(value)
        text = "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip()) if lines else " ".join(text.split())
        if required and not text:
            raise ValueError("must not be empty")
        if len(text) > most:
            raise ValueError(f"at most {most} characters, not {len(text):,}")
        return text

    return check


LOGO_MAX_BYTES = 200_000
_IMAGE_KINDS = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF87a": "image/gif", b"GIF89a": "image/gif"}


def _image_kind(data: bytes) -> str | None:
    return next((kind for magic, kind in _IMAGE_KINDS.items() if data.startswith(magic)), None)


def _logo(value: Any) -> str:
    """A logo as a data: address (stored in the database, served by the app itself); bytes of an upload or
    a data: address; "" removes it."""
    if value in (None, "", b""):
        return ""
    if isinstance(value, str):
        head, _, encoded = value.partition(",")
        if not head.startswith("data:image/") or not head.endswith(";base64"):
            raise ValueError("must be an image file (PNG, JPEG or GIF)")
        try:
            value = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the image is damaged (not base64)") from None
    if not isinstance(value, (bytes, bytearray)):
        raise ValueError("must be an image file (PNG, JPEG or GIF)")
    kind = _image_kind(bytes(value))
    if kind is None:
        raise ValueError("must be a PNG, JPEG or GIF image (this file is none of them)")
    if len(value) > LOGO_MAX_BYTES:
        raise ValueError(f"the image is {len(value):,} bytes; at most {LOGO_MAX_BYTES:,}")
    return f"data:{kind};base64," + base64.b64encode(bytes(value)).decode("ascii")


def _fscs_key(value: Any) -> str:
    text = str(value or "").strip().upper()
    if text and (len(text) > 10 or not text.isalnum()):
        raise ValueError(f"must be a library's FSCS key from the Public Libraries Survey (letters and digits, such as IL0123), not {text[:20]!r}")
    return text


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("yes", "true", "on", "1"):
        return True
    if text in ("no", "false", "off", "0"):
        return False
    raise ValueError(f"must be yes or no, not {value!r}")


def _region(value: Any) -> str:
    text = str(value or "").strip().upper()
    if text not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"must be a two-letter country code such as US, GB or CA, not {text!r}")
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
    "time_zone": SettingSpec(_default_zone(), "The library's time zone (e.g. Europe/London): times are shown and typed in it, stored in UTC.", _time_zone),
    "library_name": SettingSpec("The library", "The library's name, at the top and foot of every message and on the preference page.", _text(120, required=True)),
    "postal_address": SettingSpec(
        "", "The library's postal address, at the foot of every message (anti-spam laws in many countries require one).", _text(300, required=False, lines=True)
    ),
    "library_logo": SettingSpec("", "The library's logo (PNG, JPEG or GIF, at most 200 KB), at the top of every message and of the preference page.", _logo),
    "request_retention_months": SettingSpec(24, "Requests from patrons and partners are deleted, with their messages and notes, this many months after they are closed.", _int_between(1, 120)),
    # Peers, personas and lapse risk (crmcore.peers, crmcore.insights).
    "peer_library_key": SettingSpec("", "The library's own row of the Public Libraries Survey (its FSCS key), compared with its peers.", _fscs_key),
    "lapse_risk_enabled": SettingSpec(True, "Compute each patron's lapse risk weekly and offer it in segments; off removes the scores.", _flag),
    # New materials you may like (crmcore/recommendations).
    "catalogue_window_days": SettingSpec(60, "A new catalogue feed removes the earlier feeds' items added longer ago than this many days.", _int_between(1, 730)),
    "recommendations_per_message": SettingSpec(3, "At most this many new items in a message's recommendations.", _int_between(1, 10)),
    # Text messages (crmcore/texts)
    "sms_default_region": SettingSpec("US", "The country of phone numbers written without a +country code (two letters, e.g. US, GB, CA).", _region),
    "sms_max_segments": SettingSpec(3, "A text message may take at most this many parts (160 standard characters each, fewer for other alphabets).", _int_between(1, 10)),
    "text_rate_per_minute": SettingSpec(600, "The worker sends at most this many text messages a minute.", _int_between(1, 100_000)),
    "quiet_hours_start": SettingSpec(21, "No text messages from this hour (0 to 23, in the library's time zone) ...", _int_between(0, 23)),
    "quiet_hours_end": SettingSpec(8, "... until this hour; texts due in between wait. The same hour twice means no quiet hours.", _int_between(0, 23)),
    "sms_help_contact": SettingSpec("", "How patrons reach the library, in the reply to a text saying HELP (e.g. a phone number or web address).", _text(80, required=False)),
}


@dataclass(frozen=True)
class Branding:
    name: str
    address: str
    logo: str  # a data: address, or ""

    def logo_image(self) -> tuple[bytes, str] | None:
        """(bytes, content type) of the logo, or None."""
        if not self.logo:
            return None
        head, _, encoded = self.logo.partition(",")
        return base64.b64decode(encoded), head[5:].split(";")[0]


def branding(session: Session) -> Branding:
    """The library's name, postal address and logo, as every message and the preference page show them."""
    values = {key: get(session, key) for key in ("library_name", "postal_address", "library_logo")}
    return Branding(name=values["library_name"], address=values["postal_address"], logo=values["library_logo"])


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
    "time_zone": "Time zone",
    "library_name": "Library name",
    "postal_address": "Postal address",
    "library_logo": "Library logo",
    "request_retention_months": "Months closed requests are kept",
    "peer_library_key": "Our library in the Public Libraries Survey (FSCS key)",
    "lapse_risk_enabled": "Lapse risk scores",
    "catalogue_window_days": "Days a new item stays in the catalogue feed",
    "recommendations_per_message": "Recommended items per message, at most",
    "sms_default_region": "Country of phone numbers",
    "sms_max_segments": "Parts per text message, at most",
    "text_rate_per_minute": "Text messages sent per minute, at most",
    "quiet_hours_start": "Quiet hours start (hour)",
    "quiet_hours_end": "Quiet hours end (hour)",
    "sms_help_contact": "Contact in the HELP reply",
}


def get(session: Session, key: str) -> Any:
    """The current value of a setting, or its default."""
    spec = SPECS[key]
    row = session.get(Setting, key)
    return spec.default if row is None else row.value


def library_zone(session: Session) -> ZoneInfo:
    """The library's time zone (setting "time_zone"), in which staff see and type times."""
    return ZoneInfo(get(session, "time_zone"))


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
    shown = (lambda v: f"an image of {len(v) * 3 // 4:,} bytes" if v else "none") if key == "library_logo" else (lambda v: v)  # noqa: E731
    audit.record(session, actor=actor, action="setting.change", entity="setting", entity_id=key, detail={"old": shown(old), "new": shown(clean)})
    return clean
