"""Phone numbers for texts: E.164 with the library's default region (setting `sms_default_region`)."""

from __future__ import annotations

import hashlib

from sqlmodel import Session

from crmcore import validation
from crmcore.admin import settings


def region(session: Session) -> str:
    return str(settings.get(session, "sms_default_region"))


def normalise(value: str | None, *, region: str) -> str | None:
    """The number in E.164 (+15551234567), or None when it is blank or cannot be a phone number."""
    try:
        return validation.phone(value, region=region)
    except ValueError:
        return None


def phone_hash(e164: str) -> str:
    """How a number is kept on the do-not-text list: SHA-256 of its E.164 form."""
    return hashlib.sha256(e164.encode("ascii")).hexdigest()


def suffix(e164: str) -> str:
    """The last four digits, to find a number however it was typed ("(312) 555-0101": a LIKE on the stored text)."""
    return e164[-4:]
