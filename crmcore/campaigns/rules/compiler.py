"""Segment rules compiled to SQLAlchemy: a WHERE clause over the patron table for a valid rule tree.

The language (fields, operators, validation) is in `crmcore.campaigns.rules.language`. Users never write SQL:
each leaf compiles to a two-valued expression with bound parameters only (never NULL, so `not` is an
exact complement). Activity conditions read `activity_monthly` and the patron's last activity date and
last month per kind, never raw events, so answers do not change when retention deletes old raw events.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import ColumnElement, Integer, Select, and_, exists, false, func, not_, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from crmcore.campaigns.rules.language import validate
from crmcore.kpis.summaries import AGE_BANDS, NEW_WEEKS, REGULAR_MONTHS, month_end, month_index, month_of
from crmcore.library.activity import last_month_column
from crmcore.models import ActivityMonthly, Branch, CurrentConsent, Message, Patron, PatronInsight, Persona, Zone

_p = Patron.__table__.c
_am = ActivityMonthly.__table__.c
_cc = CurrentConsent.__table__.c
_msg = Message.__table__.c
_pi = PatronInsight.__table__.c


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
    # Stated without "age_band IS NOT NULL", which SQLite's planner would take as a range of the index on
    # (branch, age band) instead of the band's equality: coalesce keeps the leaf false, never NULL, for no band.
    imported = and_(func.coalesce(band, "") != "", band.in_(values))
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
    if field == "language":
        clause = _some(_p.language, _p.language.in_(value))
        return not_(clause) if op == "not_in" else clause
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
            return (_probed(_p.id) if probe else _p.id).in_(select(_cc.patron_id).where(*conds))
        return ~exists().where(_cc.patron_id == _p.id, *conds)
    if field == "campaign":
        conds = [_msg.campaign_id == value, _msg.status == "sent"]
        if op == "received":
            return _p.id.in_(select(_msg.patron_id).where(*conds, _msg.patron_id.is_not(None)))
        return ~exists().where(_msg.patron_id == _p.id, *conds)
    if field == "persona":
        clause = _p.id.in_(select(_pi.patron_id).join(Persona, Persona.id == _pi.persona_id).where(Persona.name.in_(value)))
        return clause if op == "in" else _p.id.in_(select(_pi.patron_id).where(_pi.persona_id.is_not(None))) & not_(clause)
    if field == "lapse_risk":
        risk = _pi.lapse_risk >= value / 100 if op == ">=" else _pi.lapse_risk < value / 100
        return _p.id.in_(select(_pi.patron_id).where(_pi.lapse_risk.is_not(None), risk))
    if field == "history_opt_in":
        return _p.history_opt_in.is_(True) if value else _p.history_opt_in.is_(False)
    if field == "resident":  # unknown (not in the file) is neither
        return _p.resident.is_(True) if value else _p.resident.is_(False)
    if field in ("lifetime_checkouts", "lifetime_renewals"):
        column = _p.lifetime_checkouts if field == "lifetime_checkouts" else _p.lifetime_renewals
        return _some(column, _number(op, column, value))  # a patron whose total is not known matches no comparison
    # An address stored, or an export that says there is one without giving it.
    has_email = or_(_p.has_email.is_(True), and_(_p.email.is_not(None), _p.email != ""))
    return has_email if value else not_(has_email)


# In an `all` group that also narrows patrons by an indexed date, a consent condition is checked per
# candidate patron: "patron.id + 0 IN (…)" keeps SQLite from driving the query from the (often large)
# set of consenting patrons instead. On its own, the consenting set drives (fewer lookups). PostgreSQL's
# planner weighs both ways itself (a hash join of the consenting set beats one probe per candidate at
# 1,000,000 patrons), so there the column is left as it is.
NARROWING = frozenset({"days_since_activity", "registered_on", "expires_on"})


class _probed(FunctionElement):
    """`patron.id + 0` on SQLite (not an indexable column: the IN list is probed per candidate), the column elsewhere."""

    type = Integer()
    inherit_cache = True
    name = "probed"


@compiles(_probed, "sqlite")
def _probed_sqlite(element, compiler, **kw):
    return "(%s + 0)" % compiler.process(element.clauses, **kw)


@compiles(_probed)
def _probed_default(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


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
