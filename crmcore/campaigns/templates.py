"""Campaign subjects and bodies: sandboxed Jinja templates with merge fields, rendered to text and HTML.

Staff write plain text with merge fields such as {{ first_name }}. The text part is that, rendered. The
HTML part escapes everything, the merge values (autoescape) and the staff's own words alike, so no
patron name or imported value can ever become markup.
"""

from __future__ import annotations

import base64
import contextvars
import html
import time
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from jinja2.runtime import Macro
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from sqlalchemy import select
from sqlmodel import Session

from crmcore.models import Branch, Patron
from crmcore.recommendations import block

# Limits: a template is filled in once per recipient, so one must stay cheap whatever staff type.
MAX_SUBJECT_CHARS = 300  # the column's size
MAX_BODY_CHARS = 20_000
MAX_RANGE = 1_000  # items in one range()
MAX_LOOP_STEPS = 10_000  # rounds of every loop in all, per part of one message
MAX_OUTPUT_CHARS = 200_000  # per part of one message, and for any value built on the way
MAX_MACRO_DEPTH = 20
MAX_NUMBER_ARGUMENT = 10_000  # widths, lengths and counts given to filters and methods
SECONDS_PER_MESSAGE = 0.2  # per part of one message
_CHECK_EVERY = 64  # output chunks between two looks at the clock

# name -> what it holds (shown to staff next to the editor).
MERGE_FIELDS = {
    "first_name": "the patron's first name (empty if unknown)",
    "branch": "the name of the patron's home branch",
    "card_expires": "the card's expiry date, e.g. 31 March 2027 (empty if unknown)",
    "patron_type": "the patron type from the ILS, e.g. adult",
    "preferences_url": "the patron's own link to change what they receive",
    "library_name": "the library's name (Administration → Settings)",
    "survey_link": "the patron's own link to the campaign's survey (choose the survey with the campaign)",
    "recommendations": "new items the patron may like, each with why (on a line of its own)",
}

# Not merge fields staff type, but in every context: what `render` puts at the top and foot of every message.
BRANDING_FIELDS = ("library_name", "library_address", "library_logo_url")

SAMPLE_CONTEXT = {
    "first_name": "Alex",
    "branch": "Central Library",
    "card_expires": "31 March 2027",
    "patron_type": "adult",
    "preferences_url": "https://library.example/preferences?token=sample",
    "library_name": "Central Library",
    "survey_link": "https://library.example/survey/sample",
    "library_address": "1 Main Street\nSpringfield 12345",
    "library_logo_url": "",
    "recommendations": block.SAMPLE,
}


class _EscapeLiteralText(Extension):
    """Escapes the template's own text (autoescape only escapes the values of expressions)."""

    def filter_stream(self, stream: TokenStream):
        for token in stream:
            if token.type == "data":
                yield Token(token.lineno, "data", html.escape(token.value, quote=False))
            else:
                yield token


class _Limit(SecurityError):
    """A template went past one of the limits; the message says which, for staff."""


@dataclass
class _Budget:
    """What one part of one message may still spend: time, loop steps, macro depth."""

    deadline: float
    steps: int = MAX_LOOP_STEPS
    depth: int = 0
    chunks: int = field(default=0)

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Limit(f"the template takes too long to fill in (more than {SECONDS_PER_MESSAGE:g} s for one message); make it simpler")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:  # rendered outside `_render` (should not happen): the tightest budget
        budget = _Budget(deadline=time.monotonic() + SECONDS_PER_MESSAGE)
        _BUDGET.set(budget)
    return budget


