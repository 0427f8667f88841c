"""What patrons read in a text: a campaign's message with its stop line, the longest it can get, and the replies
to keywords."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.campaigns import templates
from crmcore.models import Branch, Patron
from crmcore.texts import segments

STOP_LINE = "Reply STOP to stop texts."


def campaign_text(*, body: str, context: dict[str, Any]) -> str:
    """One patron's text: the campaign's message filled in, then how to stop."""
    return f"{templates.render_text(body=body, context=context)}\n{STOP_LINE}"


def _longest(session: Session, column) -> str:
    return session.scalar(select(column).where(column.is_not(None)).order_by(func.length(column).desc()).limit(1)) or ""


def _longest_context(session: Session, *, preferences_url: str, survey_link: str) -> dict[str, Any]:
    """Merge values as long as any patron's: the longest first name, branch and patron type on record, and
    links as long as the longest a patron gets."""
    return {
        **templates.SAMPLE_CONTEXT,
        "first_name": _longest(session, Patron.first_name) or templates.SAMPLE_CONTEXT["first_name"],
        "branch": _longest(session, Branch.name) or templates.SAMPLE_CONTEXT["branch"],
        "patron_type": _longest(session, Patron.patron_type) or templates.SAMPLE_CONTEXT["patron_type"],
        "card_expires": "30 September 2030",
        "preferences_url": preferences_url,
        "survey_link": survey_link,
        "library_name": settings.get(session, "library_name"),
    }


def check_length(session: Session, *, body: str, preferences_url: str, survey_link: str) -> segments.Length:
    """The length of the message with the longest merge values; ValueError past the setting's number of parts."""
    text = campaign_text(body=body, context=_longest_context(session, preferences_url=preferences_url, survey_link=survey_link))
    found, most = segments.length(text), int(settings.get(session, "sms_max_segments"))
    if found.parts > most:
        raise ValueError(f"Message: with the longest names on record it takes {found.parts} text parts ({found.describe()}); at most {most} "
                         f"(Administration → Settings, {settings.LABELS['sms_max_segments']}). Shorten it.")
    return found


def help_reply(session: Session) -> str:
    brand = settings.branding(session)
    contact = settings.get(session, "sms_help_contact") or str(settings.get(session, "public_url"))
    return f"{brand.name}: {contact}. Reply STOP to stop texts, START to get them again."


def stop_reply(session: Session) -> str:
    return f"{settings.branding(session).name}: you will get no more texts from us. Reply START to get them again."


def start_reply(session: Session) -> str:
    return f"{settings.branding(session).name}: texts are on again. Reply STOP to stop them."
