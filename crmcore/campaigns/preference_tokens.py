"""Signed, expiring tokens that let a patron reach their own preference page without signing in.

The key comes from CRM_SECRET_KEY, or from data/secret.key, generated once (mode 0600). Never from code.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from crmcore.admin import config
from crmcore.languages.catalogues import N_

SALT = "liaison.preferences"
# Long enough that a message read months later still works (laws ask for at least 30 days).
MAX_AGE_SECONDS = 400 * 24 * 3600

# Shown to patrons in their language where the page shows them (crmcore.languages.catalogues).
EXPIRED = N_("This link has expired. Use the link in a more recent message from the library, or contact the library.")
INVALID = N_("This link is not valid: it may have been cut short or changed. Copy the whole link from the message.")


def key_file() -> Path:
    return config.DATA_DIR / "secret.key"


def secret_key() -> str:
    """CRM_SECRET_KEY, or the key in data/secret.key (created once, readable only by its owner)."""
    configured = config.get("CRM_SECRET_KEY")
    if configured:
        return configured
    path = key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(), salt=SALT)


def maker() -> Callable[[int], str]:
    """`make` with the key read once: for a batch of messages."""
    dumps = _serializer().dumps
    return lambda patron_id: dumps({"p": int(patron_id)})


def make(patron_id: int) -> str:
    """A token naming one patron."""
    return maker()(patron_id)


def read(token: str | None, *, max_age: int = MAX_AGE_SECONDS) -> int:
    """The patron id a token names; ValueError with a message for the patron when expired or tampered."""
    if not token:
        raise ValueError(INVALID)
    try:
        data = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise ValueError(EXPIRED) from None
    except BadSignature:
        raise ValueError(INVALID) from None
    if not isinstance(data, dict) or not isinstance(data.get("p"), int):
        raise ValueError(INVALID)
    return data["p"]
