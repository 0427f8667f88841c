"""Segment rules: a JSON tree of whitelisted fields and operators, validated, compiled to SQLAlchemy.

A rule is a group `{"all": [...]}`, `{"any": [...]}`, `{"not": rule}` or a leaf
`{"field": ..., "op": ..., "value": ..., <extras>}`. Users never write SQL: each leaf compiles to a
two-valued expression with bound parameters only (never NULL, so `not` is an exact complement).
Activity conditions read `activity_monthly` and the patron's last activity date and last month per
kind, never raw events, so answers do not change when retention deletes old raw events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, not_, or_, select, true

from crmcore.activity import KINDS, last_month_column
from crmcore.consent import CHANNELS, TOPICS
from crmcore.kpis.summaries import AGE_BANDS, NEW_WEEKS, REGULAR_MONTHS, month_end, month_index, month_of
from crmcore.models import ActivityMonthly, Branch, CurrentConsent, Message, Patron, Zone

_p = Patron.__table__.c
_am = ActivityMonthly.__table__.c
_cc = CurrentConsent.__table__.c
_msg = Message.__table__.c

NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=", "between")
DATE_OPS = ("on_or_after", "before", "between", "within_last_days", "more_than_days_ago", "within_next_days", "is_empty")
# Lifecycle stages, defined exactly as the dashboard's states (crmcore.kpis.summaries) for the current month.
STAGES = ("new", "regular", "occasional", "at_risk", "lapsed", "active")
MAX_DEPTH = 6
MAX_LEAVES = 100


@dataclass(frozen=True)
class FieldSpec:
    label: str
    kind: str  # how the value is checked and compiled
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
    "has_email": FieldSpec("Has an email address", "flag", ("is",)),
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


def _where(path: str, key: str | None = None) -> str:
    full = ".".join(part for part in (path, key) if part)
    return f"rule {full}" if full else "rule"


def _int(value: Any, where: str, *, low: int = 0, high: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}: must be a whole number, not {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{where}: must be between {low} and {high}, not {value}.")
    return value


def _date(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: must be a date like 2025-01-31, not {value!r}.") from None


def _pair(value: Any, where: str, check) -> None:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"{where}: must be a pair [from, to], not {value!r}.")
    low, high = check(value[0], where), check(value[1], where)
    if low > high:
        raise ValueError(f"{where}: the first of the pair must not be after the second.")


def _strings(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> None:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: must be a non-empty list, not {value!r}.")
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
    elif spec.kind in ("number", "activity"):
        if op == "between":
            _pair(value, where, _int)
        else:
            _int(value, where)
    elif spec.kind == "date":
        if op == "between":
            _pair(value, where, _date)
        elif op in ("on_or_after", "before"):
            _date(value, where)
        else:
            _int(value, where, high=36_500)
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
    unknown = set(node) - {"field", "op", "value", *spec.extras}
    if unknown:
        raise ValueError(f"{_where(path)}: unknown key {sorted(unknown)[0]!r} for field {field}.")
    op = node.get("op")
    if op not in spec.ops:
        raise ValueError(f"{_where(path, 'op')}: {op!r} is not an operator of {field}; use one of {', '.join(spec.ops)}.")
    _check_value(spec, op, node.get("value"), _where(path, "value"))
    if "kind" in spec.extras and node.get("kind") not in (*KINDS, "any"):
        raise ValueError(f"{_where(path, 'kind')}: {node.get('kind')!r} is not an activity kind; use one of {', '.join(KINDS)} or any.")
    if "days" in spec.extras and node.get("days") is not None:
        _int(node["days"], _where(path, "days"), low=1, high=36_500)
    if spec.kind == "consent":
        if node.get("channel") not in CHANNELS:
            raise ValueError(f"{_where(path, 'channel')}: {node.get('channel')!r} is not a channel; use one of {', '.join(CHANNELS)}.")
        if node.get("topic") not in (*TOPICS, "any"):
            raise ValueError(f"{_where(path, 'topic')}: {node.get('topic')!r} is not a topic; use one of {', '.join(TOPICS)} or any.")


def validate(rules: Any) -> None:
    """Raise ValueError naming the offending rule path (e.g. "rule all[2].value: …") unless `rules` is valid."""
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
            raise ValueError(f"rule: at most {MAX_LEAVES} conditions.")
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


# --- compilation --------------------------------------------------------------------------------------


def months_back(today: date, months: int) -> date:
    """The first day of the month `months` before today's month."""
    return month_of(month_index(today) - months)


