"""The public survey page: plain escaped HTML, no script, big targets for a phone; works without JavaScript."""

from __future__ import annotations

from html import escape
from typing import Any

from crmcore.languages import catalogues
from crmcore.languages.catalogues import gettext
from crmcore.surveys.responses import Form
from crmcore.web.pages import language_field, shell

FORM_STYLE = (
    "fieldset{border:1px solid #ccc;border-radius:.5rem;margin:0 0 1rem;padding:.75rem}legend{font-weight:600;padding:0 .25rem}"
    ".scale{display:flex;flex-wrap:wrap;gap:.25rem}.scale label{display:inline-flex;flex-direction:column;align-items:center;min-width:2.6rem;"
    "padding:.35rem;border:1px solid #bbb;border-radius:.4rem}label.opt{display:block;padding:.4rem 0}input[type=radio],input[type=checkbox]"
    "{width:1.3rem;height:1.3rem}textarea{width:100%;box-sizing:border-box;font-size:1rem}.error{color:#a00;font-weight:600}.ends{display:flex;"
    "justify-content:space-between;font-size:.85rem;color:#555}"
)


def _attr(value: Any) -> str:
    return escape(str(value), quote=True)


def _question(n: int, item: dict[str, Any], answer: Any, text: str, language: str) -> str:
    key, kind = item["key"], item["type"]
    required = " <small>" + escape(gettext(language, "(required)")) + "</small>" if item.get("required") else ""
    legend = f"<legend>{n}. {escape(item['text'])}{required}</legend>"
    if kind in ("nps", "rating"):
        low, high = (0, 10) if kind == "nps" else (1, 5)
        boxes = "".join(
            f'<label><input type="radio" name="{_attr(key)}" value="{i}"{" checked" if answer == i else ""}>{i}</label>' for i in range(low, high + 1)
        )
        low_end, high_end = escape(gettext(language, "Not at all likely")), escape(gettext(language, "Extremely likely"))
        ends = f'<div class="ends"><span>{low_end}</span><span>{high_end}</span></div>' if kind == "nps" else ""
        return f'<fieldset>{legend}<div class="scale">{boxes}</div>{ends}</fieldset>'
    if kind in ("single", "multiple"):
        chosen = answer if isinstance(answer, list) else [answer]
        kind_input = "radio" if kind == "single" else "checkbox"
        options = "".join(
            f'<label class="opt"><input type="{kind_input}" name="{_attr(key)}" value="{_attr(c)}"{" checked" if c in chosen else ""}> {escape(c)}</label>'
            for c in item["choices"]
        )
        return f"<fieldset>{legend}{options}</fieldset>"
    if kind == "contact":
        options = "".join(
            f'<label class="opt"><input type="radio" name="{_attr(key)}" value="{v}"{" checked" if answer is flag else ""}> {escape(label)}</label>'
            for v, flag, label in (("yes", True, gettext(language, "Yes, please contact me")), ("no", False, gettext(language, "No, thank you")))
        )
        return f"<fieldset>{legend}{options}</fieldset>"
    return f'<fieldset>{legend}<textarea name="{_attr(key)}" rows="3" maxlength="1000" aria-label="{_attr(item["text"])}">{escape(text)}</textarea></fieldset>'


def page(form: Form, *, action: str, error: str = "", notice: str = "", footer: list[str] = (), language: str = catalogues.DEFAULT) -> str:
    """The survey as a form posting back to `action`, with any earlier answers checked; its fixed words in
    `language` (the survey's own title, introduction and questions as staff wrote them); `error` and `notice`
    come translated."""
    parts = []
    if notice:
        parts.append(f"<p><strong>{escape(notice)}</strong></p>")
    if error:
        parts.append(f'<p class="error" role="alert">{escape(error)}</p>')
    if form.intro:
        parts.append("".join(f"<p>{escape(p)}</p>" for p in form.intro.split("\n\n") if p.strip()))
    if form.answered:
        parts.append("<p>" + escape(gettext(language, "You have answered already: change anything below and send again while the survey is open.")) + "</p>")
    fields = "".join(_question(n, item, form.answers.get(item["key"]), form.texts.get(item["key"], ""), language)
                     for n, item in enumerate(form.questions, start=1))
    button = gettext(language, "Save my answers") if form.answered else gettext(language, "Send my answers")
    parts.append(
        f'<form method="post" action="{_attr(action)}" accept-charset="utf-8"><input type="hidden" name="form" value="{_attr(form.form_token)}">'
        f'{language_field(language)}{fields}<button type="submit">{escape(button)}</button></form>'
    )
    return shell(form.title, "".join(parts), language=language, switch=action, footer=footer, style=FORM_STYLE)
