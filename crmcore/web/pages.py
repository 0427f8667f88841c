"""The few small HTML pages the public routes answer with: plain, escaped, no script, nothing from elsewhere."""

from __future__ import annotations

from html import escape

STYLE = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.5rem 1rem}"


def page(title: str, *paragraphs: str, form: tuple[str, dict[str, str], str] | None = None, footer: list[str] = (), fields_form: tuple[str, str] | None = None) -> str:
    """A page of escaped text; `form` = (action path, hidden fields, button label) posts back with one button;
    `fields_form` = (action path, its fields' HTML, built from constants and escaped values by the area that owns
    the form: the sign-up); `footer` lines (the library's name and postal address) below a rule."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    if fields_form:
        action, fields = fields_form
        body += f'<form method="post" action="{escape(action, quote=True)}" accept-charset="utf-8">{fields}</form>'
    if form:
        action, fields, label = form
        hidden = "".join(f'<input type="hidden" name="{escape(k, quote=True)}" value="{escape(v, quote=True)}">' for k, v in fields.items())
        body += f'<form method="post" action="{escape(action, quote=True)}">{hidden}<button type="submit">{escape(label)}</button></form>'
    if footer:
        body += "<hr><footer><small>" + "<br>".join(escape(line) for line in footer) + "</small></footer>"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )

