"""Widgets of the segment builder: one row per condition, nested all / any / not groups.

Not a page (not in ui.PAGES). The rule tree lives in st.session_state["seg-rules"]; structural edits go
through crmcore.campaigns.rules.tree in button callbacks, which bump "seg-version" so that every widget is
rebuilt from the tree (widget keys carry the version, the node's path, its field and operator). Another
builder on the same page (a journey's branch step) passes its own `ns` instead of "seg": its tree is in
st.session_state[f"{ns}-rules"].
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import streamlit as st

from crmcore.campaigns.rules import tree
from crmcore.campaigns.rules.language import FIELDS, NO_VALUE_OPS, OP_LABELS, STAGES
from crmcore.library.activity import KINDS
from crmcore.library.consent import CHANNELS, TOPICS

RULES, VERSION = "seg-rules", "seg-version"
MAX_GROUP_DEPTH = 3


def set_rules(rules: dict, ns: str = "seg") -> None:
    """Replace the tree being edited and rebuild every widget from it."""
    st.session_state[f"{ns}-rules"] = tree.normalize(rules)
    st.session_state[f"{ns}-version"] = st.session_state.get(f"{ns}-version", 0) + 1


def _edit(ns: str, fn, *args) -> None:
    set_rules(fn(st.session_state[f"{ns}-rules"], *args), ns)


def _key(ns: str, path: tuple[int, ...], *parts: Any) -> str:
    return f"{ns}-" + "-".join(map(str, (st.session_state.get(f"{ns}-version", 0), "p", *path, *parts)))


def _index(options: list, value: Any) -> int:
    return options.index(value) if value in options else 0


def _days_input(label: str, value: Any, key: str, *, allow_ever: bool) -> int | None:
    """Whole days; 0 means "ever" where a window is optional."""
    days = st.number_input(label, min_value=0 if allow_ever else 1, max_value=36_500, step=1, value=int(value or 0) if allow_ever else int(value or 1), key=key,
                           help="0 = at any time" if allow_ever else None)
    return int(days) or None if allow_ever else int(days)


def _value(spec, leaf: dict, op: str, choices: dict, key: str) -> Any:
    """The value widget(s) for the field's kind and the operator; returns the JSON value."""
    value = leaf.get("value") if leaf.get("op") == op else None
    if spec.kind in ("code", "category", "age_band", "stage"):
        if spec.kind == "code":
            names = dict(choices.get(leaf["field"], []))
            options = list(names)
            fmt = lambda code: f"{code} — {names.get(code, '?')}"  # noqa: E731
        else:
            options = list(STAGES) if spec.kind == "stage" else list(choices.get(leaf["field"], []))
            fmt = lambda v: v.replace("_", " ")  # noqa: E731
        chosen = [v for v in (value or []) if v in options or spec.kind in ("category", "age_band")]
        picked = st.multiselect("Values", options + [v for v in chosen if v not in options], default=chosen, format_func=fmt, key=key,
                                accept_new_options=spec.kind in ("category", "age_band"), placeholder="Choose one or more")
        return list(picked)
    if spec.kind == "percent":
        return int(st.number_input("Percent", min_value=0, max_value=100, value=int(value if isinstance(value, int) else 50), key=key))
    if spec.kind in ("number", "activity", "total"):
        if op == "between":
            low, high = value if isinstance(value, list) else (0, 10)
            a, b = st.columns(2)
            return [int(a.number_input("From", min_value=0, value=int(low), key=key + "-lo")), int(b.number_input("To", min_value=0, value=int(high), key=key + "-hi"))]
        start = {"number": 180, "activity": 1, "total": 10}[spec.kind]
        return int(st.number_input("Days" if spec.kind == "number" else "Count", min_value=0, value=int(value if isinstance(value, int) else start), key=key))
    if spec.kind == "date":
        if op in ("on_or_after", "before"):
            return st.date_input("Date", value=date.fromisoformat(value) if value else date.today(), key=key).isoformat()
        if op == "between":
            start, end = (date.fromisoformat(v) for v in value) if value else (date.today() - timedelta(days=365), date.today())
            picked = st.date_input("Dates", value=(start, end), key=key)
            picked = tuple(picked) if isinstance(picked, (tuple, list)) else (picked, picked)
            return [d.isoformat() for d in (picked if len(picked) == 2 else (picked[0], picked[0]))]
        return _days_input("Days", value if isinstance(value, int) else 90, key, allow_ever=False)
    if spec.kind == "text":
        return st.text_input("Text", value=value or "", key=key, placeholder="e.g. cooking").strip()
    if spec.kind == "flag":
        return st.selectbox("Value", [True, False], index=0 if value in (None, True) else 1, format_func=lambda b: "yes" if b else "no", key=key)
    if spec.kind == "campaign":
        campaigns = dict(choices.get("campaign", []))
        if not campaigns:
            st.caption("No campaign has been launched yet.")
            return None
        ids = list(campaigns)
        return st.selectbox("Campaign", ids, index=_index(ids, value), format_func=lambda i: f"{campaigns[i]} (#{i})", key=key)
    return None


