"""The public request form at /request: name, e-mail, topic, message. Spam defence: a signed form token (made
when the form was shown, good for a day), a honeypot field people never see, and rate limits per address (in
the database, so every app replica counts the same) and per client (in this process)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlmodel import Session

from crmcore import validation
from crmcore.campaigns import preference_tokens
from crmcore.inbox import references, tickets
from crmcore.languages.catalogues import N_, Refusal
from crmcore.models import Request, RequestTopic, utcnow
from crmcore.web.limits import RateLimit

SALT = "liaison.request-form"
MAX_AGE_SECONDS = 24 * 3600
PER_ADDRESS_PER_HOUR = 3
PER_CLIENT_PER_HOUR = 10
MAX_MESSAGE = 5000
HONEYPOT = "website"  # a field hidden from people; bots fill it in
EXPIRED = N_("This form was open too long (more than a day). Your message is below: send it again.")
INVALID = N_("This form could not be checked. Open the request page again and send your message from there.")
TOO_MANY = N_("You have sent several requests in the last hour. Please wait a little, or reply to the e-mail the library sent you.")
CLIENTS = RateLimit(PER_CLIENT_PER_HOUR, 3600)


@dataclass(frozen=True)
class Outcome:
    reference: str | None  # None: a bot's submission, answered as if taken, kept nowhere


def make_token() -> str:
    """A signed token for one showing of the form."""
    return URLSafeTimedSerializer(preference_tokens.secret_key(), salt=SALT).dumps({"f": 1})


def _check_token(token: str | None) -> None:
    try:
        URLSafeTimedSerializer(preference_tokens.secret_key(), salt=SALT).loads(token or "", max_age=MAX_AGE_SECONDS)
    except SignatureExpired:
        raise ValueError(EXPIRED) from None
    except BadSignature:
        raise ValueError(INVALID) from None


def submit(session: Session, *, fields: dict[str, str], client: str, now: datetime | None = None) -> Outcome:
    """Take one submission of the form; ValueError (a Refusal) with a message for the person on bad input."""
    now = now or utcnow()
    _check_token(fields.get("token"))
    if fields.get(HONEYPOT, "").strip():
        return Outcome(reference=None)
    name = " ".join(fields.get("name", "").split())
    try:
        email = validation.email(fields.get("email", ""), field="Your e-mail address")
    except ValueError:
        raise Refusal(N_("Your e-mail address: {address} is not a valid email address."), address=fields.get("email", "").strip()) from None
    if not email:
        raise Refusal(N_("Your e-mail address: needed, so the library can answer you."))
    if len(name) > 200:
        raise Refusal(N_("Your name: at most {most} characters (got {got})."), most=200, got=len(name))
    message = fields.get("message", "").strip()
    if not message:
        raise Refusal(N_("Your message: please say what you need."))
    if len(message) > MAX_MESSAGE:
        raise Refusal(N_("Your message: at most {most} characters (got {got}); shorten it or send it by e-mail."), most=f"{MAX_MESSAGE:,}", got=f"{len(message):,}")
    topic = None
    if fields.get("topic"):
        try:
            topic = session.get(RequestTopic, int(fields["topic"]))
        except ValueError:
            topic = None
        if topic is None or not topic.active:
            raise Refusal(N_("Topic: choose one from the list."))
    recent = session.scalar(select(func.count()).where(func.lower(Request.requester_email) == email.lower(), Request.channel == "form", Request.created_at >= now - timedelta(hours=1)))
    if recent >= PER_ADDRESS_PER_HOUR or not CLIENTS.allow(client):
        raise ValueError(TOO_MANY)
    first_line = message.splitlines()[0]
    request = tickets.open_request(session, channel="form", subject=first_line[:80] + ("…" if len(first_line) > 80 else ""), body=message,
                                   requester_name=name, requester_email=email, topic_id=topic.id if topic else None, now=now)
    return Outcome(reference=references.make(request.id))
