"""Campaign subjects and bodies: sandboxed Jinja templates with merge fields, rendered to text and HTML.

Staff write plain text with merge fields such as {{ first_name }}. The text part is that, rendered. The
HTML part escapes everything, the merge values (autoescape) and the staff's own words alike, so no
patron name or imported value can ever become markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from sqlalchemy import select
from sqlmodel import Session

from crmcore.models import Branch, Patron

# name -> what it holds (shown to staff next to the editor).
MERGE_FIELDS = {
    "first_name": "the patron's first name (empty if unknown)",
    "branch": "the name of the patron's home branch",
    "card_expires": "the card's expiry date, e.g. 31 March 2027 (empty if unknown)",
    "patron_type": "the patron type from the ILS, e.g. adult",
    "preferences_url": "the patron's own link to change what they receive",
}

SAMPLE_CONTEXT = {
    "first_name": "Alex",
    "branch": "Central Library",
    "card_expires": "31 March 2027",
    "patron_type": "adult",
    "preferences_url": "https://library.example/preferences?token=sample",
}


class _EscapeLiteralText(Extension):
    """Escapes the template's own text (autoescape only escapes the values of expressions)."""

    def filter_stream(self, stream: TokenStream):
        for token in stream:
            if token.type == "data":
                yield Token(token.lineno, "data", html.escape(token.value, quote=False))
            else:
                yield token


_TEXT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True, extensions=[_EscapeLiteralText])


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=64)
def _compiled(html_part: bool, source: str):
    # A campaign renders the same two templates for every recipient: compile them once.
    return (_HTML if html_part else _TEXT).from_string(source)


def _render(env: SandboxedEnvironment, source: str, context: dict[str, Any], *, part: str) -> str:
    try:
        return _compiled(env is _HTML, source).render(**context)
    except TemplateSyntaxError as exc:
        raise ValueError(f"{part}, line {exc.lineno}: {exc.message}.") from None
    except UndefinedError as exc:
        fields = ", ".join(MERGE_FIELDS)
        raise ValueError(f"{part}: {exc.message}. The merge fields are: {fields}.") from None
    except SecurityError:
        raise ValueError(f"{part}: the template tries something templates may not do (only merge fields and simple logic).") from None
    except TemplateError as exc:
        raise ValueError(f"{part}: {exc}.") from None


def _paragraphs(escaped: str) -> str:
    blocks = [b.strip("\n") for b in escaped.replace("\r\n", "\n").split("\n\n")]
    return "\n".join(f"<p>{b.replace(chr(10), '<br>' + chr(10))}</p>" for b in blocks if b.strip())


def render(*, subject: str, body: str, context: dict[str, Any]) -> Rendered:
    """Subject, plain-text body and HTML body for one patron; ValueError naming the part on bad templates."""
    subject_text = " ".join(_render(_TEXT, subject, context, part="Subject").split())
    text = _render(_TEXT, body, context, part="Body")
    body_html = _paragraphs(_render(_HTML, body, context, part="Body"))
    url = html.escape(str(context.get("preferences_url", "")), quote=True)
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        f"{body_html}\n"
        f'<hr><p style="font-size:small"><a href="{url}">Change what you receive or unsubscribe</a></p>\n'
        "</body></html>\n"
    )
    footer = f"\n\n--\nChange what you receive or unsubscribe: {context.get('preferences_url', '')}\n"
    return Rendered(subject=subject_text, text=text.rstrip() + footer, html=page)


def check(*, subject: str, body: str) -> None:
    """Raise ValueError if the templates do not parse or use a field that does not exist."""
    if not subject.strip():
        raise ValueError("Subject: write a subject.")
    if not body.strip():
        raise ValueError("Body: write the message.")
    render(subject=subject, body=body, context=SAMPLE_CONTEXT)


def _long_date(value: date | None) -> str:
    return f"{value.day} {value:%B %Y}" if value else ""


def contexts(session: Session, patron_ids: list[int], *, preference_url: Any) -> dict[int, dict[str, Any]]:
    """Merge fields for each patron; `preference_url(patron_id)` gives their signed link."""
    if not patron_ids:
        return {}
    rows = session.execute(
        select(Patron.id, Patron.first_name, Patron.expires_on, Patron.patron_type, Branch.name)
        .outerjoin(Branch, Branch.id == Patron.branch_id)
        .where(Patron.id.in_(patron_ids))
    )
    return {
        pid: {
            "first_name": first or "",
            "branch": branch or "",
            "card_expires": _long_date(expires),
            "patron_type": ptype or "",
            "preferences_url": preference_url(pid),
        }
        for pid, first, expires, ptype, branch in rows
    }

