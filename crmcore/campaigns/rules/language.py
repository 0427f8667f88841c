"""The segment rule language: the whitelisted fields and operators a rule may use, and its validation.

A rule is a group `{"all": [...]}`, `{"any": [...]}`, `{"not": rule}` or a leaf
`{"field": ..., "op": ..., "value": ..., <extras>}`. `validate` refuses anything else with a message
that says where; `crmcore.campaigns.rules.compiler` compiles a valid rule to SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from crmcore.library.activity import KINDS
from crmcore.library.consent import CHANNELS, TOPICS

NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=", "between")
DATE_OPS = ("on_or_after", "before", "between", "within_last_days", "more_than_days_ago", "within_next_days", "is_empty")
# Lifecycle stages, defined exactly as the dashboard's states (crmcore.kpis.summaries) for the current month.
STAGES = ("new", "regular", "occasional", "at_risk", "lapsed", "active")
MAX_DEPTH = 6
MAX_LEAVES = 100
# Every number and date a rule holds is bounded, so nothing it compiles to can overflow a date or a
# database integer (a value that saves must also count and launch).
MAX_DAYS = 36_500  # a hundred years
MAX_COUNT = 1_000_000  # activities summed over any window
FIRST_DATE, LAST_DATE = date(1900, 1, 1), date(2200, 12, 31)


@dataclass(frozen=True)
class FieldSpec:
    label: str
    kind: str  # how the value is checked and compiled (number: days; activity: a count summed; total: a stored total)
    ops: tuple[str, ...]
    extras: tuple[str, ...] = ()  # further keys of the leaf (kind, days, channel, topic)


FIELDS: dict[str, FieldSpec] = {
    "zone": FieldSpec("Zone", "code", ("in", "not_in")),
    "branch": FieldSpec("Home branch", "code", ("in", "not_in")),
    "patron_type": FieldSpec("Patron type", "category", ("in", "not_in")),
    "age_band": FieldSpec("Age band", "age_band", ("in", "not_in")),
    "registered_on": FieldSpec("Registration date", "date", DATE_OPS),
    "expires_on": FieldSpec("Card expiry date", "date", DATE_OPS),
    "days_since_activity": FieldSpec("Days since last activity", "number", (*NUMBER_OPS, "never")),
    "activity_count": FieldSpec("Activity count", "activity", NUMBER_OPS, ("kind", "days")),
    "event_attendance": FieldSpec("Attended an event", "attendance", ("attended", "not_attended"), ("days",)),
    "lifecycle": FieldSpec("Lifecycle stage", "stage", ("in", "not_in")),
    "interests": FieldSpec("Interests", "text", ("contains", "not_contains")),
    "consent": FieldSpec("Consent", "consent", ("granted", "not_granted"), ("channel", "topic")),
    "campaign": FieldSpec("Campaign history", "campaign", ("received", "not_received")),
    "history_opt_in": FieldSpec("Reading history opt-in", "flag", ("is",)),
    "has_email": FieldSpec("Has an email address", "flag", ("is",)),  # an address stored, or the export says so
    "resident": FieldSpec("Resident of the service area", "flag", ("is",)),
    "lifetime_checkouts": FieldSpec("Lifetime checkouts (ILS total)", "total", NUMBER_OPS),
    "lifetime_renewals": FieldSpec("Lifetime renewals (ILS total)", "total", NUMBER_OPS),
    "language": FieldSpec("Preferred language", "code", ("in", "not_in")),  # codes: es, fr (crmcore.languages.codes)
    # From the weekly personas and lapse risk (crmcore.insights): patrons without a stored one match neither way.
    "persona": FieldSpec("Persona", "category", ("in", "not_in")),
    "lapse_risk": FieldSpec("Lapse risk (%)", "percent", (">=", "<")),
}
NO_VALUE_OPS = {"is_empty", "never", "granted", "not_granted", "attended", "not_attended"}
OP_LABELS = {
    "in": "is one of", "not_in": "is not one of", "=": "=", "!=": "≠", ">": ">", ">=": "≥", "<": "<", "<=": "≤",
    "between": "between", "on_or_after": "on or after", "before": "before", "within_last_days": "in the last N days",
    "more_than_days_ago": "more than N days ago", "within_next_days": "in the next N days", "is_empty": "is empty",
    "never": "never active", "contains": "contains", "not_contains": "does not contain", "granted": "granted",
    "not_granted": "not granted", "received": "received", "not_received": "did not receive", "attended": "attended",
    "not_attended": "did not attend", "is": "is",
}


# --- validation -------------------------------------------------------------------------------------


# What the builder calls the parts of a condition.
_PART_LABELS = {"field": "field", "op": "comparison", "value": "value", "kind": "activity kind", "days": "number of days",
                "channel": "channel", "topic": "topic"}


def _where(path: str, key: str | None = None, label: str | None = None) -> str:
    """A rule's place as the builder shows it: "Condition 2.1, Zone" (its value) for the first condition of the
    group that is the second condition (`path` all[1].any[0]); "Group 2" for that group; "The rule"."""
    places = [str(int(n) + 1) for n in re.findall(r"\[(\d+)\]", path)]
    if key in ("all", "any"):
        return f"Group {'.'.join(places)}" if places else "The rule"
    place = f"Condition {'.'.join(places)}" if places else ("The condition" if key or label else "The rule")
    if key == "days":
        part = f"{label}, in the last N days" if label else "in the last N days"
    elif key == "value":
        part = label or "value"
    elif key:
        part = f"{label}, {_PART_LABELS.get(key, key)}" if label else _PART_LABELS.get(key, key)
    else:
        part = label
    return f"{place}, {part}" if part else place


def _int(value: Any, where: str, *, low: int = 0, high: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: must be a whole number, not {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{where}: must be between {low} and {high}, not {value}.")
    return value


def _bounded(label: str, what: str, low: int, high: int):
    """A check of a whole number between `low` and `high`, refused in a librarian's words."""

    def check(value: Any, where: str) -> int:
        number = _int(value, where, low=-(2**63), high=2**63 - 1)
        if not low <= number <= high:
            raise ValueError(f"{where}: enter {what} between {low} and {high}.")
        return number

    return check