def _leaf_row(leaf: dict, path: tuple[int, ...], choices: dict, ns: str) -> dict:
    """One condition: field → operator → value widgets; returns the condition as edited."""
    cols = st.columns([3, 2, 5, 1], vertical_alignment="bottom")
    fields = list(FIELDS)
    field = cols[0].selectbox("Field", fields, index=_index(fields, leaf.get("field")), format_func=lambda f: FIELDS[f].label, key=_key(ns, path, "field"))
    if field != leaf.get("field"):
        leaf = tree.default_leaf(field)
    spec = FIELDS[field]
    op = cols[1].selectbox("Operator", list(spec.ops), index=_index(list(spec.ops), leaf.get("op")), format_func=OP_LABELS.get, key=_key(ns, path, field, "op"))
    new: dict[str, Any] = {"field": field, "op": op}
    with cols[2]:
        base = _key(ns, path, field, op)
        if spec.kind == "activity":
            a, b = st.columns(2)
            kinds = ["any", *KINDS]
            new["kind"] = a.selectbox("Kind", kinds, index=_index(kinds, leaf.get("kind")), format_func=lambda k: k.replace("_", " "), key=base + "-kind")
            with b:
                days = _days_input("In the last … days", leaf.get("days"), base + "-days", allow_ever=True)
        elif spec.kind == "attendance":
            days = _days_input("In the last … days", leaf.get("days"), base + "-days", allow_ever=True)
        elif spec.kind == "consent":
            a, b = st.columns(2)
            topics = ["any", *TOPICS]
            new["channel"] = a.selectbox("Channel", list(CHANNELS), index=_index(list(CHANNELS), leaf.get("channel")), key=base + "-channel")
            new["topic"] = b.selectbox("Topic", topics, index=_index(topics, leaf.get("topic")), format_func=lambda t: t.replace("_", " "), key=base + "-topic")
        if spec.kind in ("activity", "attendance") and days is not None:
            new["days"] = days
        if op not in NO_VALUE_OPS:
            new["value"] = _value(spec, leaf, op, choices, base + "-value")
    cols[3].button("", icon=":material/delete:", key=_key(ns, path, "remove"), help="Remove this condition", on_click=_edit, args=(ns, tree.remove, path))
    return new


def render_group(group: dict, path: tuple[int, ...], choices: dict, depth: int = 1, ns: str = "seg") -> dict:
    """A (normalized) group with its conditions and subgroups; returns the group as edited."""
    mode, items = tree.mode_of(group)
    modes = list(tree.MODES)
    chosen = st.columns([3, 7])[0].selectbox("Match", modes, index=modes.index(mode), format_func=tree.MODES.get, key=_key(ns, path, "mode"))
    if chosen != mode:
        _edit(ns, tree.set_mode, path, chosen)
        st.rerun()
    holder = tree.items_path(group, path)
    edited = []
    for i, child in enumerate(items):
        if tree.is_group(child):
            with st.container(border=True):
                edited.append(render_group(child, (*holder, i), choices, depth + 1, ns))
        else:
            edited.append(_leaf_row(child, (*holder, i), choices, ns))
    buttons = st.columns(3)
    buttons[0].button("Add condition", icon=":material/add:", key=_key(ns, path, "add"), on_click=_edit,
                      args=(ns, tree.append, holder, tree.default_leaf("zone")))
    if depth < MAX_GROUP_DEPTH:
        buttons[1].button("Add group", icon=":material/account_tree:", key=_key(ns, path, "add-group"), on_click=_edit,
                          args=(ns, tree.append, holder, {"any": []}))
    if path:
        buttons[2].button("Remove group", icon=":material/delete:", key=_key(ns, path, "remove-group"), on_click=_edit, args=(ns, tree.remove, path))
    return tree.with_mode(mode, edited)
