"""The HTML form staff paste into the library's website: it posts to this app's /signup with a signed form
token (valid a year), the honeypot field hidden, and nothing that needs JavaScript."""

from __future__ import annotations

from html import escape

from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import sending
from crmcore.library import consent
from crmcore.signups import prospects, spam, tokens


def fields_html(*, token: str, branches: dict[str, str], values: dict | None = None) -> str:
    """The form's fields (shared by the /signup page and the snippet), every value escaped."""
    values = values or {}
    asked = values.get("topics") or []

    def value(name: str) -> str:
        return escape(str(values.get(name) or ""), quote=True)

    options = "".join(f'<option value="{escape(code, quote=True)}"{" selected" if values.get("branch") == code else ""}>{escape(name)}</option>' for code, name in branches.items())
    topics = "".join(
        f'<label><input type="checkbox" name="topics" value="{t}"{" checked" if t in asked else ""}> {escape(consent.TOPIC_LABELS[t].capitalize())}</label><br>'
        for t in prospects.TOPICS
    )
    return (
        f'<input type="hidden" name="form_token" value="{escape(token, quote=True)}">'
        f'<p><label>Email address (required)<br><input type="email" name="email" required maxlength="254" autocomplete="email" value="{value("email")}"></label></p>'
        f'<p><label>Name<br><input type="text" name="name" maxlength="120" autocomplete="name" value="{value("name")}"></label></p>'
        f"<fieldset><legend>What would you like to hear about?</legend>{topics}</fieldset>"
        f'<p><label>Your library branch<br><select name="branch"><option value="">(any)</option>{options}</select></label></p>'
        f'<p><label>Postal code<br><input type="text" name="postal_code" maxlength="19" autocomplete="postal-code" value="{value("postal_code")}"></label></p>'
        # The honeypot: off screen and out of the tab order; people leave it empty, form-filling bots do not.
        f'<p style="position:absolute;left:-10000px" aria-hidden="true"><label>Leave this empty<input type="text" name="{spam.HONEYPOT}" tabindex="-1" autocomplete="off"></label></p>'
        '<p><button type="submit">Sign up</button></p>'
    )


def html(session: Session, *, actor: Actor) -> str:
    """The snippet for the library's website, with a fresh year-long form token."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    action = f"{sending.public_url(session)}/signup"
    fields = fields_html(token=tokens.form_token(tokens.SNIPPET), branches=prospects.branch_choices(session))
    return f'<form method="post" action="{escape(action, quote=True)}" accept-charset="utf-8">{fields}</form>'