def _window_start(today: date, days: int | None) -> date | None:
    # Rollups are monthly: a window counts whole months, from the first of the month `days` ago.
    return None if days is None else (today - timedelta(days=days)).replace(day=1)


def _number(op: str, expr, value):
    """The comparison `expr op value` (value a number, or a pair for between)."""
    return {
        "=": lambda: expr == value, "!=": lambda: expr != value, ">": lambda: expr > value, ">=": lambda: expr >= value,
        "<": lambda: expr < value, "<=": lambda: expr <= value, "between": lambda: expr.between(value[0], value[1]),
    }[op]()


def _holds(op: str, n: int, value) -> bool:
    """The same comparison evaluated in Python for a whole number n."""
    return value[0] <= n <= value[1] if op == "between" else bool(_number(op, n, value))


def _some(column, clause) -> ColumnElement[bool]:
    # A NULL column makes a leaf false, never NULL: `not` must be an exact complement.
    return and_(column.is_not(None), clause)


def _activity_rows(kind: str | None, since: date | None) -> list:
    conds = []
    if kind not in (None, "any"):
        conds.append(_am.kind == kind)
    if since is not None:
        conds.append(_am.month >= since)
    return conds


def _activity(kind: str | None, since: date | None, op: str, value) -> ColumnElement[bool]:
    """Patrons whose summed monthly count (of `kind` since `since`) satisfies `op value`.

    A monthly row means some activity (as on the dashboard), so "at least one" and "none" need no sums."""
    conds = _activity_rows(kind, since)
    total = func.sum(_am.count)
    some = not _holds(op, 0, value) and ((op in (">", ">=") and _holds(op, 1, value)) or (op == "!=" and value == 0))
    none = not _holds(op, 1, value) and _holds(op, 0, value)
    if some or none:
        # "At least one" or "none": the patron's last activity date (any kind) or last month with activity
        # of this kind says it, from the patron row itself. Windows start on the first of a month.
        last = _p.last_activity_on if kind in (None, "any") else last_month_column(kind)
        active = _some(last, last >= since) if since else last.is_not(None)
        return active if some else not_(active)
    if not _holds(op, 0, value):
        return _p.id.in_(select(_am.patron_id).where(*conds).group_by(_am.patron_id).having(_number(op, total, value)))
    # Patrons without rows have 0, which passes: exclude those whose total fails.
    failing = select(func.count()).where(_am.patron_id == _p.id, *conds).having(not_(_number(op, total, value)))
    return ~failing.exists()


def _date_clause(column, op: str, value, today: date) -> ColumnElement[bool]:
    if op == "is_empty":
        return column.is_(None)
    if op == "on_or_after":
        return _some(column, column >= date.fromisoformat(value))
    if op == "before":
        return _some(column, column < date.fromisoformat(value))
    if op == "between":
        return _some(column, column.between(date.fromisoformat(value[0]), date.fromisoformat(value[1])))
    if op == "within_last_days":
        return _some(column, column.between(today - timedelta(days=value), today))
    if op == "more_than_days_ago":
        return _some(column, column < today - timedelta(days=value))
    return _some(column, column.between(today, today + timedelta(days=value)))  # within_next_days


def _days_since(op: str, value, today: date) -> ColumnElement[bool]:
    last = _p.last_activity_on
    if op == "never":
        return last.is_(None)
    # days since = today - last, so a larger number of days is an earlier date.
    day = (lambda n: today - timedelta(days=n))
    clause = {
        "=": lambda: last == day(value), "!=": lambda: last != day(value), ">": lambda: last < day(value),
        ">=": lambda: last <= day(value), "<": lambda: last > day(value), "<=": lambda: last >= day(value),
        "between": lambda: last.between(day(value[1]), day(value[0])),
    }[op]()
    return _some(last, clause)


def _age_band(values: list[str], today: date) -> ColumnElement[bool]:
    """The band as imported, else derived from the birth year (as the dashboard does)."""
    band = _p.age_band
    imported = and_(band.is_not(None), band != "", band.in_(values))
    derived = [
        _p.birth_year.between(today.year - high + 1, today.year - low)
        for low, high, name in AGE_BANDS
        if name in values
    ]
    if not derived:
        return imported
    return or_(imported, and_(or_(band.is_(None), band == ""), _p.birth_year.is_not(None), or_(*derived)))


