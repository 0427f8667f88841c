"""Small builders for survey tests: a survey, open; and answering it as a patron would (through crmcore)."""

from __future__ import annotations

from crmcore.surveys import definitions, responses, tokens

QUESTIONS = [
    {"type": "nps", "text": "How likely are you to recommend the library?"},
    {"type": "single", "text": "Which branch do you use most?", "choices": ["Main", "East"]},
    {"type": "multiple", "text": "What do you come for?", "choices": ["Books", "Events", "Computers"]},
    {"type": "rating", "text": "How was your visit?"},
    {"type": "text", "text": "Anything else?"},
    {"type": "contact", "text": "May we contact you?"},
]


def add_survey(session, actor, *, name: str = "Visit survey", status: str = "open", staff_id: int | None = None, role: str | None = "outreach") -> int:
    survey = definitions.save(session, actor=actor, name=name, questions=QUESTIONS, follow_up_staff_id=staff_id, follow_up_role=None if staff_id else role)
    if status != "draft":
        survey.status = status
        session.add(survey)
    return survey.id


def fields(nps: int | None = None, *, text: str = "", contact: str = "", single: str = "", multiple: tuple[str, ...] = ()) -> dict[str, list[str]]:
    out = {"q1": [] if nps is None else [str(nps)], "q2": [single] if single else [], "q3": list(multiple), "q5": [text] if text else [], "q6": [contact] if contact else []}
    return out


def answer(session, survey_id: int, patron_id: int | None, nps: int | None = None, **kwargs):
    """Answer as the survey page would post it (its form token included)."""
    token = tokens.maker(survey_id)(patron_id) if patron_id is not None else tokens.anonymous(survey_id)
    form_token = tokens.form_token(tokens.read(token))
    return responses.answer(session, token=token, form_token=form_token, fields=fields(nps, **kwargs))


def case_survey(session, *, status: str = "draft") -> int:
    """For permission CASES: a survey written straight to the table (no actor needed)."""
    from crmcore.models import Survey
    from crmcore.surveys import questions

    survey = Survey(name=f"Case survey {status}", questions=questions.checked(QUESTIONS), status=status, follow_up_role="outreach")
    session.add(survey)
    session.flush()
    return survey.id
