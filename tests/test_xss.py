"""Hostile text in every user- and import-supplied field renders inert on every page, and downloads are safe.

A corpus of payloads (script tags, event handlers, javascript: URLs, markdown links and images, HTML
entities, markdown formatting, spreadsheet formulas) is written into every free-text field; every page
is rendered for an admin (who sees the most). In anything Streamlit renders as markdown (markdown,
captions, titles, headers, alerts, metric/widget/tab/expander labels, radio options) no payload may
appear unescaped; no `unsafe_allow_html` element may hold one. st.dataframe, st.text and st.code show
text as text and are safe. Every CSV/XLSX download neutralises formula cells.
"""

from __future__ import annotations

import ast
import csv
import io
import re
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

import ui
from crmcore import exports
from crmcore.models import (
    ActivityEvent,
    Branch,
    Campaign,
    Contact,
    ImportMapping,
    ImportRun,
    Interaction,
    InteractionContact,
    InteractionOrganization,
    InteractionTag,
    Organization,
    OrganizationTag,
    Patron,
    ProgramEvent,
    Segment,
    StaffUser,
    Tag,
    Task,
    Zone,
)
from crmcore.privacy import audit
from tests.test_security_roles import downloads  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent

PAYLOADS = [
    "<script>alert('xss1')</script>",
    "<img src=x onerror=alert('xss2')>",
    "<a href=\"javascript:alert('xss3')\">xss3</a>",
    "[xss4 link](javascript:alert('xss4'))",
    "![xss5](https://evil.test/xss5.png)",
    "&lt;script&gt;alert('xss6')&lt;/script&gt; &#60;b&#62;xss6",
    "<svg onload=alert('xss7')>",
    "**xss8 bold** _em_ `code` <b>xss8</b>",
    "[xss10](http://evil.example)",  # Streamlit links the bare address inside even when the brackets are escaped
    "xss11 at http://evil.example/x, www.evil.example or xss11@evil.example",
]
FORMULAS = ['=HYPERLINK("http://evil.test","fx1")', "+fx2+1", "-fx3-1", "@SUM(fx4)", "\tfx5", "\rfx6"]
# Raw (unescaped) forms that must never reach markdown: an HTML tag, an entity, a link or image, formatting.
DANGEROUS = [
    re.compile(r"(?<!\\)<\s*/?\s*(script|img|svg|a|b)\b", re.I),
    re.compile(r"(?<!\\)&(lt|gt|#\d+);"),
    re.compile(r"(?<!\\)\]\((?i:javascript|https?):"),
    re.compile(r"(?<!\\)!\[xss"),
    re.compile(r"(?<!\\)\*\*xss8"),
    # Bare addresses GitHub-flavoured markdown links by itself, after reading escapes (so a backslash
    # cannot stop it and shows inside the link): only a word joiner breaking the pattern does.
    re.compile(r"(?i)\b(https?|ftp)\\?:(\\?/){2}"),
    re.compile(r"(?i)\bwww\\?\."),
    re.compile(r"[\w.+-]\\?@[\w-]"),
]


def hostile(i: int, limit: int = 120) -> str:
    """The i-th payload (cycling), cut to a column's length."""
    return PAYLOADS[i % len(PAYLOADS)][:limit]


def seed_hostile_text(db, staff) -> None:
    """Every free-text field a user or an import fills, holding payloads (some fields hold formulas)."""
    n = iter(range(10_000))
    with db.write() as s:
        branch = Branch(code="XSS", name=hostile(next(n)))
        zone = Zone(code="X1", name=hostile(next(n)), population=1000)
        s.add_all([branch, zone])
        s.flush()
        for i in range(12):  # more than k patrons, so grouped figures are shown, not suppressed
            p = Patron(
                ils_id=f"XSS-{i}", first_name=hostile(next(n)), last_name=FORMULAS[i % len(FORMULAS)] if i % 3 == 0 else hostile(next(n)),
                patron_type=hostile(next(n), 40), age_band="18-24", interests=hostile(next(n), 500), zone_id=zone.id, branch_id=branch.id,
                registered_on=date.today() - timedelta(days=400), last_activity_on=date.today() - timedelta(days=3), first_activity_on=date.today() - timedelta(days=300),
            )  # fmt: skip
            s.add(p)
            s.flush()
            s.add(ActivityEvent(patron_id=p.id, occurred_on=date.today() - timedelta(days=3), kind="checkout", branch_id=branch.id, category=hostile(next(n), 80)))
        org = Organization(name=hostile(next(n)), sector=hostile(next(n), 60), notes=hostile(next(n)), address=FORMULAS[0], website="javascript:alert('xss9')", zone_id=zone.id)
        org2 = Organization(name=FORMULAS[1], notes=FORMULAS[2])
        s.add_all([org, org2])
        s.flush()
        contact = Contact(first_name=hostile(next(n)), last_name=hostile(next(n)), job_title=hostile(next(n)), notes=hostile(next(n)), organization_id=org.id)
        contact2 = Contact(first_name=FORMULAS[3], last_name=FORMULAS[0], organization_id=org2.id)
        s.add_all([contact, contact2])
        tag = Tag(name=hostile(next(n), 60))
        s.add(tag)
        s.flush()
        s.add(OrganizationTag(organization_id=org.id, tag_id=tag.id))
        for offset, notes in ((1, hostile(next(n))), (2, FORMULAS[4])):
            inter = Interaction(kind="meeting", staff_id=staff["admin"].id, notes=notes, outcome=hostile(next(n)), follow_up_on=date.today() + timedelta(days=offset), follow_up_assignee_id=staff["admin"].id)
            s.add(inter)
            s.flush()
            s.add_all([InteractionOrganization(interaction_id=inter.id, organization_id=org.id), InteractionContact(interaction_id=inter.id, contact_id=contact.id), InteractionTag(interaction_id=inter.id, tag_id=tag.id)])
        s.add(Task(title=hostile(next(n)), notes=hostile(next(n)), due_on=date.today(), assignee_id=staff["admin"].id, organization_id=org.id))
        s.add(Segment(name=hostile(next(n)), description=hostile(next(n)), rules={"all": []}))
        s.add(Campaign(name=hostile(next(n)), topic="events", subject_template=hostile(next(n)), body_template=hostile(next(n))))
        s.add(ProgramEvent(event_id="EV-XSS", title=hostile(next(n)), held_on=date.today() - timedelta(days=5), branch_id=branch.id, categories=hostile(next(n)), audiences=hostile(next(n))))
        s.add(ImportRun(kind="patrons", file_name=hostile(next(n)), file_hash="0" * 64, status="failed", error=hostile(next(n)), actor_id=staff["admin"].id))
        s.add(ImportMapping(kind="patrons", name=hostile(next(n)), mapping={}))
        for role in ("manager", "outreach", "viewer"):
            s.get(StaffUser, staff[role].id).display_name = hostile(next(n))
        audit.record(s, actor=None, action="login.failed", detail={"username": hostile(next(n), 80)})


