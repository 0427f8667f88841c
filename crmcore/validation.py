"""Checks of contact details typed by staff or imported: a clean value, or ValueError saying why."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email

DEFAULT_REGION = "US"


def email(value: str | None, *, field: str = "email") -> str | None:
    """The normalised address, None when blank; ValueError naming the field otherwise."""
    if value is None or not value.strip():
        return None
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{field}: {value!r} is not a valid email address ({exc}).") from None


def phone(value: str | None, *, field: str = "phone", region: str = DEFAULT_REGION) -> str | None:
    """The number in international format (E.164), None when blank; ValueError naming the field otherwise."""
    if value is None or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValueError(f"{field}: {value!r} is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