def _weight(value: Any, cap: int = MAX_OUTPUT_CHARS) -> int:
    """Characters and items in `value`, lists and dicts counted with what they hold; stops counting past `cap`."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        value = [*value.keys(), *value.values()]
    if not isinstance(value, (list, tuple)):
        return 1
    total = 0
    for item in value:
        total += 1 + _weight(item, cap - total)
        if total > cap:
            break
    return total


def _sized(value: Any) -> Any:
    if isinstance(value, (str, list, tuple, dict)) and _weight(value) > MAX_OUTPUT_CHARS:
        raise _Limit(f"the template builds a value of more than {MAX_OUTPUT_CHARS:,} characters or items")
    return value


def _numbers_checked(args: tuple, kwargs: dict) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, (str, list, tuple)) and len(value) > MAX_OUTPUT_CHARS:
            raise _Limit(f"the template builds a value of more than {MAX_OUTPUT_CHARS:,} characters or items")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > MAX_NUMBER_ARGUMENT:
            raise _Limit(f"a number given to a filter or method is {value:,}; at most {MAX_NUMBER_ARGUMENT:,}")


def _range(*args: int) -> range:
    """range() with at most MAX_RANGE items."""
    items = range(*args)
    if len(items) > MAX_RANGE:
        raise _Limit(f"a loop over {len(items):,} items; at most {MAX_RANGE:,}")
    return items


def _rounds(items: Any):
    """What every {% for %} goes round (put there by `_compiled`): each round counted against the message's
    loop steps, the clock read every hundred."""
    budget = _budget()
    for item in items:
        budget.steps -= 1
        if budget.steps < 0:
            raise _Limit(f"the loops go round more than {MAX_LOOP_STEPS:,} times in all; at most {MAX_LOOP_STEPS:,}")
        if budget.steps % 100 == 0:
            budget.tick()
        yield item


def _filter(name: str, function):
    """A filter with its numbers, its inputs and its result kept within the limits."""

    passes = 1 if hasattr(function, "jinja_pass_arg") else 0  # Jinja's context, eval context or environment first

    def checked(*all_args, **kwargs):
        _budget().tick()
        passed, args = all_args[:passes], all_args[passes:]
        _numbers_checked(args, kwargs)
        if name == "replace" and len(args) >= 3 and isinstance(args[0], str):
            grows = (args[0].count(str(args[1])) if args[1] else len(args[0]) + 1) * len(str(args[2]))
            if len(args[0]) + grows > MAX_OUTPUT_CHARS:
                raise _Limit(f"the replace filter would build more than {MAX_OUTPUT_CHARS:,} characters")
        if name == "join" and len(args) >= 2:
            sep = args[1] if isinstance(args[1], str) else ""
            items = list(args[0])
            if sum(len(str(i)) for i in items) + len(sep) * len(items) > MAX_OUTPUT_CHARS:
                raise _Limit(f"the join filter would build more than {MAX_OUTPUT_CHARS:,} characters")
            args = (items, *args[1:])
        return _sized(function(*passed, *args, **kwargs))

    for attr in ("jinja_pass_arg",):  # keep the context/environment passing marks of Jinja's own filters
        if hasattr(function, attr):
            setattr(checked, attr, getattr(function, attr))
    return checked


# Filters a merge template has use for. Not `safe` (it would let a value become markup), not `format`,
# `center`, `indent` or `wordwrap` (widths make huge strings), nothing random or reaching for attributes.
_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "float", "int", "join", "last", "length", "list",
    "lower", "max", "min", "replace", "reverse", "round", "sort", "striptags", "sum", "title", "trim", "truncate",
    "unique", "upper", "wordcount",
)
# Methods of strings a template may call (str.format and the padding methods are left out: widths; replace
# too: the filter of that name checks what it builds).
_STR_METHODS = frozenset(
    ("capitalize", "casefold", "count", "endswith", "find", "isalpha", "isdigit", "isspace", "lower", "lstrip",
     "rstrip", "split", "startswith", "strip", "title", "upper")
)


class _LimitedEnvironment(SandboxedEnvironment):
    """Jinja's sandbox with limits on loops, sizes, time and recursion, and without a loader: a message
    template is one text, `{% include %}`, `{% import %}` and `{% extends %}` have nothing to reach."""

    intercepted_binops = frozenset(("*", "+", "**", "%"))

    def __init__(self, **options: Any):
        super().__init__(undefined=StrictUndefined, finalize=_shown, **options)
        self.globals = {"range": _range, "dict": dict, "_rounds": _rounds}
        self.filters = {name: _filter(name, self.filters[name]) for name in _FILTERS}
        self.tests = dict(self.tests)

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        _budget().tick()
        if operator == "%" and isinstance(left, str):
            raise _Limit("formatting a string with % is not available in templates")
        if operator == "**" and isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right * max(1, abs(left).bit_length()) > 4_096:
            raise _Limit(f"{left} ** {right} is too large a number")
        if operator == "*":
            seq, times = (left, right) if isinstance(left, (str, list, tuple)) else (right, left)
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and _weight(seq) * times > MAX_OUTPUT_CHARS:
                raise _Limit(f"the template repeats a text or list to more than {MAX_OUTPUT_CHARS:,} characters or items")
        return _sized(super().call_binop(context, operator, left, right))

    def call(__self, __context, __obj, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's own signature)
        budget = _budget()
        budget.tick()
        if __obj is not _range:
            _numbers_checked(args, kwargs)
        if isinstance(__obj, Macro):
            if budget.depth >= MAX_MACRO_DEPTH:
                raise _Limit(f"a macro calls itself (or others) more than {MAX_MACRO_DEPTH} deep")
            budget.depth += 1
            try:
                return _sized(super().call(__context, __obj, *args, **kwargs))
            finally:
                budget.depth -= 1
        return _sized(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _budget().tick()
        _str_method_allowed(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _budget().tick()
        _str_method_allowed(obj, argument)
        return super().getitem(obj, argument)


def _shown(value: Any) -> Any:
    """What an expression puts in the message: text and numbers, never a whole list or dict (whose text could
    be far larger than what the list holds)."""
    if isinstance(value, (list, tuple, dict, set)):
        raise _Limit("a whole list cannot be put in a message; loop over it or join it")
    return value


def _str_method_allowed(obj: Any, name: Any) -> None:
    if isinstance(obj, str) and isinstance(name, str) and not name.startswith("_") and name not in _STR_METHODS:
        raise _Limit(f"the string method {name}() is not available in templates")


_TEXT = _LimitedEnvironment(autoescape=False, keep_trailing_newline=False)
_HTML = _LimitedEnvironment(autoescape=True, extensions=[_EscapeLiteralText])

_NO_LOADER = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from … import %}",
    nodes.Extends: "{% extends %}",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=64)
def _compiled(html_part: bool, source: str):
    # A campaign renders the same two templates for every recipient: compile them once.
    env = _HTML if html_part else _TEXT
    tree = env.parse(source)
    for kind, label in _NO_LOADER.items():
        for node in tree.find_all(kind):
            raise TemplateSyntaxError(f"{label} is not available: a message is one template, there are no other files to use", node.lineno)
    for loop in tree.find_all(nodes.For):  # every loop's rounds are counted, whatever it goes over
        loop.iter = nodes.Call(nodes.Name("_rounds", "load"), [loop.iter], [], None, None, lineno=loop.lineno)
    return env.from_string(tree)


def _line(exc: BaseException) -> int | None:
    """The template line an error happened on (Jinja rewrites tracebacks to show template lines)."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _where(part: str, exc: BaseException) -> str:
    line = _line(exc)
    return f"{part}, line {line}" if line else part


