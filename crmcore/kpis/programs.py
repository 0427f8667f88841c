"""The dashboard's program figures, read from the imported programs (`program_event`, `program_label`).

Programs carry no patrons (only counts of sessions and attendees), so no figure here needs small-cell
suppression. A program is selected by the month it was held in and by where it was held: the branch
filter selects its branch, the zone filter the zone that branch stands in (Administration → Settings →
Branches); the patron type filter does not apply. One function per figure, its docstring its definition.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Integer, and_, cast, func, literal_column, or_, select
from sqlmodel import Session

from crmcore.kpis.figures import Filters
from crmcore.kpis.summaries import month_end, month_index, month_start
from crmcore.models import Branch, ProgramEvent, ProgramLabel, Zone

NO_LABEL = "(none given)"
NO_BRANCH = "(branch unknown)"
NO_ZONE = "(branch without a zone)"

_attendees = func.coalesce(ProgramEvent.attendance_in_person, 0) + func.coalesce(ProgramEvent.attendance_online, 0)
_recorded = or_(ProgramEvent.attendance_in_person.is_not(None), ProgramEvent.attendance_online.is_not(None))
_MEASURES = (
    func.count(ProgramEvent.id),
    func.sum(func.coalesce(ProgramEvent.attendance_in_person, 0)),
    func.sum(func.coalesce(ProgramEvent.attendance_online, 0)),
    func.sum(cast(_recorded, Integer)),
)
MEASURES = ["sessions", "in_person", "online", "recorded"]


def _where(filters: Filters, *, first: date | None = None, last: date | None = None) -> list:
    first = first or filters.first_month
    last = last or filters.end_month
    conditions = [ProgramEvent.held_on >= first, ProgramEvent.held_on <= month_end(month_index(last))]
    if filters.branch_ids:
        known = [b for b in filters.branch_ids if b]
        conditions.append(or_(ProgramEvent.branch_id.in_(known), ProgramEvent.branch_id.is_(None)) if 0 in filters.branch_ids else ProgramEvent.branch_id.in_(known))
    if filters.zone_ids:
        in_zone = select(Branch.id).where(Branch.zone_id.in_([z for z in filters.zone_ids if z]))
        unset = select(Branch.id).where(Branch.zone_id.is_(None))
        wanted = [ProgramEvent.branch_id.in_(in_zone)]
        if 0 in filters.zone_ids:
            wanted += [ProgramEvent.branch_id.in_(unset), ProgramEvent.branch_id.is_(None)]
        conditions.append(or_(*wanted))
    return conditions


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts as integers, attendees = in person + online, and the average per session with attendance."""
    for column in MEASURES:
        frame[column] = frame[column].fillna(0).astype(int)
    frame["attendees"] = frame["in_person"] + frame["online"]
    frame["average"] = (frame["attendees"] / frame["recorded"].where(frame["recorded"] > 0)).round(1)
    return frame.drop(columns=["recorded"])


def _month(day: date | str | None) -> date | None:
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return day.replace(day=1) if day else None


def first_program_month(session: Session) -> date | None:
    """The month of the earliest imported program."""
    return _month(session.execute(select(func.min(ProgramEvent.held_on))).scalar())


def last_program_month(session: Session) -> date | None:
    """The month of the latest imported program."""
    return _month(session.execute(select(func.max(ProgramEvent.held_on))).scalar())


def program_totals(session: Session, *, filters: Filters) -> tuple[int, int]:
    """Program sessions and attendees: the programs held in the period, and their attendees in person and
    online as the events system reports them (a blank count is 0)."""
    sessions, attendees = session.execute(select(func.count(ProgramEvent.id), func.sum(_attendees)).where(*_where(filters))).one()
    return int(sessions or 0), int(attendees or 0)


def programs_by_month(session: Session, *, filters: Filters, first: date, last: date) -> pd.DataFrame:
    """Programs per month: sessions held, attendees in person and online, and the average attendance
    per session (attendees divided by the sessions whose attendance was reported)."""
    month = month_start(ProgramEvent.held_on)
    rows = session.execute(select(month, *_MEASURES).where(*_where(filters, first=first, last=last)).group_by(month).order_by(month)).all()
    return _finish(pd.DataFrame([tuple(r) for r in rows], columns=["month", *MEASURES]))


def programs_by_branch(session: Session, *, filters: Filters) -> pd.DataFrame:
    """Programs by branch: sessions, attendees and average attendance per session in the period, by the
    branch the program was held at."""
    rows = session.execute(
        select(func.coalesce(ProgramEvent.branch_id, literal_column("0")), *_MEASURES).where(*_where(filters)).group_by(func.coalesce(ProgramEvent.branch_id, literal_column("0")))
    ).all()
    frame = _finish(pd.DataFrame([tuple(r) for r in rows], columns=["branch_id", *MEASURES]))
    names = dict(session.execute(select(Branch.id, Branch.name)).all())
    frame.insert(0, "branch", [names.get(int(b), NO_BRANCH) if b else NO_BRANCH for b in frame["branch_id"]])
    return frame.drop(columns=["branch_id"]).sort_values("attendees", ascending=False, kind="stable").reset_index(drop=True)


def programs_by_label(session: Session, *, filters: Filters, kind: str, monthly: bool = False, first: date | None = None, last: date | None = None) -> pd.DataFrame:
    """Programs by category (or audience): sessions, attendees and average attendance of the programs
    carrying each value in the period (a program with several counts under each of them, so the values'
    sums exceed the totals; a program with none counts under "(none given)")."""
    label = func.coalesce(ProgramLabel.label, literal_column(f"'{NO_LABEL}'"))
    keys = [label, month_start(ProgramEvent.held_on)] if monthly else [label]
    rows = session.execute(
        select(*keys, *_MEASURES)
        .select_from(ProgramEvent)
        .outerjoin(ProgramLabel, and_(ProgramLabel.program_id == ProgramEvent.id, ProgramLabel.kind == kind))
        .where(*_where(filters, first=first, last=last))
        .group_by(*keys)
    ).all()
    frame = _finish(pd.DataFrame([tuple(r) for r in rows], columns=["label", *(["month"] if monthly else []), *MEASURES]))
    if monthly:
        return frame.sort_values(["label", "month"]).reset_index(drop=True)
    return frame.sort_values(["attendees", "label"], ascending=[False, True]).reset_index(drop=True)


def programs_by_zone(session: Session, *, filters: Filters) -> pd.DataFrame:
    """Program attendance by zone: attendees of the programs held in the period at the branches standing
    in each zone, per 1,000 of its residents (census population)."""
    zone = func.coalesce(Branch.zone_id, literal_column("0"))
    rows = session.execute(
        select(zone, *_MEASURES).select_from(ProgramEvent).outerjoin(Branch, Branch.id == ProgramEvent.branch_id).where(*_where(filters)).group_by(zone)
    ).all()
    frame = _finish(pd.DataFrame([tuple(r) for r in rows], columns=["zone_id", *MEASURES]))
    zones = pd.DataFrame([tuple(r) for r in session.execute(select(Zone.id, Zone.name, Zone.population)).all()], columns=["zone_id", "zone", "population"])
    frame = frame.merge(zones, on="zone_id", how="left")
    frame["zone"] = frame["zone"].fillna(NO_ZONE)
    frame["attendees_per_1000"] = (1000 * frame["attendees"] / frame["population"].where(frame["population"] > 0)).round(1)
    columns = ["zone", "population", "sessions", "attendees", "attendees_per_1000"]
    return frame[columns].sort_values("attendees_per_1000", ascending=False, na_position="last", kind="stable").reset_index(drop=True)
