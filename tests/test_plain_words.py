"""Librarians read plain words: every page, for every role that reaches it, on the demo library (so tables
and charts have content), shows no snake_case word (a developer's name for a field, kind, topic or state)
in titles, headers, captions, markdown, alerts, labels, options, metrics, tabs, expanders, dataframe column
names, or chart titles and axis titles (in the Plotly figure and Vega-Lite specs).

Allowed only where the snake_case word is the point: merge fields shown as something to type.
"""

from __future__ import annotations

import json
import re

import pytest

import ui
from crmcore.admin.permissions import Role, allowed

SNAKE = re.compile(r"(?<![\w{.\-/])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w}.\-/(])")
# Where snake_case is what the librarian is to type (merge fields of a message, `{{ first_name }}`).
ALLOWED = {"first_name", "last_name", "preferred_name", "branch_name", "unsubscribe_url", "preferences_url", "library_name"}
MARKDOWN_TYPES = {"markdown", "caption", "title", "header", "subheader", "error", "warning", "info", "success", "toast", "exception", "text"}
TEXT_ATTRIBUTES = ("label", "help", "placeholder")


def _chart_texts(spec: dict) -> list[str]:
    """Titles (of the chart and its axes and legends) and series names in a Plotly figure or a Vega-Lite spec."""
    found: list[str] = []

    def title_of(node) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict) and isinstance(node.get("text"), str):
            found.append(node["text"])

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "title":
                    title_of(value)
                elif key == "name" and isinstance(value, str) and "type" in node:  # a Plotly trace
                    found.append(value)
                elif key == "legendgroup" and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(spec)
    return found


def _vega_titles(spec: dict) -> list[str]:
    """A Vega-Lite encoding without a title shows its field's name as the axis title: count those too."""
    found = _chart_texts(spec)
    for layer in [spec, *spec.get("layer", [])]:
        for channel, enc in (layer.get("encoding") or {}).items():
            if isinstance(enc, dict) and channel in ("x", "y", "color") and "title" not in enc and isinstance(enc.get("field"), str):
                found.append(enc["field"])
    return found


def visible_texts(at) -> list[tuple[str, str]]:
    """(where, text) for everything a librarian reads on the page."""
    found: list[tuple[str, str]] = []

    def walk(node) -> None:
        kind = getattr(node, "type", "")
        proto = getattr(node, "proto", None)
        if kind in MARKDOWN_TYPES and proto is not None:
            found.append((kind, str(getattr(proto, "body", None) or getattr(node, "value", ""))))
        for attribute in TEXT_ATTRIBUTES:
            value = getattr(node, attribute, None)
            if isinstance(value, str) and value:
                found.append((f"{kind}.{attribute}", value))
        if kind in ("radio", "selectbox", "multiselect", "select_slider") and proto is not None:
            found.extend((f"{kind}.option", str(o)) for o in proto.options)
        if kind == "metric" and proto is not None:
            found.append(("metric.label", proto.label))
        if kind in ("tab", "expander") and proto is not None:
            found.append((kind, str(getattr(node, "label", "") or getattr(proto, "label", ""))))
        if kind == "dataframe":
            frame = node.value
            found.extend(("dataframe.column", str(c)) for c in frame.columns)
            found.extend(("dataframe.index", str(n)) for n in frame.index.names if n)
        if kind == "plotly_chart" and proto is not None:
            found.extend(("chart", t) for t in _chart_texts(json.loads(proto.spec)))
        if kind == "arrow_vega_lite_chart" and proto is not None:
            found.extend(("chart", t) for t in _vega_titles(json.loads(proto.spec)))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


# Names a chart library gives an axis or legend when it was not told one.
DEFAULT_TITLES = {"value", "variable", "index"}


def snake_words(at) -> list[str]:
    words = []
    for where, text in visible_texts(at):
        if where == "chart" and text.strip().lower() in DEFAULT_TITLES:
            words.append(f"{where}: a title left as {text!r}")
        text = re.sub(r"\{\{.*?\}\}", "", text.replace("\\_", "_"))  # merge fields shown as something to type
        for word in SNAKE.findall(text):
            if word not in ALLOWED:
                words.append(f"{where}: {word!r} in {text[:100]!r}")
    return words


PAGE_ROLES = [(spec.path, role.value) for spec in ui.PAGES for role in Role if spec.perm is None or allowed(role, spec.perm)]


def test_the_check_finds_snake_case_but_not_plain_words():
    assert SNAKE.findall("Active per 1,000 residents · new_active · registered_per_1000 · digital_loan") == ["new_active", "registered_per_1000", "digital_loan"]
    assert SNAKE.findall("Sign-ups, cards issued; a file like patrons_2024.csv; https://x.test/a_b; {{ first_name }}") == ["first_name"]


def test_no_page_shows_a_snake_case_word_to_any_role_on_the_demo_library(app, db, demo):
    problems = []
    for page, role in PAGE_ROLES:
        at = app(role=role, page=page).run()
        assert not at.exception, (page, role, [e.value for e in at.exception])
        problems.extend(f"{page} ({role}) {p}" for p in snake_words(at))
    if problems:
        pytest.fail("snake_case words shown to librarians:\n" + "\n".join(sorted(set(problems))), pytrace=False)


@pytest.mark.parametrize("page", ["pages/segments.py", "pages/campaigns.py", "pages/interactions.py"])
def test_pages_with_forms_and_tables_are_checked_too(app, db, demo, page):
    """Sanity: the walk above does see the page's tables, options and labels (not an empty tree)."""
    at = app(role="admin", page=page).run()
    kinds = {where.split(".")[0] for where, _ in visible_texts(at)}
    assert kinds & {"dataframe", "selectbox", "radio", "metric"}, kinds


def test_every_setting_kind_topic_and_state_has_a_plain_label():
    from crmcore import labels
    from crmcore.admin import settings
    from crmcore.kpis.summaries import STATES
    from crmcore.library.activity import KINDS
    from crmcore.library.consent import TOPICS

    assert set(settings.LABELS) == set(settings.SPECS)
    for names, found in ((KINDS, labels.KIND_LABELS), (TOPICS, labels.TOPIC_LABELS), (STATES, labels.STATE_LABELS)):
        assert set(names) == set(found) and not [v for v in found.values() if "_" in v]
    assert [labels.plural(n, "interaction") for n in (0, 1, 4)] == ["0 interactions", "1 interaction", "4 interactions"]
    assert labels.column("registered_per_1000") == "registered per 1,000 residents" and labels.column("job_title") == "job title"


def test_segment_descriptions_name_zones_branches_kinds_and_states_in_plain_words():
    from crmcore.campaigns.rules import tree

    rules = {"all": [{"field": "zone", "op": "in", "value": ["Z1"]}, {"field": "branch", "op": "not_in", "value": ["CEN"]},
                     {"field": "activity_count", "op": ">=", "value": 2, "kind": "digital_loan", "days": 90},
                     {"field": "lifecycle", "op": "in", "value": ["at_risk"]},
                     {"field": "consent", "op": "granted", "channel": "email", "topic": "new_materials"}]}
    shown = tree.describe(rules, {"zone": [("Z1", "Eastwood")], "branch": [("CEN", "Central Library")]})
    assert "Eastwood" in shown and "Central Library" in shown and "Z1" not in shown and "CEN" not in shown
    assert "digital loan" in shown and "at risk" in shown and "new materials" in shown
    assert not SNAKE.findall(shown), shown
