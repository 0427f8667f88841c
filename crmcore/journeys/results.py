"""Journey results: patrons entered, waiting, sent (mails and texts alike; held ones while paused are still
to send), exited and why, per journey and per step; conversion
(the journey's goal within its days after entering) of recipients against the holdout, with the lift and
its 95 % interval (crmcore.campaigns.results), small cells suppressed."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import exists, func, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns.results import newcombe
from crmcore.journeys import definitions
from crmcore.journeys.enrolment import plus_days
from crmcore.journeys.evaluation import latest_version
from crmcore.models import ActivityEvent, Campaign, Journey, JourneyEnrolment, JourneyVersion, Message, Patron
from crmcore.privacy import small_cells

E = JourneyEnrolment
REASONS = {**definitions.EXITS, **definitions.ALWAYS_EXITS}


def _goal(session: Session, definition: dict[str, Any]):
    if definition.get("goal") == "renewal":
        return exists().where(Patron.id == E.patron_id, Patron.expires_on > E.expires_on_at_entry)
    end = plus_days(session, E.entered_on, int(definition.get("goal_days") or 30))
    return exists().where(ActivityEvent.patron_id == E.patron_id, ActivityEvent.occurred_on > E.entered_on, ActivityEvent.occurred_on <= end)


def journey_results(session: Session, *, actor: Actor, journey_id: int, today: date | None = None) -> dict[str, Any]:
    """Counts (small cells as "<k"), per step, and conversion with the lift (None when a group is too small)."""
    require(actor, Perm.VIEW_DASHBOARD)
    journey = session.get(Journey, journey_id)
    if journey is None:
        raise LookupError(f"There is no journey {journey_id}.")
    k = int(settings.get(session, "small_cell_k"))
    mine = E.journey_id == journey_id
    states = dict(session.execute(select(E.state, func.count()).where(mine).group_by(E.state)).all())
    reasons = dict(session.execute(select(E.exit_reason, func.count()).where(mine, E.state == "exited").group_by(E.exit_reason)).all())
    out: dict[str, Any] = {
        "entered": small_cells.count(sum(states.values()), k),
        "waiting": small_cells.count(states.get("active", 0), k),
        "finished": small_cells.count(states.get("finished", 0), k),
        "exited": {REASONS.get(r, r): small_cells.count(n, k) for r, n in reasons.items()},
    }
    steps = []
    for version in session.scalars(select(JourneyVersion).where(JourneyVersion.journey_id == journey_id).order_by(JourneyVersion.number)):
        waiting = dict(session.execute(select(E.step, func.count()).where(E.version_id == version.id, E.state == "active").group_by(E.step)).all())
        sent = {(st, status): n for st, status, n in session.execute(
            select(Campaign.journey_step, Message.status, func.count()).join(Message, Message.campaign_id == Campaign.id)
            .where(Campaign.journey_version_id == version.id).group_by(Campaign.journey_step, Message.status))}
        for index, step in enumerate(version.definition["steps"]):
            row = {"version": version.number, "step": definitions.step_label(index + 1, step), "waiting here": small_cells.count(waiting.get(index, 0), k)}
            if step["kind"] == "send":
                row.update({"channel": definitions.CHANNELS[step["channel"]], "sent": small_cells.count(sent.get((index, "sent"), 0), k),
                            "to send": small_cells.count(sum(sent.get((index, s), 0) for s in ("queued", "sending", "held")), k),
                            "held out": small_cells.count(sent.get((index, "holdout"), 0), k),
                            "not sent": small_cells.count(sum(sent.get((index, s), 0) for s in ("skipped", "failed", "unknown", "cancelled")), k)})
            steps.append(row)
    out["steps"] = steps
    definition = latest_version(session, journey_id).definition
    got = exists().where(Message.patron_id == E.patron_id, Message.status == "sent", Campaign.id == Message.campaign_id,
                         Campaign.journey_version_id == E.version_id, Campaign.journey_round == E.round)
    held = exists().where(Message.patron_id == E.patron_id, Message.status == "holdout", Campaign.id == Message.campaign_id,
                          Campaign.journey_version_id == E.version_id, Campaign.journey_round == E.round)
    goal = _goal(session, definition)
    n1, x1 = session.execute(select(func.count(), func.count().filter(goal)).where(mine, E.is_holdout.is_(False), got)).one()
    n0, x0 = session.execute(select(func.count(), func.count().filter(goal)).where(mine, E.is_holdout.is_(True), held)).one()
    n1, x1, n0, x0 = int(n1), int(x1 or 0), int(n0), int(x0 or 0)
    small = n1 < k or n0 < k or any(small_cells.is_small(x, k) for x in (x1, x0))
    out.update(goal=definitions.GOALS[definition["goal"]], goal_days=definition["goal_days"], recipients=small_cells.count(n1, k), holdout=small_cells.count(n0, k),
               recipients_rate=None, holdout_rate=None, lift=None, lift_low=None, lift_high=None)
    if n1 and n0 and not small:
        d, lo, hi = newcombe(x1, n1, x0, n0)
        out.update(recipients_rate=x1 / n1, holdout_rate=x0 / n0, lift=d, lift_low=lo, lift_high=hi)
    return out

