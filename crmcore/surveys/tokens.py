"""Signed survey links: one per patron (sent in a message) or one per survey (anonymous, for a poster's QR code),
and the form token a survey page carries so that a post without it, or for another survey, is refused."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from crmcore.campaigns import preference_tokens
from crmcore.languages.catalogues import N_

LINK_SALT = "liaison.survey"
FORM_SALT = "liaison.survey-form"
LINK_MAX_AGE = preference_tokens.MAX_AGE_SECONDS  # a message read months later still opens its survey
FORM_MAX_AGE = 24 * 3600  # a page left open for a day can still be sent

INVALID = N_("This survey link is not valid: it may have been cut short or changed. Copy the whole link from the message.")
EXPIRED = N_("This survey link has expired. Use the link in a more recent message from the library.")
NO_FORM = N_("This answer did not come from the survey's own page. Open the survey link again and send the form from there.")
PAGE_TOO_OLD = N_("The survey page was open too long. Open the survey link again and send your answers.")
OTHER_SURVEY = N_("This answer was for another survey than the one at this address. Open the survey link again and answer there.")


@dataclass(frozen=True)
class Link:
    survey_id: int
    patron_id: int | None  # None: the anonymous link


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(preference_tokens.secret_key(), salt=salt)


def maker(survey_id: int) -> Callable[[int], str]:
    """Patron id → that patron's token for this survey, the key read once (for a batch of messages)."""
    dumps = _serializer(LINK_SALT).dumps
    return lambda patron_id: dumps({"s": int(survey_id), "p": int(patron_id)})


def anonymous(survey_id: int) -> str:
    """The survey's one anonymous token (the same every time: a printed QR code keeps working)."""
    return _serializer(LINK_SALT).dumps({"s": int(survey_id)})


def link_maker(base_url: str, survey_id: int) -> Callable[[int], str]:
    """Patron id → the full address of their survey page: the merge field {{ survey_link }} of a campaign
    or a journey step that names the survey."""
    token = maker(survey_id)
    base = base_url.rstrip("/")
    return lambda patron_id: f"{base}/survey/{token(patron_id)}"


def read(token: str | None) -> Link:
    """What a link names; ValueError with a message for the patron when tampered or expired."""
    if not token:
        raise ValueError(INVALID)
    try:
        data, signed_at = _serializer(LINK_SALT).loads(token, return_timestamp=True)
    except BadSignature:
        raise ValueError(INVALID) from None
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        raise ValueError(INVALID)
    patron = data.get("p")
    if patron is not None:
        if not isinstance(patron, int):
            raise ValueError(INVALID)
        try:  # a patron's link expires; the anonymous one (printed on a poster) does not
            _serializer(LINK_SALT).loads(token, max_age=LINK_MAX_AGE)
        except SignatureExpired:
            raise ValueError(EXPIRED) from None
    return Link(survey_id=data["s"], patron_id=patron)


def form_token(link: Link) -> str:
    """The hidden field of the survey page for this link."""
    return _serializer(FORM_SALT).dumps({"s": link.survey_id, "p": link.patron_id})


def check_form(link: Link, value: str | None) -> None:
    """ValueError unless `value` is the form token of a page for this very link (survey and patron)."""
    if not value:
        raise ValueError(NO_FORM)
    try:
        data = _serializer(FORM_SALT).loads(value, max_age=FORM_MAX_AGE)
    except SignatureExpired:
        raise ValueError(PAGE_TOO_OLD) from None
    except BadSignature:
        raise ValueError(NO_FORM) from None
    if not isinstance(data, dict) or data.get("s") != link.survey_id:
        raise ValueError(OTHER_SURVEY)
    if data.get("p") != link.patron_id:
        raise ValueError(NO_FORM)
