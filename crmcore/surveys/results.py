"""Survey results: the net promoter score with its 95 % interval, overall and by group, the response rate,
and the distribution of every question's answers; every grouped figure small-cell suppressed.

NPS method: each respondent scores +1 (a promoter, 9–10), 0 (passive, 7–8) or −1 (a detractor, 0–6); the NPS
is 100 × the mean score, i.e. 100 × (p − d) with p and d the promoters' and detractors' shares. The variance
of one score is p + d − (p − d)², so the standard error of the NPS is 100 × √((p + d − (p − d)²) / n), and
the 95 % interval is NPS ± 1.96 standard errors (normal approximation), kept within −100…100.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import case, func, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.kpis.summaries import STATE_LABELS, month_start
from crmcore.models import Branch, Campaign, Message, Survey, SurveyResponse, Task, Zone
from crmcore.privacy import small_cells
from crmcore.surveys import questions as q

Z95 = 1.959964
GROUPS = {"branch": "Branch", "zone": "Zone", "age_band": "Age band", "stage": "Lifecycle stage", "month": "Month"}


@dataclass(frozen=True)
class Score:
    responses: int
    promoters: int
    passives: int
    detractors: int

    @property
    def nps(self) -> float | None:
        return None if not self.responses else 100.0 * (self.promoters - self.detractors) / self.responses

    @property
    def interval(self) -> tuple[float, float] | None:
        if not self.responses:
            return None
        return interval(self.promoters, self.passives, self.detractors)


def interval(promoters: int, passives: int, detractors: int) -> tuple[float, float]:
    """The NPS's 95 % interval (see the module's method), within −100…100."""
    n = promoters + passives + detractors
    if n <= 0:
        raise ValueError("An NPS needs at least one answer.")
    p, d = promoters / n, detractors / n
    nps = 100.0 * (p - d)
    half = 100.0 * Z95 * math.sqrt(max(p + d - (p - d) ** 2, 0.0) / n)
    return max(-100.0, nps - half), min(100.0, nps + half)


def _counts():
    nps = SurveyResponse.nps
    return (
        func.count(nps).label("responses"),
        func.sum(case((nps >= 9, 1), else_=0)).label("promoters"),
        func.sum(case((nps.between(7, 8), 1), else_=0)).label("passives"),
        func.sum(case((nps <= q.DETRACTOR_MAX, 1), else_=0)).label("detractors"),
    )


def summary(session: Session, *, actor: Actor, survey_id: int) -> dict[str, Any]:
    """Responses, NPS and its interval, response rate against messages sent, followed-up count (no groups)."""
    require(actor, Perm.VIEW_DASHBOARD)
    row = session.execute(select(*_counts()).where(SurveyResponse.survey_id == survey_id)).one()
    score = Score(int(row.responses or 0), int(row.promoters or 0), int(row.passives or 0), int(row.detractors or 0))
    answered = session.execute(select(func.count()).select_from(SurveyResponse).where(SurveyResponse.survey_id == survey_id)).scalar()
    from_patrons = session.execute(  # distinct: a patron sent the survey by two campaigns answered once
        select(func.count(func.distinct(SurveyResponse.id))).select_from(SurveyResponse).join(Message, Message.patron_id == SurveyResponse.patron_id)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(SurveyResponse.survey_id == survey_id, Campaign.survey_id == survey_id, Message.status == "sent")
        .where(SurveyResponse.submitted_at >= Message.sent_at)
    ).scalar()
    sent = session.execute(
        select(func.count(func.distinct(Message.patron_id))).join(Campaign, Campaign.id == Message.campaign_id).where(Campaign.survey_id == survey_id, Message.status == "sent")
    ).scalar()
    follow = session.execute(
        select(func.count(SurveyResponse.task_id), func.count(Task.done_at)).outerjoin(Task, Task.id == SurveyResponse.task_id).where(SurveyResponse.survey_id == survey_id)
    ).one()
    low_high = score.interval
    return {
        "answers": int(answered or 0), "nps_answers": score.responses, "nps": score.nps, "low": low_high[0] if low_high else None,
        "high": low_high[1] if low_high else None, "promoters": score.promoters, "passives": score.passives, "detractors": score.detractors,
        "sent": int(sent or 0), "answered_after_message": int(from_patrons or 0),
        "response_rate": (from_patrons or 0) / sent if sent else None, "follow_ups": int(follow[0] or 0), "followed_up": int(follow[1] or 0),
    }


def _group_column(by: str):
    if by == "branch":
        return func.coalesce(Branch.name, "unknown"), lambda query: query.outerjoin(Branch, Branch.id == SurveyResponse.branch_id)
    if by == "zone":
        return func.coalesce(Zone.name, "unknown"), lambda query: query.outerjoin(Zone, Zone.id == SurveyResponse.zone_id)
    if by == "age_band":
        return func.coalesce(SurveyResponse.age_band, "unknown"), lambda query: query
    if by == "stage":
        return func.coalesce(SurveyResponse.stage, "unknown"), lambda query: query
    if by == "month":
        return month_start(SurveyResponse.submitted_at), lambda query: query
    raise ValueError(f"Group by: {by!r} is not one of {', '.join(GROUPS.values())}.")


def by_group(session: Session, *, actor: Actor, survey_id: int, by: str) -> pd.DataFrame:
    """NPS and its interval per group (branch, zone, age band, lifecycle stage or month of the answer);
    groups of fewer than k answers, and one more when a lone one could be worked out from the total, read "<k"."""
    require(actor, Perm.VIEW_DASHBOARD)
    column, joined = _group_column(by)
    query = joined(select(column.label("group"), *_counts()).select_from(SurveyResponse)).where(SurveyResponse.survey_id == survey_id, SurveyResponse.nps.is_not(None))
    rows = session.execute(query.group_by(column).order_by(column)).all()
    records = []
    for group, n, promoters, passives, detractors in rows:
        score = Score(int(n), int(promoters), int(passives), int(detractors))
        low, high = score.interval
        label = STATE_LABELS.get(group, group) if by == "stage" else (str(group)[:7] if by == "month" else group)
        records.append({"group": label, "responses": score.responses, "nps": round(score.nps, 1), "low": round(low, 1), "high": round(high, 1)})
    frame = pd.DataFrame(records, columns=["group", "responses", "nps", "low", "high"])
    k = int(settings.get(session, "small_cell_k"))
    return small_cells.suppress_column(frame, k, sizes="responses", values=["nps", "low", "high"], complement=True)


def distributions(session: Session, *, actor: Actor, survey_id: int) -> pd.DataFrame:
    """How many gave each answer to each question with set answers (scores, choices, yes/no); small counts "<k"."""
    require(actor, Perm.VIEW_DASHBOARD)
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise LookupError(f"There is no survey {survey_id}.")
    counts: dict[str, dict[str, int]] = {}
    # One survey's answers (not patrons): their JSON is read and counted here, the same on both backends.
    for (answers,) in session.execute(select(SurveyResponse.answers).where(SurveyResponse.survey_id == survey_id)):
        for key, value in answers.items():
            for one in value if isinstance(value, list) else [value]:
                shown = "yes" if one is True else "no" if one is False else str(one)
                counts.setdefault(key, {}).setdefault(shown, 0)
                counts[key][shown] += 1
    k = int(settings.get(session, "small_cell_k"))
    parts = []
    for item in survey.questions:
        kind = item["type"]
        if kind == "text":
            continue
        options = {"nps": [str(i) for i in range(11)], "rating": [str(i) for i in range(1, 6)], "contact": ["yes", "no"]}.get(kind, item.get("choices", []))
        frame = pd.DataFrame({"question": item["text"], "answer": options, "answers": [counts.get(item["key"], {}).get(o, 0) for o in options]})
        # A several-choices question's counts are not parts of one total: no complementary cells there.
        parts.append(small_cells.suppress_column(frame, k, sizes="answers", complement=kind != "multiple"))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["question", "answer", "answers"])