def lifecycle_clause(stage: str, today: date) -> ColumnElement[bool]:
    """Patrons in a lifecycle stage at the end of today's month, as the dashboard classifies them."""
    current = month_index(today)
    end = month_end(current)
    last, reg = _p.last_activity_on, _p.registered_on
    registered = or_(reg.is_(None), reg <= end)
    new = and_(reg.is_not(None), reg > end - timedelta(weeks=NEW_WEEKS), reg <= end)
    active12 = _some(last, last >= months_back(today, 11))
    active6 = _some(last, last >= months_back(today, 5))
    regular = _p.id.in_(
        select(_am.patron_id)
        .where(_am.month >= months_back(today, 11), _am.month <= month_of(current))
        .group_by(_am.patron_id)
        .having(func.count(_am.month.distinct()) >= REGULAR_MONTHS)
    )
    settled = and_(registered, not_(new))
    return {
        "new": new,
        "regular": and_(settled, active6, regular),
        "occasional": and_(settled, active6, not_(regular)),
        "at_risk": and_(settled, active12, not_(active6)),
        "lapsed": and_(settled, not_(active12)),
        "active": and_(registered, active12),
    }[stage]


def _code_clause(column, table, codes: list[str]) -> ColumnElement[bool]:
    return _some(column, column.in_(select(table.id).where(table.code.in_(codes))))


def _leaf(node: dict, today: date, *, probe: bool = False) -> ColumnElement[bool]:
    field, op, value = node["field"], node["op"], node.get("value")
    if field in ("zone", "branch", "patron_type", "age_band", "lifecycle"):
        if field == "zone":
            clause = _code_clause(_p.zone_id, Zone, value)
        elif field == "branch":
            clause = _code_clause(_p.branch_id, Branch, value)
        elif field == "patron_type":
            clause = _some(_p.patron_type, _p.patron_type.in_(value))
        elif field == "age_band":
            clause = _age_band(value, today)
        else:
            clause = or_(*(lifecycle_clause(stage, today) for stage in value))
        return not_(clause) if op == "not_in" else clause
    if field in ("registered_on", "expires_on"):
        return _date_clause(_p.registered_on if field == "registered_on" else _p.expires_on, op, value, today)
    if field == "days_since_activity":
        return _days_since(op, value, today)
    if field == "activity_count":
        return _activity(node["kind"], _window_start(today, node.get("days")), op, value)
    if field == "event_attendance":
        clause = _activity("event_attendance", _window_start(today, node.get("days")), ">=", 1)
        return clause if op == "attended" else not_(clause)
    if field == "interests":
        clause = _some(_p.interests, _p.interests.icontains(value.strip(), autoescape=True))
        return clause if op == "contains" else not_(clause)
    if field == "consent":
        conds = [_cc.channel == node["channel"], _cc.granted.is_(True)]
        if node["topic"] != "any":
            conds.append(_cc.topic == node["topic"])
        if op == "granted":
            return (_p.id + 0 if probe else _p.id).in_(select(_cc.patron_id).where(*conds))
        return ~exists().where(_cc.patron_id == _p.id, *conds)
    if field == "campaign":
        conds = [_msg.campaign_id == value, _msg.status == "sent"]
        if op == "received":
            return _p.id.in_(select(_msg.patron_id).where(*conds, _msg.patron_id.is_not(None)))
        return ~exists().where(_msg.patron_id == _p.id, *conds)
    if field == "history_opt_in":
        return _p.history_opt_in.is_(True) if value else _p.history_opt_in.is_(False)
    has_email = and_(_p.email.is_not(None), _p.email != "")
    return has_email if value else not_(has_email)


# In an `all` group that also narrows patrons by an indexed date, a consent condition is checked per
# candidate patron: "patron.id + 0 IN (…)" keeps SQLite from driving the query from the (often large)
# set of consenting patrons instead. On its own, the consenting set drives (fewer lookups).
NARROWING = frozenset({"days_since_activity", "registered_on", "expires_on"})


def _compile(node: dict, today: date, *, probe: bool = False) -> ColumnElement[bool]:
    if "all" in node:
        probe = any(child.get("field") in NARROWING for child in node["all"])
        return and_(true(), *(_compile(child, today, probe=probe) for child in node["all"]))
    if "any" in node:
        return or_(false(), *(_compile(child, today) for child in node["any"]))
    if "not" in node:
        return not_(_compile(node["not"], today))
    return _leaf(node, today, probe=probe)


def compile_rules(rules: dict, *, today: date) -> ColumnElement[bool]:
    """A WHERE clause over the patron table for a valid rule tree; erased patrons never match."""
    validate(rules)
    return and_(_p.erased_at.is_(None), _compile(rules, today))


def patron_ids_select(rules: dict, *, today: date) -> Select:
    """SELECT patron.id of every patron the rules match (what a campaign launch freezes)."""
    return select(_p.id).where(compile_rules(rules, today=today))
