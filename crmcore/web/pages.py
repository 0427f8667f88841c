"""The few small HTML pages the public routes answer with: plain, escaped, no script, nothing from elsewhere."""

from __future__ import annotations

from html import escape

from crmcore.languages import catalogues

STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.5rem 1rem}"
         "nav{font-size:.9rem;text-align:right}nav a{margin-left:.75rem}")


def page(title: str, *paragraphs: str, form: tuple[str, dict[str, str], str] | None = None, footer: list[str] = (), language: str = catalogues.DEFAULT,
         switch: str | None = None) -> str:
    """A page of escaped text in `language` (the words already translated); `form` = (action path, hidden fields,
    button label) posts back with one button; `footer` lines (the library's name and postal address) below a rule;
    `switch`: this page's path, for links to it in every other language the pages speak (plain links, no script)."""
    nav = ""
    if switch is not None:
        links = [f'<a href="{escape(switch, quote=True)}?lang={code}" hreflang="{code}" lang="{code}">{escape(name)}</a>'
                 for code, name in catalogues.names().items() if code != language]
        label = catalogues.gettext(language, "Language")
        nav = f'<nav aria-label="{escape(label, quote=True)}">{"".join(links)}</nav>'
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    if form:
        action, fields, label = form
        hidden = "".join(f'<input type="hidden" name="{escape(k, quote=True)}" value="{escape(v, quote=True)}">' for k, v in fields.items())
        body += f'<form method="post" action="{escape(action, quote=True)}">{hidden}<button type="submit">{escape(label)}</button></form>'
    if footer:
        body += "<hr><footer><small>" + "<br>".join(escape(line) for line in footer) + "</small></footer>"
    return (
        f'<!doctype html><html lang="{escape(language, quote=True)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{nav}<h1>{escape(title)}</h1>{body}</body></html>"
    )