MARKDOWN_TYPES = {"markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success", "toast", "exception"}


def markdown_strings(at) -> list[tuple[str, str, bool]]:
    """(element type, text rendered as markdown, allows HTML) for everything on the page."""
    found = []

    def walk(node):
        kind = getattr(node, "type", "")
        proto = getattr(node, "proto", None)
        if kind in MARKDOWN_TYPES and proto is not None:
            body = getattr(proto, "body", None) or getattr(node, "value", "")
            found.append((kind, str(body), bool(getattr(proto, "allow_html", False))))
        for attribute in ("label", "help"):
            value = getattr(node, attribute, None)
            if isinstance(value, str) and value:
                found.append((f"{kind}.{attribute}", value, False))
        if kind == "radio":
            found.extend(("radio.option", str(o), False) for o in node.options)
        if kind == "html" and proto is not None:
            found.append(("html", str(proto.body), True))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def plain_strings(at) -> list[tuple[str, str]]:
    """(element type, text) shown as plain text, never read as markdown: options of select boxes, st.text,
    metric values. An escaped payload here shows its backslashes."""
    found = []

    def walk(node):
        kind = getattr(node, "type", "")
        proto = getattr(node, "proto", None)
        if kind in ("selectbox", "multiselect", "select_slider") and proto is not None:
            found.extend((f"{kind}.option", str(o)) for o in proto.options)
        if kind == "text" and proto is not None:
            found.append((kind, str(proto.body)))
        if kind == "metric" and proto is not None:
            found.append(("metric.value", str(proto.body)))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


STRAY_BACKSLASH = re.compile(r"\\[!-/:-@\[-`{-~]")


def unsafe(text: str) -> list[str]:
    return [p.pattern for p in DANGEROUS if p.search(text)]


def formula_cells(payload: bytes) -> list[str]:
    """Cells of a CSV or XLSX download that hold one of our formulas without the neutralising apostrophe."""
    cells: list[str] = []
    if payload[:2] == b"PK":
        book = openpyxl.load_workbook(io.BytesIO(payload))
        cells = [str(c.value) for sheet in book for row in sheet.iter_rows() for c in row if isinstance(c.value, str)]
    else:
        try:
            text = payload.decode("utf-8-sig")
        except UnicodeDecodeError:
            return []
        if text.lstrip().startswith(("{", "[", "<")):
            return []  # JSON or HTML, not a spreadsheet
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    return [c for c in cells if "fx" in c and c.startswith(exports.FORMULA_STARTS)]


@pytest.mark.parametrize("spec", ui.PAGES, ids=[s.path for s in ui.PAGES])
def test_no_payload_reaches_markdown_unescaped_and_downloads_are_neutralised(app, db, staff, spec, downloads):  # noqa: F811
    seed_hostile_text(db, staff)
    at = app(role="admin", page=spec.path).run()
    assert not at.exception, [e.value for e in at.exception]
    problems = []
    for kind, text, allows_html in markdown_strings(at):
        if allows_html and "xss" in text:
            problems.append(f"{kind} with unsafe_allow_html holds user text: {text[:80]!r}")
        elif "xss" in text and unsafe(text):
            problems.append(f"{kind}: {unsafe(text)} in {text[:120]!r}")
    for kind, text in plain_strings(at):
        if "xss" in text and STRAY_BACKSLASH.search(text):
            problems.append(f"{kind} shows the backslashes of markdown escapes: {text[:120]!r}")
    assert problems == [], "\n".join(problems)
    assert [f for d in downloads for f in formula_cells(d)] == []