def _date(value: Any, where: str, label: str | None = None) -> date:
    try:
        day = date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: must be a date like 2025-01-31, not {value!r}.") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"{where}: enter a date between {FIRST_DATE} and {LAST_DATE}.")
    return day


def _pair(value: Any, where: str, check) -> None:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{where}: must be a pair [from, to], not {value!r}.")
    low, high = check(value[0], where), check(value[1], where)
    if low > high:
        raise ValueError(f"{where}: the first of the pair must not be after the second.")


def _strings(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> None:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: choose at least one value.")
    if len(value) > 500:
        raise ValueError(f"{where}: at most 500 values.")
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > 200:
            raise ValueError(f"{where}: {item!r} is not a valid value.")
        if allowed is not None and item not in allowed:
            raise ValueError(f"{where}: {item!r} is not one of {', '.join(allowed)}.")


def _check_value(spec: FieldSpec, op: str, value: Any, where: str) -> None:
    if op in NO_VALUE_OPS:
        if value is not None:
            raise ValueError(f"{where}: the operator takes no value.")
        return
    if spec.kind in ("code", "category", "age_band"):
        _strings(value, where)
    elif spec.kind == "stage":
        _strings(value, where, STAGES)
    elif spec.kind == "percent":
        _bounded(spec.label, "a percentage", 0, 100)(value, where)
    elif spec.kind in ("number", "activity", "total"):
        check = _bounded(spec.label, "a number of days", 0, MAX_DAYS) if spec.kind == "number" else _bounded(spec.label, "a number", 0, MAX_COUNT)
        if op == "between":
            _pair(value, where, check)
        else:
            check(value, where)
    elif spec.kind == "date":
        if op == "between":
            _pair(value, where, lambda v, w: _date(v, w, spec.label))
        elif op in ("on_or_after", "before"):
            _date(value, where, spec.label)
        else:
            _bounded(spec.label, "a number of days", 0, MAX_DAYS)(value, where)
    elif spec.kind == "text":
        if not isinstance(value, str) or not value.strip() or len(value) > 100:
            raise ValueError(f"{where}: must be some text (at most 100 characters), not {value!r}.")
    elif spec.kind == "flag":
        if not isinstance(value, bool):
            raise ValueError(f"{where}: must be true or false, not {value!r}.")
    elif spec.kind == "campaign":
        _int(value, where, low=1, high=2**31 - 1)


def _check_leaf(node: dict, path: str) -> None:
    field = node.get("field")
    if field not in FIELDS:
        raise ValueError(f"{_where(path, 'field')}: unknown field {field!r}; fields are {', '.join(FIELDS)}.")
    spec = FIELDS[field]
    where = lambda key=None: _where(path, key, spec.label)  # noqa: E731 - every message names the field by its label
    unknown = set(node) - {"field", "op", "value", *spec.extras}
    if unknown:
        raise ValueError(f"{where()}: unknown key {sorted(unknown)[0]!r} for field {field}.")
    op = node.get("op")
    if op not in spec.ops:
        raise ValueError(f"{where('op')}: {op!r} is not an operator of {field}; use one of {', '.join(spec.ops)}.")
    _check_value(spec, op, node.get("value"), where("value"))
    if "kind" in spec.extras and node.get("kind") not in (*KINDS, "any"):
        raise ValueError(f"{where('kind')}: {node.get('kind')!r} is not an activity kind; use one of {', '.join(KINDS)} or any.")
    if "days" in spec.extras and node.get("days") is not None:
        _bounded(f"{spec.label}, in the last N days", "a number of days", 1, MAX_DAYS)(node["days"], where("days"))
    if spec.kind == "consent":
        if node.get("channel") not in CHANNELS:
            raise ValueError(f"{where('channel')}: {node.get('channel')!r} is not a channel; use one of {', '.join(CHANNELS)}.")
        if node.get("topic") not in (*TOPICS, "any"):
            raise ValueError(f"{where('topic')}: {node.get('topic')!r} is not a topic; use one of {', '.join(TOPICS)} or any.")


def validate(rules: Any) -> None:
    """Raise ValueError naming the offending condition by its place and field (e.g. "Condition 3 (Zone),
    value: choose at least one value.") unless `rules` is valid."""
    leaves = 0

    def walk(node: Any, path: str, depth: int) -> None:
        nonlocal leaves
        if not isinstance(node, dict):
            raise ValueError(f"{_where(path)}: must be a group or a condition, not {node!r}.")
        if depth > MAX_DEPTH:
            raise ValueError(f"{_where(path)}: groups nest at most {MAX_DEPTH} deep.")
        groups = [key for key in ("all", "any", "not") if key in node]
        if groups:
            key = groups[0]
            if len(node) != 1:
                raise ValueError(f"{_where(path)}: a group has exactly one key (all, any or not).")
            if key == "not":
                return walk(node["not"], f"{path}.not" if path else "not", depth + 1)
            if not isinstance(node[key], list):
                raise ValueError(f"{_where(path, key)}: must be a list of rules.")
            if not node[key] and (path or key != "all"):
                # Only the whole tree may be empty ("every patron"); an empty group is a half-made edit.
                raise ValueError(f"{_where(path, key)}: the group is empty; add a condition to it or remove it.")
            for i, child in enumerate(node[key]):
                walk(child, f"{path}.{key}[{i}]" if path else f"{key}[{i}]", depth + 1)
            return
        leaves += 1
        if leaves > MAX_LEAVES:
            raise ValueError(f"The rule: at most {MAX_LEAVES} conditions.")
        _check_leaf(node, path)

    walk(rules, "", 0)


def leaves(rules: dict):
    """Every condition of a (valid) rule tree, depth first."""
    if "field" in rules:
        yield rules
    elif "not" in rules:
        yield from leaves(rules["not"])
    else:
        for child in next(iter(rules.values())):
            yield from leaves(child)