def _render(env: SandboxedEnvironment, source: str, context: dict[str, Any], *, part: str) -> str:
    token = _BUDGET.set(None)
    try:
        template = _compiled(env is _HTML, source)  # before the clock starts: compiling (once per template and process) is not filling in
        budget, chunks, size = _Budget(deadline=time.monotonic() + SECONDS_PER_MESSAGE), [], 0
        _BUDGET.set(budget)
        for chunk in template.generate(**context):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise _Limit(f"the message would be more than {MAX_OUTPUT_CHARS:,} characters long")
            budget.chunks += 1
            if budget.chunks % _CHECK_EVERY == 0:
                budget.tick()
        budget.tick()
        return "".join(chunks)
    except TemplateSyntaxError as exc:
        raise ValueError(f"{part}, line {exc.lineno}: {(exc.message or '').rstrip('.')}.") from None
    except UndefinedError as exc:
        fields = ", ".join(MERGE_FIELDS)
        raise ValueError(f"{_where(part, exc)}: {exc.message}. The merge fields are: {fields}.") from None
    except _Limit as exc:
        raise ValueError(f"{_where(part, exc)}: {str(exc).rstrip('.')}.") from None
    except SecurityError as exc:
        raise ValueError(f"{_where(part, exc)}: the template tries something templates may not do (only merge fields and simple logic).") from None
    except TemplateError as exc:
        raise ValueError(f"{_where(part, exc)}: {str(exc).rstrip('.')}.") from None
    except RecursionError:
        raise ValueError(f"{part}: a macro calls itself without end.") from None
    except ZeroDivisionError as exc:
        raise ValueError(f"{_where(part, exc)}: division by zero with this patron's details.") from None
    except MemoryError:
        raise ValueError(f"{part}: the template builds something far too large.") from None
    except Exception as exc:  # any other runtime error of a template is the template's, not Liaison's
        raise ValueError(f"{_where(part, exc)}: the template failed with this patron's details ({type(exc).__name__}: {exc}).") from None
    finally:
        _BUDGET.reset(token)


def _paragraphs(escaped: str) -> str:
    # A paragraph that is only the recommendations list stays a list (everything else in `escaped` is escaped:
    # the list is the only markup a body can hold).
    blocks = [b.strip("\n") for b in escaped.replace("\r\n", "\n").split("\n\n")]
    return "\n".join(
        b.strip() if b.strip().startswith(block.HTML_START) and b.strip().endswith("</ul>") else f"<p>{b.replace(chr(10), '<br>' + chr(10))}</p>"
        for b in blocks
        if b.strip()
    )


