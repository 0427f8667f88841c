"""Pure edits of a segment rule tree, as the builder makes them: no database, no UI.

A node is addressed by a path of child positions from the root (a `not` group has one child, 0).
Every function returns a new tree and leaves its argument unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

from crmcore.campaigns.rules.language import FIELDS, OP_LABELS
from crmcore.kpis.summaries import STATE_LABELS
from crmcore.library.activity import KIND_LABELS
from crmcore.library.consent import TOPIC_LABELS

Path = tuple[int, ...]
GROUPS = ("all", "any", "not")


def default_leaf(field: str) -> dict[str, Any]:
    """A condition on `field` to start from; lists of codes, text and campaign are left for the user."""
    spec = FIELDS[field]
    leaf: dict[str, Any] = {"field": field, "op": spec.ops[0]}
    value = {
        "code": [], "category": [], "age_band": [], "stage": ["lapsed"], "number": 180, "activity": 1, "total": 10, "date": None,
        "text": "", "flag": True, "campaign": None, "percent": 50,
    }.get(spec.kind)
    if spec.kind == "date":
        leaf["op"], value = "within_last_days", 90
    if spec.kind == "activity":
        leaf.update(kind="any", days=365, op=">=")
    if spec.kind in ("total", "percent"):
        leaf["op"] = ">="
    if spec.kind == "attendance":
        leaf["days"] = 365
    if spec.kind == "consent":
        leaf.update(channel="email", topic="any")
    if spec.kind in ("consent", "attendance"):
        return leaf
    leaf["value"] = value
    return leaf


def children(node: dict) -> list[dict]:
    if "not" in node:
        return [node["not"]]
    for key in ("all", "any"):
        if key in node:
            return node[key]
    return []


def is_group(node: dict) -> bool:
    return any(key in node for key in GROUPS)


def group_kind(node: dict) -> str:
    return next(key for key in GROUPS if key in node)


def node_at(tree: dict, path: Path) -> dict:
    node = tree
    for i in path:
        node = children(node)[i]
    return node


def replace(tree: dict, path: Path, new: dict) -> dict:
    """The tree with the node at `path` replaced by `new`."""
    if not path:
        return copy.deepcopy(new)
    out = copy.deepcopy(tree)
    parent = node_at(out, path[:-1])
    if "not" in parent:
        parent["not"] = copy.deepcopy(new)
    else:
        parent[group_kind(parent)][path[-1]] = copy.deepcopy(new)
    return out


def append(tree: dict, path: Path, new: dict) -> dict:
    """The tree with `new` added as the last child of the all/any group at `path`."""
    group = copy.deepcopy(node_at(tree, path))
    if "not" in group or not is_group(group):
        raise ValueError("Conditions are added to an all or any group.")
    group[group_kind(group)].append(copy.deepcopy(new))
    return replace(tree, path, group)


def remove(tree: dict, path: Path) -> dict:
    """The tree without the node at `path`; removing a `not`'s only child removes the `not`."""
    if not path:
        return {"all": []}
    parent_path = path[:-1]
    parent = copy.deepcopy(node_at(tree, parent_path))
    if "not" in parent:
        return remove(tree, parent_path) if parent_path else {"all": []}
    del parent[group_kind(parent)][path[-1]]
    return replace(tree, parent_path, parent)


# The builder shows every group in one of four modes; `not` always wraps an all/any group there.
MODES = {"all": "All of these", "any": "Any of these", "none": "None of these", "not_all": "Not all of these"}


def normalize(tree: dict) -> dict:
    """The same rules with a group at the root and every `not` over an all/any group (as the builder edits them)."""
    def norm(node: dict) -> dict:
        if "not" in node:
            inner = node["not"]
            if is_group(inner) and "not" not in inner:
                kind = group_kind(inner)
                return {"not": {kind: [norm(c) for c in inner[kind]]}}
            return {"not": {"any": [norm(inner)]}}
        if is_group(node):
            kind = group_kind(node)
            return {kind: [norm(c) for c in node[kind]]}
        return copy.deepcopy(node)

    return norm(tree if is_group(tree) else {"all": [tree]})


def mode_of(group: dict) -> tuple[str, list[dict]]:
    """(mode, conditions) of a normalized group."""
    if "not" in group:
        inner = group["not"]
        return ("none" if "any" in inner else "not_all"), inner[group_kind(inner)]
    kind = group_kind(group)
    return kind, group[kind]


def with_mode(mode: str, items: list[dict]) -> dict:
    return {"all": {"all": items}, "any": {"any": items}, "none": {"not": {"any": items}}, "not_all": {"not": {"all": items}}}[mode]


def set_mode(tree: dict, path: Path, mode: str) -> dict:
    """The normalized group at `path` switched to another mode, keeping its conditions."""
    _mode, items = mode_of(node_at(tree, path))
    return replace(tree, path, with_mode(mode, copy.deepcopy(items)))


def items_path(group: dict, path: Path) -> Path:
    """The path of the all/any group holding a normalized group's conditions."""
    return (*path, 0) if "not" in group else path


def describe(node: dict, names: dict | None = None) -> str:
    """The rule tree in words, for lists and summaries; `names` ({field: [(code, name), …]}, as
    segments.choices gives) shows zones, branches and campaigns by name, not code. Kinds, topics and
    lifecycle states are shown by their labels."""
    if "not" in node:
        return f"not ({describe(node['not'], names)})"
    if is_group(node):
        kind = group_kind(node)
        parts = [describe(child, names) for child in children(node)]
        if not parts:
            return "every patron" if kind == "all" else "no patron"
        joined = (" and " if kind == "all" else " or ").join(parts)
        return joined if len(parts) == 1 else f"({joined})"
    spec = FIELDS[node["field"]]
    extras = []
    if node.get("kind"):
        extras.append(KIND_LABELS.get(node["kind"], str(node["kind"]).replace("_", " ")))
    if node.get("channel"):
        topic = node.get("topic", "any")
        extras.append(f"{node['channel']} / {TOPIC_LABELS.get(topic, topic)}")
    if node.get("days"):
        extras.append(f"in {node['days']} days")
    value = node.get("value")
    named = STATE_LABELS if spec.kind == "stage" else dict((names or {}).get(node["field"], []))
    word = lambda v: str(named.get(v, v))  # noqa: E731
    shown = "" if value is None else (", ".join(map(word, value)) if isinstance(value, list) else word(value))
    head = spec.label + (f" ({'; '.join(extras)})" if extras else "")
    return " ".join(part for part in (head, OP_LABELS[node["op"]], shown) if part)
