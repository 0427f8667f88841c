"""The sign-up's signed tokens (itsdangerous, the key of crmcore.campaigns.preference_tokens): the form's own
token, without which a post is refused, and the confirmation link's token naming one sign-up."""

from __future__ import annotations

import hashlib

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from crmcore.campaigns import preference_tokens
from crmcore.languages.catalogues import N_

FORM_SALT, CONFIRM_SALT = "liaison.signup-form", "liaison.signup-confirm"
# The form page's token is fresh each time the page is shown; the snippet on the library's website is
# copied once, so its token lasts a year (copy it again from the Sign-ups page after that).
PAGE, SNIPPET = "page", "snippet"
FORM_MAX_AGE = {PAGE: 24 * 3600, SNIPPET: 400 * 24 * 3600}
CONFIRM_MAX_AGE = 7 * 24 * 3600  # unconfirmed sign-ups are deleted after 7 days

NO_FORM_TOKEN = N_("This sign-up did not come from the library's form (its form code is missing or changed), so nothing was saved. "
                    "Open the sign-up page again and fill it in there.")
OLD_FORM_TOKEN = N_("This sign-up form is out of date, so nothing was saved. Open the sign-up page again and fill it in there.")
CONFIRM_EXPIRED = N_("This confirmation link has expired (links last 7 days). Sign up again to get a new one.")
CONFIRM_INVALID = N_("This confirmation link is not valid: it may have been cut short or changed. Copy the whole link from the email.")


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(preference_tokens.secret_key(), salt=salt)


def form_token(kind: str = PAGE) -> str:
    """A token for one form: the page's (short-lived) or the website snippet's."""
    if kind not in FORM_MAX_AGE:
        raise ValueError(f"Unknown form kind {kind!r}.")
    return _serializer(FORM_SALT).dumps({"f": kind})


def check_form_token(token: str | None) -> None:
    """ValueError with a message for the person signing up unless `token` is a form token still in date."""
    if not token:
        raise ValueError(NO_FORM_TOKEN)
    serializer = _serializer(FORM_SALT)
    try:
        data = serializer.loads(token)  # signature first: an unsigned token is "missing or changed"
        kind = data.get("f") if isinstance(data, dict) else None
        if kind not in FORM_MAX_AGE:
            raise ValueError(NO_FORM_TOKEN)
        serializer.loads(token, max_age=FORM_MAX_AGE[kind])
    except SignatureExpired:
        raise ValueError(OLD_FORM_TOKEN) from None
    except BadSignature:
        raise ValueError(NO_FORM_TOKEN) from None


def _address_hash(email: str) -> str:
    return hashlib.sha256(email.lower().encode()).hexdigest()[:16]


def confirm_token(prospect_id: int, email: str) -> str:
    """The confirmation link's token: the sign-up and (hashed) its address, so it never confirms another one."""
    return _serializer(CONFIRM_SALT).dumps({"s": int(prospect_id), "h": _address_hash(email)})


def read_confirm_token(token: str | None, *, max_age: int = CONFIRM_MAX_AGE) -> tuple[int, str]:
    """(prospect id, address hash); ValueError with a message for the person when expired or changed."""
    if not token:
        raise ValueError(CONFIRM_INVALID)
    try:
        data = _serializer(CONFIRM_SALT).loads(token, max_age=max_age)
    except SignatureExpired:
        raise ValueError(CONFIRM_EXPIRED) from None
    except BadSignature:
        raise ValueError(CONFIRM_INVALID) from None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int) or not isinstance(data.get("h"), str):
        raise ValueError(CONFIRM_INVALID)
    return data["s"], data["h"]


def matches(email: str, address_hash: str) -> bool:
    return _address_hash(email) == address_hash
