"""A request's reference (`REQ-12-3f9a0c1d`): in the subject of every reply, so the answer comes back into the
same request. The check digits are a keyed digest of the number: a reference someone typed or changed is not
taken for a real one (an unknown or forged reference opens a new request instead)."""

from __future__ import annotations

import hashlib
import hmac
import re

from crmcore.campaigns import preference_tokens

PATTERN = re.compile(r"\bREQ-(\d{1,12})-([0-9a-f]{8})\b", re.IGNORECASE)


def _digits(request_id: int) -> str:
    key = preference_tokens.secret_key().encode()
    return hmac.new(key, f"request:{int(request_id)}".encode(), hashlib.sha256).hexdigest()[:8]


def make(request_id: int) -> str:
    """The reference of request `request_id`."""
    return f"REQ-{int(request_id)}-{_digits(request_id)}"


def found_in(*texts: str | None) -> tuple[int | None, str | None]:
    """(the request id of the first genuine reference in `texts`, the first reference-like text that is not
    genuine); either may be None."""
    forged = None
    for text in texts:
        for match in PATTERN.finditer(text or ""):
            number, digits = int(match[1]), match[2].lower()
            if hmac.compare_digest(digits, _digits(number)):
                return number, None
            forged = forged or match[0]
    return None, forged
