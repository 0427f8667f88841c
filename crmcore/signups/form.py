"""The public sign-up, from post to confirmation: what the /signup routes call. Each step refuses with a
message for the person signing up (ValueError) and then nothing is kept."""

from __future__ import annotations

import logging

from crmcore.campaigns.transport import SendFailure
from crmcore.db import Database
from crmcore.languages.catalogues import N_
from crmcore.signups import confirmation, prospects, spam, tokens

log = logging.getLogger("liaison.signups")
NOT_SENT = N_("We could not send the confirmation email just now. Please try again in a few minutes.")


def submit(db: Database, *, fields: dict, client: str | None, language: str | None = None) -> str:
    """Check and keep a posted form, then email its confirmation link in `language` (the form's); returns the address it went to.
    A filled-in honeypot keeps nothing and sends nothing, and answers as if it had (a bot learns nothing)."""
    tokens.check_form_token(fields.get("form_token"))
    if str(fields.get(spam.HONEYPOT) or "").strip():
        log.info("sign-up refused: the hidden field was filled in")
        return str(fields.get("email") or "").strip()
    with db.write() as session:
        signup = prospects.clean(session, fields)
        prospect = prospects.store(session, signup=signup, client=client)
        mail = confirmation.build(session, prospect, language=language) if prospect is not None else None
    if mail is not None:
        try:
            confirmation.send(mail)
        except (SendFailure, OSError) as exc:
            log.error("sign-up confirmation not sent: %s", type(exc).__name__)
            raise ValueError(NOT_SENT) from None
    return signup.email
