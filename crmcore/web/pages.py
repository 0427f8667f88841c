"""The few small HTML pages the public routes answer with: plain, escaped, no script, nothing from elsewhere."""

from __future__ import annotations

from html import escape

from crmcore.languages import catalogues
from crmcore.languages.catalogues import N_, gettext

STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}button{font-size:1rem;padding:.5rem 1rem}"
         "nav{font-size:.9rem;text-align:right}nav a{margin-left:.75rem}")


def shell(title: str, body: str, *, language: str = catalogues.DEFAULT, switch: str | None = None, footer: list[str] = (), style: str = "") -> str:
    """The one page shell of every public page: `<html lang>`, the title as heading, `body` (HTML the caller built
    from constants and escaped values), `footer` lines (the library's name and postal address) below a rule;
    `switch`: this page's path, for plain links to it in every other language the pages speak (no script)."""
    nav = ""
    if switch is not None:
        links = [f'<a href="{escape(switch, quote=True)}?lang={code}" hreflang="{code}" lang="{code}">{escape(name)}</a>'
                 for code, name in catalogues.names().items() if code != language]
        label = catalogues.gettext(language, "Language")
        nav = f'<nav aria-label="{escape(label, quote=True)}">{"".join(links)}</nav>'
    if footer:
        body += "<hr><footer><small>" + "<br>".join(escape(line) for line in footer) + "</small></footer>"
    return (
        f'<!doctype html><html lang="{escape(language, quote=True)}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}{style}</style></head><body>{nav}<h1>{escape(title)}</h1>{body}</body></html>"
    )


def escaped(language: str, texts: dict[str, str]) -> dict[str, str]:
    """A form's fixed words (marked N_), each in `language` and escaped for HTML, by the name the form uses."""
    return {key: escape(gettext(language, text)) for key, text in texts.items()}


def language_field(language: str) -> str:
    """The hidden field that keeps a form's answer in the language it was shown in."""
    return f'<input type="hidden" name="lang" value="{escape(language, quote=True)}">'


def page(title: str, *paragraphs: str, form: tuple[str, dict[str, str], str] | None = None, footer: list[str] = (), language: str = catalogues.DEFAULT,
         switch: str | None = None, fields_form: tuple[str, str] | None = None) -> str:
    """A page of escaped text in `language` (the words already translated); `form` = (action path, hidden fields,
    button label) posts back with one button; `fields_form` = (action path, its fields' HTML, built from constants
    and escaped values by the area that owns the form: the sign-up); `footer` and `switch` as `shell`."""
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    if fields_form:
        action, fields = fields_form
        body += f'<form method="post" action="{escape(action, quote=True)}" accept-charset="utf-8">{fields}</form>'
    if form:
        action, fields, label = form
        hidden = "".join(f'<input type="hidden" name="{escape(k, quote=True)}" value="{escape(v, quote=True)}">' for k, v in fields.items())
        body += f'<form method="post" action="{escape(action, quote=True)}">{hidden}<button type="submit">{escape(label)}</button></form>'
    return shell(title, body, language=language, switch=switch, footer=footer)


REQUEST_TITLE = N_("Ask the library")


def request_form(*, topics: list[tuple[int, str]], token: str, values: dict[str, str] | None = None, error: str | None = None, footer: list[str] = (),
                 language: str = catalogues.DEFAULT) -> str:
    """The public request form (name, e-mail, topic, message) in `language` with its signed token and a honeypot
    field that people never see; `values` refill it after an error, all escaped (topics are named as staff wrote them)."""
    words = escaped(language, {
        "choose": N_("Choose…"),
        "intro": N_("Ask the library anything: we answer by e-mail, usually within two working days."),
        "name": N_("Your name"),
        "email": N_("Your e-mail address"),
        "topic": N_("Topic"),
        "message": N_("Your message"),
        "honeypot": N_("Leave this empty"),
        "send": N_("Send"),
    })
    values = values or {}

    def value(name: str) -> str:
        return escape(values.get(name, ""), quote=True)

    options = f'<option value="">{words["choose"]}</option>' + "".join(
        f'<option value="{tid}"{" selected" if str(tid) == values.get("topic") else ""}>{escape(name)}</option>' for tid, name in topics
    )
    body = (
        (f'<p role="alert"><strong>{escape(error)}</strong></p>' if error else "")
        + f'<p>{words["intro"]}</p>'
        + '<form method="post" action="/request" accept-charset="utf-8">'
        + f'<input type="hidden" name="token" value="{escape(token, quote=True)}">{language_field(language)}'
        + f'<p><label for="name">{words["name"]}</label><br><input id="name" name="name" maxlength="200" autocomplete="name" value="{value("name")}"></p>'
        + f'<p><label for="email">{words["email"]}</label><br><input id="email" name="email" type="email" required maxlength="254" autocomplete="email" value="{value("email")}"></p>'
        + f'<p><label for="topic">{words["topic"]}</label><br><select id="topic" name="topic">{options}</select></p>'
        + f'<p><label for="message">{words["message"]}</label><br><textarea id="message" name="message" rows="8" cols="40" required maxlength="5000">{escape(values.get("message", ""))}</textarea></p>'
        + f'<p style="position:absolute;left:-10000px" aria-hidden="true"><label for="website">{words["honeypot"]}</label><input id="website" name="website" tabindex="-1" autocomplete="off"></p>'
        + f'<button type="submit">{words["send"]}</button></form>'
    )
    return shell(gettext(language, REQUEST_TITLE), body, language=language, switch="/request", footer=footer, style="input,select,textarea{font:inherit;width:100%}")
