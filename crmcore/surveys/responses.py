"""Answers to surveys: the public page's data, recording an answer (a `survey_response` activity plus the
answers; one per patron per survey, changed in place while the survey is open), and the free-text answers,
which are personal data (shown with VIEW_PII and audited, in the access export, erased, purged by retention)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import delete, func, or_, select, update
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.kpis import summaries
from crmcore.languages.catalogues import N_
from crmcore.library import activity
from crmcore.models import ActivityEvent, ActivityMonthly, Patron, Survey, SurveyResponse, SurveyText, Task, utcnow
from crmcore.privacy import audit
from crmcore.surveys import followups, tokens
from crmcore.surveys import questions as q

CLOSED = N_("This survey is closed: thank you, answers are no longer taken.")
NOT_OPEN = N_("This survey is not open yet. Please try again later.")
MAX_TEXT_ROWS = 500


@dataclass(frozen=True)
class Form:
    """What the public page shows: the survey, the patron's earlier answers (to change), and its form token."""

    title: str
    intro: str
    questions: list[dict[str, Any]]
    answers: dict[str, Any]
    texts: dict[str, str]
    form_token: str
    answered: bool


def _open_survey(session: Session, link: tokens.Link) -> Survey:
    survey = session.get(Survey, link.survey_id)
    if survey is None:
        raise ValueError(tokens.INVALID)
    if survey.status == "draft":
        raise ValueError(NOT_OPEN)
    if survey.status == "closed":
        raise ValueError(CLOSED)
    if link.patron_id is not None:
        patron = session.get(Patron, link.patron_id)
        if patron is None or patron.erased_at is not None:
            raise ValueError(tokens.INVALID)
    return survey


def _mine(session: Session, link: tokens.Link) -> SurveyResponse | None:
    if link.patron_id is None:
        return None
    return session.scalars(select(SurveyResponse).where(SurveyResponse.survey_id == link.survey_id, SurveyResponse.patron_id == link.patron_id)).first()


def form(session: Session, *, token: str) -> Form:
    """The survey page for a link (a patron's earlier answers filled in); ValueError for the patron."""
    link = tokens.read(token)
    survey = _open_survey(session, link)
    mine = _mine(session, link)
    texts = {} if mine is None else {t.question: t.text for t in session.scalars(select(SurveyText).where(SurveyText.response_id == mine.id))}
    return Form(title=survey.name, intro=survey.intro or "", questions=survey.questions, answers=dict(mine.answers) if mine else {},
                texts=texts, form_token=tokens.form_token(link), answered=mine is not None)


def patron_language(session: Session, *, token: str) -> str | None:
    """The preferred language of the patron a survey link is for (None: the anonymous link, a bad link, none on
    file): the page speaks it, even to say the survey is closed."""
    try:
        link = tokens.read(token)
    except ValueError:
        return None
    if link.patron_id is None:
        return None
    return session.scalar(select(Patron.language).where(Patron.id == link.patron_id, Patron.erased_at.is_(None)))


def stage(session: Session, patron: Patron, today: date) -> str:
    """The patron's lifecycle stage this month, as the dashboard classifies it (from the monthly rollups)."""
    current = summaries.month_index(today)
    first = summaries.month_of(current - 12)
    months = session.execute(
        select(ActivityMonthly.month).where(ActivityMonthly.patron_id == patron.id, ActivityMonthly.month >= first).distinct()
    ).scalars()
    active = np.zeros((1, 13), dtype=np.int32)
    for month in months:
        offset = summaries.month_index(month) - (current - 12)
        if 0 <= offset <= 12:
            active[0, offset] = 1
    registered = np.array([patron.registered_on.toordinal() if patron.registered_on else 0])
    return summaries.STATES[int(summaries.classify(active, registered, current)[0, 0])]


