"""Campaign results: delivery counts, and conversion of recipients against the holdout, with the lift.

Conversion is library activity (any raw activity event) in the N days after the campaign went out
(setting "conversion_window_days"), the same window for recipients and holdout. Measured from what
patrons did at the library, never from tracking pixels or link clicks.
"""

from __future__ import annotations

import math
import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns.drafts import get
from crmcore.models import ActivityEvent, Campaign, ConsentRecord, Message, ProspectConsent, utcnow
from crmcore.privacy import small_cells
from crmcore.recommendations import block, interests

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe(x1: int, n1: int, x0: int, n0: int, z: float = Z95) -> tuple[float, float, float]:
    """Difference p1 - p0 with Newcombe's hybrid score interval (method 10, no continuity correction)."""
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)
    l0, u0 = wilson(x0, n0, z)
    d = p1 - p0
    return (d, d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2))


def relative_lift(x1: int, n1: int, x0: int, n0: int, z: float = Z95) -> tuple[float, float, float] | None:
    """p1 / p0 - 1 with a log-ratio (Katz) interval; None when either group has no conversions."""
    if x1 == 0 or x0 == 0:
        return None
    ratio = (x1 / n1) / (x0 / n0)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    return (ratio - 1, ratio * math.exp(-z * se) - 1, ratio * math.exp(z * se) - 1)


def sent_on(campaign: Campaign) -> date | None:
    """The day the campaign went out: its send time (launch, or the scheduled time)."""
    moment = campaign.scheduled_at or campaign.launched_at
    return moment.date() if moment else None


def _converted(session: Session, campaign_id: int, group, start: date, end: date) -> tuple[int, int]:
    active = exists().where(ActivityEvent.patron_id == Message.patron_id, ActivityEvent.occurred_on > start, ActivityEvent.occurred_on <= end)
    n, x = session.execute(
        select(func.count(), func.count().filter(active)).select_from(Message).where(Message.campaign_id == campaign_id, Message.patron_id.is_not(None), group)
    ).one()
    return int(n), int(x or 0)


def results(session: Session, *, actor: Actor, campaign_id: int, today: date | None = None) -> dict[str, Any]:
    """Counts, conversion of recipients and holdout, and the lift with its 95 % interval."""
    require(actor, Perm.VIEW_DASHBOARD)
    campaign = get(session, campaign_id)
    by_status = dict(session.execute(select(Message.status, func.count()).where(Message.campaign_id == campaign_id).group_by(Message.status)).all())
    unsubscribed = session.scalar(
        select(func.count(func.distinct(Message.patron_id))).where(
            Message.campaign_id == campaign_id,
            Message.status == "sent",
            exists().where(
                ConsentRecord.patron_id == Message.patron_id,
                ConsentRecord.channel == campaign.channel,
                ConsentRecord.topic == campaign.topic,
                ConsentRecord.granted.is_(False),
                ConsentRecord.recorded_at >= Message.sent_at,
            ),
        )
    )
    if campaign.audience == "prospects":  # their own "no" is kept with the prospect (crmcore.signups)
        unsubscribed = session.scalar(
            select(func.count(func.distinct(Message.prospect_id))).where(
                Message.campaign_id == campaign_id,
                Message.status == "sent",
                exists().where(
                    ProspectConsent.prospect_id == Message.prospect_id,
                    ProspectConsent.topic == campaign.topic,
                    ProspectConsent.granted.is_(False),
                    ProspectConsent.updated_at >= Message.sent_at,
                ),
            )
        )
    out: dict[str, Any] = {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "audience": sum(by_status.values()),
        "holdout": by_status.get("holdout", 0),
        "sent": by_status.get("sent", 0),
        "failed": by_status.get("failed", 0),
        "unknown": by_status.get("unknown", 0),
        "skipped": by_status.get("skipped", 0),
        "queued": by_status.get("queued", 0) + by_status.get("sending", 0),
        "cancelled": by_status.get("cancelled", 0),
        "unsubscribed": int(unsubscribed or 0),
        "failure_reasons": _failure_reasons(session, campaign_id),
    }
    start = sent_on(campaign)
    if start is None:
        return out
    days = int(settings.get(session, "conversion_window_days"))
    end = start + timedelta(days=days)
    n1, x1 = _converted(session, campaign_id, and_(Message.status == "sent", Message.is_holdout.is_(False)), start, end)
    n0, x0 = _converted(session, campaign_id, Message.is_holdout.is_(True), start, end)
    out.update(
        window_days=days,
        window_start=start,
        window_end=end,
        window_complete=(today or utcnow().date()) > end,
        recipients_n=n1,
        recipients_converted=x1,
        holdout_n=n0,
        holdout_converted=x0,
        recipients_rate=x1 / n1 if n1 else None,
        holdout_rate=x0 / n0 if n0 else None,
    )
    if n1 and n0:
        d, lo, hi = newcombe(x1, n1, x0, n0)
        out.update(lift=d, lift_low=lo, lift_high=hi, relative=relative_lift(x1, n1, x0, n0))
    if block.uses_block(campaign.body_template):
        for name, group in (("recipients", and_(Message.status == "sent", Message.is_holdout.is_(False))), ("holdout", Message.is_holdout.is_(True))):
            n, x = _borrowed_liked(session, campaign_id, group, start, end)
            out.update({f"liked_{name}_n": n, f"liked_{name}_borrowed": x, f"liked_{name}_rate": x / n if n else None})
    return out


