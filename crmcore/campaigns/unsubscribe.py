"""Unsubscribing from one message: the one-click link (RFC 8058), the mailto address, and the bounce address.

Every campaign message carries one short token naming it: `<message id>.<signature>`. The token goes in
the `List-Unsubscribe` header twice — `https://<public url>/unsubscribe/<token>` (which a mail provider
POSTs to when its reader presses "Unsubscribe") and `mailto:unsubscribe+<token>@<inbound domain>` — and in
the envelope sender `bounce+<token>@<inbound domain>` (VERP), so a late bounce names the message it is about.
It is short enough for the 64 characters an address's local part may hold. A withdrawal through it is the
patron's own choice: it withdraws the message's topic on its channel and stands against later imports.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlmodel import Session

from crmcore.campaigns import preference_tokens
from crmcore.languages.catalogues import N_, gettext
from crmcore.library import consent
from crmcore.models import Campaign, Message, Patron, utcnow
from crmcore.signups import prospects

MAX_AGE = timedelta(seconds=preference_tokens.MAX_AGE_SECONDS)
TOPIC_LABELS = {"events": N_("events"), "new_materials": N_("new materials"), "newsletter": N_("the newsletter"), "fundraising": N_("fundraising"),
                "services": N_("library services")}
CHANNEL_LABELS = {"email": N_("emails"), "sms": N_("text messages"), "phone": N_("phone calls"), "mail": N_("letters")}


def _signature(message_id: int, key: bytes) -> str:
    return hmac.new(key, f"liaison.unsubscribe:{message_id}".encode(), hashlib.sha256).hexdigest()[:24]


def maker():
    """`token(message_id)` with the key read once: for a batch of messages."""
    key = preference_tokens.secret_key().encode()
    return lambda message_id: f"{int(message_id)}.{_signature(int(message_id), key)}"


def token(message_id: int) -> str:
    return maker()(message_id)


def read(token_: str | None) -> int:
    """The message id a token names; ValueError with a message for the patron when it was changed."""
    head, _, signature = (token_ or "").strip().partition(".")
    if not head.isdigit() or not hmac.compare_digest(signature, _signature(int(head), preference_tokens.secret_key().encode())):
        raise ValueError(preference_tokens.INVALID)
    return int(head)


@dataclass(frozen=True)
class Subject:
    """What a token lets a patron stop: the message and who it went to."""

    message_id: int
    patron_id: int | None
    channel: str
    topic: str
    language: str | None = None  # the patron's preferred language, for the pages that answer them
    prospect_id: int | None = None  # a campaign to prospects (crmcore.signups)

    @property
    def described(self) -> str:
        return self.described_in(None)

    def described_in(self, language: str | None) -> str:
        """What the link stops, in `language` ("emails about events", "correos electrónicos sobre eventos")."""
        channels = gettext(language, CHANNEL_LABELS.get(self.channel, self.channel))
        return gettext(language, "{channels} about {topic}").format(channels=channels, topic=gettext(language, TOPIC_LABELS.get(self.topic, self.topic)))


def subject(session: Session, token_: str | None) -> Subject:
    """The message a token names; ValueError (a message for the patron) when it is changed or too old."""
    message = session.get(Message, read(token_))
    if message is None:
        raise ValueError(preference_tokens.INVALID)
    if message.sent_at is not None and utcnow() - message.sent_at > MAX_AGE:
        raise ValueError(preference_tokens.EXPIRED)
    campaign = session.get(Campaign, message.campaign_id)
    language = session.scalar(select(Patron.language).where(Patron.id == message.patron_id)) if message.patron_id else None
    return Subject(
        message_id=message.id, patron_id=message.patron_id, channel=campaign.channel, topic=campaign.topic, language=language, prospect_id=message.prospect_id
    )


def withdraw(session: Session, *, token: str | None, source: str) -> tuple[Subject, bool]:
    """The patron's own withdrawal of the message's topic on its channel; idempotent. (subject, whether it was
    granted until now)."""
    found = subject(session, token)
    if found.prospect_id is not None:  # a prospect's own "no", kept with the prospect (and their patron once linked)
        return found, prospects.withdraw(session, prospect_id=found.prospect_id, topic=found.topic, source=source)
    if found.patron_id is None:
        return found, False  # erased: nothing to do, and nothing to tell
    was = consent.has_consent(session, patron_id=found.patron_id, channel=found.channel, topic=found.topic)
    consent.patron_withdraws(session, patron_id=found.patron_id, channel=found.channel, topic=found.topic, source=source)
    return found, was