def answer(session: Session, *, token: str, form_token: str | None, fields: dict[str, list[str]], today: date | None = None) -> SurveyResponse:
    """Record the answers posted to a survey page (a patron's replace their earlier ones); ValueError for the
    patron, nothing changed, on a bad token, a post without its form token, a closed survey or a bad answer."""
    link = tokens.read(token)
    tokens.check_form(link, form_token)
    survey = _open_survey(session, link)
    answers, texts = q.read_answers(survey.questions, fields)
    today = today or utcnow().date()
    now = utcnow()
    response = _mine(session, link)
    if response is None:
        response = SurveyResponse(survey_id=survey.id, patron_id=link.patron_id, answers={}, submitted_at=now)
        if link.patron_id is not None:
            patron = session.get(Patron, link.patron_id)
            response.branch_id, response.zone_id = patron.branch_id, patron.zone_id
            response.age_band = summaries.age_band(patron.age_band, patron.birth_year, today) or None
            response.stage = stage(session, patron, today)
            event = ActivityEvent(patron_id=patron.id, occurred_on=today, kind="survey_response", branch_id=patron.branch_id, count=1)
            session.add(event)
            session.flush()
            response.activity_event_id = event.id
            # Into the rollups and the dashboard at once; a full rebuild, when one is due, is left to the worker.
            activity.rebuild_rollups(session, since=activity.first_of_month(today), patrons=[patron.id], rebuild_now=False)
    response.answers = answers
    response.nps, response.contact_ok = q.nps_of(survey.questions, answers), q.contact_of(survey.questions, answers)
    response.updated_at = now
    session.add(response)
    session.flush()
    session.execute(delete(SurveyText).where(SurveyText.response_id == response.id))
    for key, text in texts.items():
        session.add(SurveyText(response_id=response.id, question=key, text=text, written_on=today))
    followups.open_or_update(session, survey, response, today=today)
    return response


def texts(session: Session, *, actor: Actor, survey_id: int, search: str = "") -> list[dict[str, Any]]:
    """The free-text answers of a survey, newest first, optionally those containing `search`; audited."""
    require(actor, Perm.VIEW_PII)
    query = (
        select(SurveyResponse.id, SurveyResponse.patron_id, SurveyResponse.submitted_at, SurveyResponse.nps, SurveyText.question, SurveyText.text, Task.done_at)
        .join(SurveyText, SurveyText.response_id == SurveyResponse.id)
        .outerjoin(Task, Task.id == SurveyResponse.task_id)
        .where(SurveyResponse.survey_id == survey_id)
        .order_by(SurveyResponse.submitted_at.desc(), SurveyResponse.id.desc(), SurveyText.question)
        .limit(MAX_TEXT_ROWS)
    )
    search = (search or "").strip()
    if search:
        query = query.where(func.lower(SurveyText.text).contains(search.lower(), autoescape=True))
    survey = session.get(Survey, survey_id)
    wording = {item["key"]: item["text"] for item in (survey.questions if survey else [])}
    rows = [
        {"answered_at": at, "patron": f"#{pid}" if pid else "anonymous", "score": nps, "question": wording.get(key, key), "answer": text,
         "followed_up": done}
        for _rid, pid, at, nps, key, text, done in session.execute(query)
    ]
    audit.record(session, actor=actor, action="survey.texts_view", entity="survey", entity_id=survey_id,
                 detail={"shown": len(rows), "search": bool(search), "patron_ids": sorted({int(r["patron"][1:]) for r in rows if r["patron"] != "anonymous"})})
    return rows


def for_patron(session: Session, patron_id: int) -> list[dict[str, Any]]:
    """A patron's answers with their free text, for the access export (its caller is authorised and audits)."""
    rows = session.execute(
        select(SurveyResponse.id, Survey.name, Survey.questions, SurveyResponse.answers, SurveyResponse.submitted_at, SurveyResponse.updated_at)
        .join(Survey, Survey.id == SurveyResponse.survey_id)
        .where(SurveyResponse.patron_id == patron_id)
        .order_by(SurveyResponse.id)
    ).all()
    written = {}
    if rows:
        for rid, key, text in session.execute(select(SurveyText.response_id, SurveyText.question, SurveyText.text).where(SurveyText.response_id.in_([r[0] for r in rows]))):
            written.setdefault(rid, {})[key] = text
    out = []
    for rid, name, questions, answers, submitted, updated in rows:
        shown = q.described(questions, answers)
        extra = "\n".join(f"{item['text']}: {written[rid][item['key']]}" for item in questions if item["key"] in written.get(rid, {}))
        out.append({"survey": name, "answered_at": submitted.isoformat(), "changed_at": updated.isoformat(), "answers": "\n".join(p for p in (shown, extra) if p)})
    return out


def erase_patron(session: Session, patron_id: int) -> int:
    """Erasure: the patron's free text goes, their answers stay as anonymous figures; how many responses."""
    ids = list(session.execute(select(SurveyResponse.id).where(SurveyResponse.patron_id == patron_id)).scalars())
    if ids:
        session.execute(delete(SurveyText).where(SurveyText.response_id.in_(ids)))
        session.execute(update(SurveyResponse).where(SurveyResponse.id.in_(ids)).values(patron_id=None))
    return len(ids)


def purge_texts(session: Session, *, before: date) -> int:
    """Retention: free-text answers written before `before` are deleted; how many."""
    return session.execute(delete(SurveyText).where(or_(SurveyText.written_on < before))).rowcount or 0