def _borrowed_liked(session: Session, campaign_id: int, group, start: date, end: date) -> tuple[int, int]:
    """(patrons of the group with interests as of sending, those who borrowed in one of their top categories in the
    window). Categories, never titles: they are kept on activity events only for patrons with history opt-in (the
    monthly rollups keep none), and the window lies well inside the retention window that keeps those events."""
    ids = list(session.scalars(select(Message.patron_id).where(Message.campaign_id == campaign_id, Message.patron_id.is_not(None), group)))
    liked = {pid: {c for c, _why in cats} for pid, cats in interests.top_categories(session, ids, today=start, limit=block.TOP).items()}
    borrowed: set[int] = set()
    spelt = interests.spelling(session)
    for chunk in interests.chunks(sorted(liked)):
        rows = session.execute(
            select(ActivityEvent.patron_id, ActivityEvent.category).distinct().where(
                ActivityEvent.patron_id.in_(chunk), ActivityEvent.kind.in_(interests.BORROWING), ActivityEvent.category.is_not(None),
                ActivityEvent.occurred_on > start, ActivityEvent.occurred_on <= end,
            )
        )
        borrowed.update(pid for pid, category in rows if spelt(category) in liked[pid])
    return len(liked), len(borrowed)


def conversion_by_day(session: Session, *, actor: Actor, campaign_id: int, today: date | None = None) -> list[dict[str, Any]]:
    """Conversion day by day since sending, recipients against holdout: for each day 1..N of the window
    (setting "conversion_window_days"), the share of each group with library activity by the end of that day
    (cumulative, so day N equals `results`' rates). Days after today are left out; empty before sending."""
    require(actor, Perm.VIEW_DASHBOARD)
    campaign = get(session, campaign_id)
    start = sent_on(campaign)
    if start is None:
        return []
    days = int(settings.get(session, "conversion_window_days"))
    end = start + timedelta(days=days)
    first = (
        select(func.min(ActivityEvent.occurred_on))
        .where(ActivityEvent.patron_id == Message.patron_id, ActivityEvent.occurred_on > start, ActivityEvent.occurred_on <= end)
        .scalar_subquery()
    )
    recipients = and_(Message.status == "sent", Message.is_holdout.is_(False))
    groups = {"Recipients": recipients, "Holdout": Message.is_holdout.is_(True)}
    last_day = min(days, ((today or utcnow().date()) - start).days)
    rows: list[dict[str, Any]] = []
    for name, where in groups.items():
        firsts = [d for (d,) in session.execute(
            select(first).select_from(Message).where(Message.campaign_id == campaign_id, Message.patron_id.is_not(None), where)
        )]
        n = len(firsts)
        if not n:
            continue
        by_day = [0] * (days + 1)
        for d in firsts:
            if d is not None:
                by_day[(d - start).days] += 1
        active = 0
        for day in range(1, last_day + 1):
            active += by_day[day]
            rows.append({"day": day, "group": name, "patrons": n, "active": active, "conversion %": round(100 * active / n, 2)})
    return rows


_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")


def _reason(note: str | None) -> str:
    """A failed message's note without any address in it (a mail server's refusal may quote one)."""
    return _ADDRESS.sub("(address)", note or "no reason recorded")


def _failure_reasons(session: Session, campaign_id: int) -> dict[str, int]:
    reasons: dict[str, int] = {}
    notes = select(Message.last_error, func.count()).where(Message.campaign_id == campaign_id, Message.status == "failed").group_by(Message.last_error)
    for note, n in session.execute(notes):
        reasons[_reason(note)] = reasons.get(_reason(note), 0) + int(n)
    return reasons


def failures(session: Session, *, actor: Actor, campaign_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Failed messages, newest first: campaign, patron number and the reason (addresses left out)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    query = (
        select(Message.id, Message.campaign_id, Campaign.name, Message.patron_id, Message.last_error)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Message.status == "failed")
        .order_by(Message.id.desc())
        .limit(limit)
    )
    if campaign_id is not None:
        query = query.where(Message.campaign_id == campaign_id)
    return [{"message": mid, "campaign_id": cid, "campaign": name, "patron": pid, "reason": _reason(note)} for mid, cid, name, pid, note in session.execute(query)]


def dashboard_rows(session: Session, *, actor: Actor, limit: int = 20) -> list[dict[str, Any]]:
    """One row per launched campaign for the dashboard, small cells shown as "<k"."""
    require(actor, Perm.VIEW_DASHBOARD)
    k = int(settings.get(session, "small_cell_k"))
    launched = session.scalars(select(Campaign.id).where(Campaign.launched_at.is_not(None)).order_by(Campaign.launched_at.desc()).limit(limit))
    rows = []
    for campaign_id in list(launched):
        r = results(session, actor=actor, campaign_id=campaign_id)
        # A rate over a small group, or with a small number of converters, could single a patron out.
        small = any(n < k for n in (r.get("recipients_n", 0), r.get("holdout_n", 0))) or any(
            small_cells.is_small(x, k) for x in (r.get("recipients_converted", 0), r.get("holdout_converted", 0))
        )
        pct = (lambda v: None if v is None or small else round(100 * v, 1))
        rows.append(
            {
                "campaign": r["name"],
                "status": r["status"],
                "sent": small_cells.count(r["sent"], k),
                "failed": small_cells.count(r["failed"], k),
                "unsubscribed": small_cells.count(r["unsubscribed"], k),
                "conversion recipients %": pct(r.get("recipients_rate")),
                "conversion holdout %": pct(r.get("holdout_rate")),
                "lift (points)": pct(r.get("lift")),
                "lift 95% CI low": pct(r.get("lift_low")),
                "lift 95% CI high": pct(r.get("lift_high")),
            }
        )
    return rows