def render(*, subject: str, body: str, context: dict[str, Any]) -> Rendered:
    """Subject, plain-text body and HTML body for one patron; ValueError naming the part on bad templates."""
    subject_text = " ".join(_render(_TEXT, subject, context, part="Subject").split())
    text = _render(_TEXT, body, context, part="Body")
    body_html = _paragraphs(_render(_HTML, body, context, part="Body"))
    url = html.escape(str(context.get("preferences_url", "")), quote=True)
    name, address = str(context.get("library_name") or ""), str(context.get("library_address") or "")
    logo = str(context.get("library_logo_url") or "")
    top = ""
    if logo:
        top = f'<p><img src="{html.escape(logo, quote=True)}" alt="{html.escape(name, quote=True)}" style="max-height:80px;max-width:100%"></p>\n'
    elif name:
        top = f'<p style="font-size:large"><strong>{html.escape(name)}</strong></p>\n'
    signed = "<br>\n".join(html.escape(line) for line in [name, *address.splitlines()] if line)
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        f"{top}{body_html}\n<hr>\n"
        + (f'<p style="font-size:small">{signed}</p>\n' if signed else "")
        + f'<p style="font-size:small"><a href="{url}">Change what you receive or unsubscribe</a></p>\n'
        "</body></html>\n"
    )
    postal = "".join(f"{line}\n" for line in [name, *address.splitlines()] if line)
    footer = f"\n\n--\n{postal}Change what you receive or unsubscribe: {context.get('preferences_url', '')}\n"
    return Rendered(subject=subject_text, text=text.rstrip() + footer, html=page)


def render_text(*, body: str, context: dict[str, Any]) -> str:
    """The body alone as plain text (a text message: no subject, no mail footer); ValueError as `render`."""
    return _render(_TEXT, body, context, part="Message").strip()


def check(*, subject: str, body: str) -> None:
    """Raise ValueError if the templates do not parse, use a field that does not exist, or go past a limit
    with the sample patron. Call it outside any write transaction: it may take up to a few tenths of a second."""
    if not subject.strip():
        raise ValueError("Subject: write a subject.")
    if not body.strip():
        raise ValueError("Body: write the message.")
    if len(subject) > MAX_SUBJECT_CHARS:
        raise ValueError(f"Subject: {len(subject):,} characters; at most {MAX_SUBJECT_CHARS:,}.")
    if len(body) > MAX_BODY_CHARS:
        raise ValueError(f"Body: {len(body):,} characters; at most {MAX_BODY_CHARS:,}.")
    _checked(subject, body)


@lru_cache(maxsize=256)
def _checked(subject: str, body: str) -> None:
    # Only a pass is remembered (an error is raised, not cached): a launch right after its plan renders nothing.
    render(subject=subject, body=body, context=SAMPLE_CONTEXT)


# What a preview frame may do: show the message's own markup and inline styles, images only from data:
# addresses, nothing else (no script, no form, no request to any server, this one or another).
PREVIEW_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'"


def insert_field(text: str, name: str) -> str:
    """`text` with the merge field `name` appended (Streamlit's editor reports no cursor position): on the
    same line after a space, or at the start of a new line when the text ends with one."""
    if name not in MERGE_FIELDS:
        raise ValueError(f"There is no merge field {name!r}; the fields are: {', '.join(MERGE_FIELDS)}.")
    field_text = f"{{{{ {name} }}}}"
    if not text or text.endswith(("\n", " ")):
        return text + field_text
    return f"{text} {field_text}"


def preview_address(page: str) -> str:
    """A message's HTML part as a data: address for a preview frame, as a mail client would show it. The
    part is escaped already (`render`: staff text and merge values alike); the frame's own policy on top
    forbids scripts and any request, and a data: address gives it an origin of its own, not the app's."""
    policy = f'<meta http-equiv="Content-Security-Policy" content="{PREVIEW_POLICY}">'
    head = page.find("<head>")
    document = page[: head + 6] + policy + page[head + 6 :] if head >= 0 else policy + page
    return "data:text/html;charset=utf-8;base64," + base64.b64encode(document.encode("utf-8")).decode("ascii")


def _long_date(value: date | None) -> str:
    return f"{value.day} {value:%B %Y}" if value else ""


def contexts(session: Session, patron_ids: list[int], *, preference_url: Any, branding: dict[str, str] | None = None) -> dict[int, dict[str, Any]]:
    """Merge fields for each patron; `preference_url(patron_id)` gives their signed link; `branding` the
    BRANDING_FIELDS every message carries."""
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
            "survey_link": "",  # filled in by `with_survey_links` when the campaign (or journey step) names a survey
            **dict.fromkeys(BRANDING_FIELDS, ""),
            **(branding or {}),
            "recommendations": block.EMPTY,  # filled in per campaign (sending.with_recommendations)
        }
        for pid, first, expires, ptype, branch in rows
    }



def uses_survey_link(*parts: str) -> bool:
    """Whether a message's templates use the merge field {{ survey_link }}."""
    return any("survey_link" in (part or "") for part in parts)
