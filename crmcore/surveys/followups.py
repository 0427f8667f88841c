"""Closing the loop: a detractor (0–6) or a "please contact me" becomes a task in someone's My follow-ups.

The task carries the answers (not the free text, which is personal data shown only on the Surveys page);
when the assignee completes it, the response shows it followed up (the task's completion is its record).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func
from sqlmodel import Session, select

from crmcore.admin.permissions import Perm, Role, allowed
from crmcore.models import StaffUser, Survey, SurveyResponse, Task
from crmcore.privacy import audit
from crmcore.surveys import questions as q


def needs_follow_up(response: SurveyResponse) -> bool:
    return (response.nps is not None and response.nps <= q.DETRACTOR_MAX) or response.contact_ok is True


def assignee(session: Session, survey: Survey, branch_id: int | None) -> int | None:
    """Who follows up an answer from a patron of `branch_id`: the branch's chosen staff member, else the
    survey's, else the active member of its role with the fewest open tasks (None: nobody can)."""
    by_branch = survey.follow_up_by_branch or {}
    candidates = [by_branch.get(str(branch_id)) if branch_id is not None else None, survey.follow_up_staff_id]
    for staff_id in candidates:
        user = session.get(StaffUser, staff_id) if staff_id else None
        if user is not None and user.is_active and allowed(Role(user.role), Perm.VIEW_OUTREACH):
            return user.id
    if not survey.follow_up_role:
        return None
    open_tasks = select(func.count()).select_from(Task).where(Task.assignee_id == StaffUser.id, Task.done_at.is_(None)).scalar_subquery()
    row = session.exec(
        select(StaffUser.id).where(StaffUser.is_active, StaffUser.role == survey.follow_up_role).order_by(open_tasks, StaffUser.id)
    ).first()
    return row


def open_or_update(session: Session, survey: Survey, response: SurveyResponse, *, today: date) -> Task | None:
    """Create the follow-up task of a response that needs one (once), or bring its notes up to date."""
    if response.patron_id is None or not needs_follow_up(response):
        return None
    notes = (
        f"Patron #{response.patron_id} answered the survey {survey.name!r}.\n"
        + q.described(survey.questions, response.answers)
        + "\nFree-text answers, if any: on the Surveys page (personal data)."
    )
    task = session.get(Task, response.task_id) if response.task_id else None
    if task is not None:
        if task.done_at is None:
            task.notes = notes
            session.add(task)
        return task
    staff_id = assignee(session, survey, response.branch_id)
    if staff_id is None:
        # Not dropped silently: the system notes it, and the results page lists the response as not followed up.
        audit.record(session, actor=None, action="survey.follow_up_unassigned", entity="survey_response", entity_id=response.id)
        return None
    why = f"score {response.nps}" if response.nps is not None and response.nps <= q.DETRACTOR_MAX else "asked to be contacted"
    task = Task(title=f"Survey follow-up: {survey.name} ({why})"[:200], notes=notes, due_on=today, assignee_id=staff_id)
    session.add(task)
    session.flush()
    response.task_id = task.id
    session.add(response)
    audit.record(session, actor=None, action="survey.follow_up", entity="task", entity_id=task.id, detail={"survey": survey.id, "response": response.id, "assignee_id": staff_id})
    return task
