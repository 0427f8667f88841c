"""Surveys as staff build them: create and change a draft, open it to answers, close it; who follows up."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, Role, allowed, require
from crmcore.models import Branch, Survey, utcnow
from crmcore.outreach import tasks
from crmcore.privacy import audit
from crmcore.surveys import questions as q

STATUSES = {"draft": "draft", "open": "open to answers", "closed": "closed"}


def get(session: Session, survey_id: int) -> Survey:
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise LookupError(f"There is no survey {survey_id}.")
    return survey


def list_surveys(session: Session, *, actor: Actor) -> list[Survey]:
    """Every survey, newest first."""
    require(actor, Perm.VIEW_DASHBOARD)
    return list(session.exec(select(Survey).order_by(Survey.id.desc())))


def choices(session: Session, *, actor: Actor, status: str | None = None) -> dict[int, str]:
    """Survey id → name (a campaign's survey picker: open and draft surveys)."""
    require(actor, Perm.VIEW_DASHBOARD)
    query = select(Survey.id, Survey.name).order_by(Survey.name)
    if status:
        query = query.where(Survey.status == status)
    return {i: n for i, n in session.exec(query)}


def _follow_up(session: Session, staff_id: int | None, role: str | None, by_branch: dict[Any, Any] | None) -> tuple[int | None, str | None, dict[str, int] | None]:
    if staff_id is not None:
        tasks.check_assignee(session, staff_id)
    if role:
        if role not in {r.value for r in Role} or not allowed(Role(role), Perm.VIEW_OUTREACH):
            raise ValueError(f"Follow-ups go to: the {role} role cannot see follow-ups; choose outreach, manager or admin.")
    branches: dict[str, int] = {}
    for branch_id, assignee in (by_branch or {}).items():
        if assignee is None:
            continue
        branch = session.get(Branch, int(branch_id))
        if branch is None:
            raise ValueError(f"Follow-ups by branch: there is no branch {branch_id}.")
        try:
            branches[str(branch.id)] = tasks.check_assignee(session, int(assignee))
        except ValueError as exc:
            raise ValueError(f"Follow-ups for {branch.name}: {exc}") from None
    if staff_id is None and not role and not branches:
        raise ValueError("Follow-ups go to: choose a staff member or a role to follow up unhappy answers and requests to be contacted.")
    return staff_id, role or None, branches or None


def save(
    session: Session,
    *,
    actor: Actor,
    name: str,
    questions: list[dict[str, Any]],
    intro: str = "",
    follow_up_staff_id: int | None = None,
    follow_up_role: str | None = None,
    follow_up_by_branch: dict[Any, Any] | None = None,
    survey_id: int | None = None,
) -> Survey:
    """Create a draft survey, or change one (`survey_id`); ValueError naming the field, nothing changed."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    name = " ".join((name or "").split())
    if not name:
        raise ValueError("Name: give the survey a name.")
    if len(name) > 120:
        raise ValueError(f"Name: at most 120 characters (got {len(name)}).")
    intro = (intro or "").strip()
    if len(intro) > 1000:
        raise ValueError(f"Introduction: at most 1,000 characters (got {len(intro)}).")
    checked = q.checked(questions)
    staff_id, role, by_branch = _follow_up(session, follow_up_staff_id, follow_up_role, follow_up_by_branch)
    same = session.exec(select(Survey.id).where(Survey.name == name)).first()
    if same is not None and same != survey_id:
        raise ValueError(f"Name: there is already a survey called {name!r}.")
    if survey_id is None:
        survey = Survey(name=name, questions=checked, created_by_id=actor.id)
    else:
        survey = get(session, survey_id)
        if survey.status != "draft":
            raise ValueError(f"Survey {survey.name!r} is {STATUSES[survey.status]}; only a draft's questions can be changed.")
    survey.name, survey.intro, survey.questions = name, intro or None, checked
    survey.follow_up_staff_id, survey.follow_up_role, survey.follow_up_by_branch = staff_id, role, by_branch
    survey.updated_at = utcnow()
    session.add(survey)
    session.flush()
    audit.record(session, actor=actor, action="survey.save", entity="survey", entity_id=survey.id, detail={"name": name, "questions": len(checked)})
    return survey


def set_status(session: Session, *, actor: Actor, survey_id: int, status: str) -> Survey:
    """Open a draft to answers, close an open survey, or open a closed one again; audited."""
    require(actor, Perm.LAUNCH_CAMPAIGNS)
    survey = get(session, survey_id)
    allowed_moves = {("draft", "open"), ("open", "closed"), ("closed", "open")}
    if (survey.status, status) not in allowed_moves:
        raise ValueError(f"Survey {survey.name!r} is {STATUSES.get(survey.status, survey.status)}; it cannot become {STATUSES.get(status, status)}.")
    survey.status = status
    if status == "open":
        survey.opened_at, survey.closed_at = survey.opened_at or utcnow(), None
    else:
        survey.closed_at = utcnow()
    survey.updated_at = utcnow()
    session.add(survey)
    audit.record(session, actor=actor, action=f"survey.{status}", entity="survey", entity_id=survey.id)
    return survey


def branch_choices(session: Session, *, actor: Actor) -> dict[int, str]:
    """Branch id → name, for choosing who follows up each branch's answers."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    return {i: n for i, n in session.exec(select(Branch.id, Branch.name).order_by(Branch.name))}
