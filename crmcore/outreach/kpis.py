"""Outreach KPIs, aggregated in SQL: interactions per month by type and by staff member, organizations
touched, new partners, overdue follow-ups, library cards issued and sign-ups at outreach events.

The viewer role (VIEW_DASHBOARD only) sees these aggregates, which carry no community names or notes;
the breakdown by staff member names colleagues, so it needs VIEW_OUTREACH.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import distinct, func
from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Interaction, InteractionOrganization, Organization, StaffUser
from crmcore.outreach import tasks
from crmcore.outreach.interactions import as_utc
from crmcore.outreach.kinds import KINDS


def _month(session: Session):
    """`occurred_at` as 'YYYY-MM' in UTC, in the backend's own SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Interaction.occurred_at), "YYYY-MM")
    return func.substr(Interaction.occurred_at, 1, 7)  # SQLite stores 'YYYY-MM-DD HH:MM:SS…' in UTC


def outreach_kpis(session: Session, *, actor: Actor, date_from: date, date_to: date, today: date | None = None) -> dict[str, Any]:
    """Totals and monthly series for interactions between `date_from` and `date_to` (inclusive)."""
    require(actor, Perm.VIEW_DASHBOARD)
    if date_to < date_from:
        raise ValueError(f"date range: the end ({date_to}) is before the start ({date_from}).")
    start, end = as_utc(date_from), as_utc(date_to + timedelta(days=1))
    in_range = (Interaction.occurred_at >= start, Interaction.occurred_at < end)
    count, cards, signups = session.exec(
        select(func.count(Interaction.id), func.coalesce(func.sum(Interaction.cards_issued), 0), func.coalesce(func.sum(Interaction.signups), 0)).where(*in_range)
    ).one()
    touched = session.exec(
        select(func.count(distinct(InteractionOrganization.organization_id))).join(Interaction, Interaction.id == InteractionOrganization.interaction_id).where(*in_range)
    ).one()
    partners = session.exec(
        select(func.count(Organization.id)).where(
            Organization.is_partner, Organization.merged_into_id.is_(None), Organization.partner_since >= date_from, Organization.partner_since <= date_to
        )
    ).one()
    month = _month(session).label("month")
    by_kind = session.exec(select(month, Interaction.kind, func.count(Interaction.id)).where(*in_range).group_by(month, Interaction.kind).order_by(month, Interaction.kind)).all()
    kind_frame = pd.DataFrame([(m, KINDS.get(k, k), n) for m, k, n in by_kind], columns=["month", "type", "interactions"])
    staff_frame = None
    if actor.can(Perm.VIEW_OUTREACH):
        name = func.coalesce(StaffUser.display_name, StaffUser.username, "(unknown)").label("staff")
        rows = session.exec(
            select(month, name, func.count(Interaction.id)).outerjoin(StaffUser, StaffUser.id == Interaction.staff_id).where(*in_range).group_by(month, name).order_by(month, name)
        ).all()
        staff_frame = pd.DataFrame(rows, columns=["month", "staff", "interactions"])
    return {
        "interactions": int(count),
        "organizations_touched": int(touched),
        "new_partners": int(partners),
        "overdue_follow_ups": tasks.overdue_count(session, today=today),
        "cards_issued": int(cards),
        "signups": int(signups),
        "by_month_type": kind_frame,
        "by_month_staff": staff_frame,
    }
