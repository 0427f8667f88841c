"""The confirmation email of a sign-up: a signed link to /signup/confirm/<token>, sent through the campaigns'
transport (SMTP when configured, else the outbox)."""

from __future__ import annotations

import uuid
from html import escape

from sqlmodel import Session

from crmcore.admin import settings
from crmcore.campaigns import mime, sending
from crmcore.campaigns.addresses import mail_domain, mail_from
from crmcore.campaigns.mime import Mail
from crmcore.languages.catalogues import gettext
from crmcore.models import Prospect, utcnow
from crmcore.signups import prospects, tokens


def link(session: Session, prospect: Prospect, language: str | None = None) -> str:
    """The confirmation link; with the sign-up's language, so the page it opens speaks it too."""
    url = f"{sending.public_url(session)}/signup/confirm/{tokens.confirm_token(prospect.id, prospect.email)}"
    return f"{url}?lang={language}" if language else url


def build(session: Session, prospect: Prospect, *, language: str | None = None) -> Mail:
    """The email asking the person to confirm, in `language` (the form's) where the catalogues have it."""
    brand = settings.branding(session)
    url = link(session, prospect, language)
    what = prospects.topic_words(prospect.topics, language)
    hello = gettext(language, "Hello {name},").format(name=prospect.name) if prospect.name else gettext(language, "Hello,")
    lines = [
        hello,
        "",
        gettext(language, "Someone (we hope you) asked {library} to send news about {topics} to this address.").format(library=brand.name, topics=what),
        gettext(language, "To confirm, open this link and press Confirm (it works for 7 days):"),
        "",
        url,
        "",
        gettext(language, "If it was not you, ignore this email: nothing will be sent and your address will be deleted within 7 days."),
    ]
    footer = [brand.name, *brand.address.splitlines()]
    text = "\n".join(lines + ["", "--", *footer]) + "\n"
    confirm = gettext(language, "Confirm my sign-up")
    html = "".join(f"<p>{escape(line)}</p>" if line != url else f'<p><a href="{escape(url, quote=True)}">{escape(confirm)}</a></p>' for line in lines if line)
    html += "<hr><p><small>" + "<br>".join(escape(line) for line in footer if line) + "</small></p>"
    subject = gettext(language, "Please confirm: news from {library}").format(library=brand.name)
    return mime.build(mail_from=mail_from(), to=prospect.email, subject=subject, text=text, html=html,
                      message_id=f"<signup-{prospect.id}.{uuid.uuid4().hex[:12]}@{mail_domain()}>", date=utcnow())


def send(mail: Mail) -> None:
    """Send it now, on a connection of its own; SendFailure or OSError when the way out is down."""
    with sending.transport().connect() as sender:
        sender.send(mail)