@pytest.mark.parametrize("text", [*PAYLOADS, "[link](http://evil.example)", "Friends of the Library #3 (est. 1998) - a_b & c!", "e-mail: info@friends.example"])
def test_escaped_text_reads_exactly_as_typed(text):
    """What markdown shows of ui.md(text) (each escape read, the invisible word joiners unseen) is the text
    itself: no stray backslash, nothing lost."""
    shown = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", ui.md(text)).replace(ui.WORD_JOINER, "")
    assert shown == text


def test_the_corpus_is_caught_when_not_escaped():
    """The check above can fail: every payload, raw, is unsafe; escaped by ui.md, it is not."""
    for payload in PAYLOADS:
        assert unsafe(payload), payload
        assert not unsafe(ui.md(payload)), payload


@pytest.mark.parametrize("value", FORMULAS)
def test_exports_neutralise_formula_cells_in_csv_and_xlsx(value):
    frame = pd.DataFrame({"name": [value, "plain", "x=1"], "count": [-3, 4, 5], value: ["a", "b", "c"]})
    # (the csv module hands back a CR inside a quoted cell as LF)
    csv_rows = [[c.replace("\n", "\r") for c in row] for row in csv.reader(io.StringIO(exports.to_csv(frame).decode("utf-8-sig"), newline=""))]
    assert len(csv_rows) == 4 and csv_rows[0][2] == "'" + value and csv_rows[1][0] == "'" + value and csv_rows[2][0] == "plain" and csv_rows[3][0] == "x=1"
    assert csv_rows[1][1] == "-3"  # numbers stay numbers
    sheet = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(frame))).active
    cell = lambda ref: sheet[ref].value.replace("\n", "\r")  # noqa: E731 - XLSX stores a CR as LF
    assert cell("A2") == "'" + value and sheet["A2"].data_type == "s" and cell("C1") == "'" + value
    assert sheet["B2"].value == -3


def test_unsafe_allow_html_and_st_html_never_take_user_data():
    """Only literal strings may be rendered as HTML anywhere in the UI code, but in ui.redirect, which admits
    only the session route in URL-safe characters (tested below)."""
    offenders = []
    for path in [ROOT / "app.py", *sorted((ROOT / "ui").glob("*.py")), *sorted((ROOT / "pages").glob("*.py"))]:
        tree = ast.parse(path.read_text())
        checked = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "redirect" and path.parent.name == "ui" for n in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in checked:
                continue
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            html_flag = any(k.arg == "unsafe_allow_html" and not (isinstance(k.value, ast.Constant) and k.value.value is False) for k in node.keywords)
            if html_flag or name.endswith(("st.html", "components.html", "components.v1.html")):
                if not all(isinstance(a, ast.Constant) for a in node.args):
                    offenders.append(f"{path.name}:{node.lineno} {ast.unparse(node)[:80]}")
    assert offenders == []


@pytest.mark.parametrize("target", ["/session/abc?next=%2Fx%3C%2Fscript%3E", "/session/abc?next="])
def test_the_one_redirect_takes_url_safe_session_addresses(target):
    ui.redirect(target)  # outside a running app st.html renders nothing: no error is what counts


@pytest.mark.parametrize("target", ["/session/abc?next=</script><script>alert(1)", "javascript:alert(1)", "https://evil.test/", "/session/a'b?next="])
def test_the_one_redirect_refuses_anything_else(target):
    with pytest.raises(ValueError, match="Not an address"):
        ui.redirect(target)


def test_a_line_break_inside_a_cell_cannot_start_a_row_with_a_formula():
    frame = pd.DataFrame({"notes": ["met at market\r=HYPERLINK(\"http://evil.test\")", "two\n+lines"], "n": [1, 2]})
    rows = list(csv.reader(io.StringIO(exports.to_csv(frame).decode("utf-8-sig"), newline="")))
    assert len(rows) == 3 and [r[1] for r in rows[1:]] == ["1", "2"]
    assert not any(cell.startswith(exports.FORMULA_STARTS) for row in rows for cell in row)


def test_an_opened_segment_named_with_a_link_shows_it_as_text(app, db, staff):
    """The segment's own heading (and its description) once it is opened from the list."""
    with db.write() as s:
        segment = Segment(name="[xss12](http://evil.example) Seniors", description="xss13 www.evil.example", rules={"all": []})
        s.add(segment)
        s.flush()
        segment_id = segment.id
    at = app(role="manager", page="pages/segments.py").run()
    at.selectbox(key="seg-pick").set_value(segment_id).run()
    at.button(key="seg-open").click().run()
    assert not at.exception
    texts = [(k, t) for k, t, _h in markdown_strings(at) if "xss12" in t or "xss13" in t]
    assert {k for k, _t in texts} >= {"subheader", "caption"}, texts
    assert [t for _k, t in texts if unsafe(t)] == []
