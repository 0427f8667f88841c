"""The HTML form staff paste into the library's website: it posts to this app's /signup with a signed form
token (valid a year), the honeypot field hidden, and nothing that needs JavaScript."""

from __future__ import annotations

from html import escape

from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import sending
from crmcore.languages import catalogues
from crmcore.languages.catalogues import N_, gettext
from crmcore.library import consent
from crmcore.signups import prospects, spam, tokens
from crmcore.web.pages import escaped, language_field


def fields_html(*, token: str, branches: dict[str, str], values: dict | None = None, language: str = catalogues.DEFAULT) -> str:
    """The form's fields in `language` (shared by the /signup page and the snippet), every value escaped; branch
    names as staff wrote them. A hidden field keeps the answer in the same language."""
    words = escaped(language, {
        "email": N_("Email address (required)"),
        "name": N_("Name"),
        "topics": N_("What would you like to hear about?"),
        "branch": N_("Your library branch"),
        "any": N_("(any)"),
        "postal_code": N_("Postal code"),
        "honeypot": N_("Leave this empty"),
        "send": N_("Sign up"),
    })
    values = values or {}
    asked = values.get("topics") or []

    def value(name: str) -> str:
        return escape(str(values.get(name) or ""), quote=True)

    def label(topic: str) -> str:
        text = gettext(language, consent.TOPIC_LABELS[topic])
        return escape(text[:1].upper() + text[1:])

    options = "".join(f'<option value="{escape(code, quote=True)}"{" selected" if values.get("branch") == code else ""}>{escape(name)}</option>' for code, name in branches.items())
    topics = "".join(
        f'<label><input type="checkbox" name="topics" value="{t}"{" checked" if t in asked else ""}> {label(t)}</label><br>'
        for t in prospects.TOPICS
    )
    return (
        f'<input type="hidden" name="form_token" value="{escape(token, quote=True)}">'
        f"{language_field(language)}"
        f'<p><label>{words["email"]}<br><input type="email" name="email" required maxlength="254" autocomplete="email" value="{value("email")}"></label></p>'
        f'<p><label>{words["name"]}<br><input type="text" name="name" maxlength="120" autocomplete="name" value="{value("name")}"></label></p>'
        f'<fieldset><legend>{words["topics"]}</legend>{topics}</fieldset>'
        f'<p><label>{words["branch"]}<br><select name="branch"><option value="">{words["any"]}</option>{options}</select></label></p>'
        f'<p><label>{words["postal_code"]}<br><input type="text" name="postal_code" maxlength="19" autocomplete="postal-code" value="{value("postal_code")}"></label></p>'
        # The honeypot: off screen and out of the tab order; people leave it empty, form-filling bots do not.
        f'<p style="position:absolute;left:-10000px" aria-hidden="true"><label>{words["honeypot"]}<input type="text" name="{spam.HONEYPOT}" tabindex="-1" autocomplete="off"></label></p>'
        f'<p><button type="submit">{words["send"]}</button></p>'
    )


def html(session: Session, *, actor: Actor, language: str = catalogues.DEFAULT) -> str:
    """The snippet for the library's website in `language`, with a fresh year-long form token."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    action = f"{sending.public_url(session)}/signup"
    fields = fields_html(token=tokens.form_token(tokens.SNIPPET), branches=prospects.branch_choices(session), language=catalogues.choose(language))
    return f'<form method="post" action="{escape(action, quote=True)}" accept-charset="utf-8" lang="{escape(catalogues.choose(language), quote=True)}">{fields}</form>'
