"""Survey questions: the kinds there are, checking a survey's list, and reading a posted answer.

A question is a dict: {"key": "q1", "type": one of TYPES, "text": what the patron reads, "choices": [...]
for the choice kinds, "required": bool}. Keys are given by crmcore (q1, q2, …), never typed by staff.
"""

from __future__ import annotations

from typing import Any

from crmcore.languages.catalogues import N_, Refusal

TYPES = {
    "nps": "How likely to recommend (0 to 10)",
    "rating": "Rating (1 to 5)",
    "single": "One choice",
    "multiple": "Several choices",
    "text": "Short text",
    "contact": "May we contact you?",
}
CHOICE_TYPES = ("single", "multiple")
MAX_QUESTIONS = 20
MAX_TEXT = 1000  # characters of a patron's short-text answer
MAX_CHOICES = 12
DETRACTOR_MAX = 6  # 0–6: detractor; 7–8 passive; 9–10 promoter


def checked(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The questions as stored (keys q1…, tidy text); ValueError naming the question on anything wrong."""
    if not questions:
        raise ValueError("Questions: a survey needs at least one question.")
    if len(questions) > MAX_QUESTIONS:
        raise ValueError(f"Questions: at most {MAX_QUESTIONS} (got {len(questions)}).")
    out, kinds = [], []
    for n, question in enumerate(questions, start=1):
        where = f"Question {n}"
        kind = str(question.get("type") or "")
        if kind not in TYPES:
            raise ValueError(f"{where}: there is no question type {kind!r}; the types are: {', '.join(TYPES.values())}.")
        text = " ".join(str(question.get("text") or "").split())
        if not text:
            raise ValueError(f"{where}: write the question.")
        if len(text) > 300:
            raise ValueError(f"{where}: at most 300 characters (got {len(text)}).")
        item: dict[str, Any] = {"key": f"q{n}", "type": kind, "text": text, "required": bool(question.get("required", kind == "nps"))}
        if kind in CHOICE_TYPES:
            choices = [" ".join(str(c).split()) for c in question.get("choices") or []]
            choices = [c for c in choices if c]
            if len(choices) < 2:
                raise ValueError(f"{where}: give at least two choices, one a line.")
            if len(choices) > MAX_CHOICES or len(set(choices)) != len(choices):
                raise ValueError(f"{where}: at most {MAX_CHOICES} choices, each once.")
            item["choices"] = choices
        kinds.append(kind)
        out.append(item)
    for once in ("nps", "contact"):
        if kinds.count(once) > 1:
            raise ValueError(f"Questions: at most one question of the type {TYPES[once]!r}.")
    return out


def read_answers(questions: list[dict[str, Any]], form: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """(answers, free texts) from posted fields (name → values); ValueError for the patron naming the question."""
    answers: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for n, q in enumerate(questions, start=1):
        key, kind = q["key"], q["type"]
        values = [v.strip() for v in form.get(key, []) if v.strip()]
        where = {"n": n, "question": q["text"]}
        if not values:
            if q.get("required"):
                raise Refusal(N_("Question {n} ({question}): please answer this question."), **where)
            continue
        if kind in ("nps", "rating"):
            low, high = (0, 10) if kind == "nps" else (1, 5)
            try:
                score = int(values[0])
            except ValueError:
                score = None
            if score is None or not low <= score <= high:
                raise Refusal(N_("Question {n} ({question}): choose a number from {low} to {high}."), **where, low=low, high=high)
            answers[key] = score
        elif kind == "single":
            if values[0] not in q["choices"]:
                raise Refusal(N_("Question {n} ({question}): choose one of the choices shown."), **where)
            answers[key] = values[0]
        elif kind == "multiple":
            unknown = [v for v in values if v not in q["choices"]]
            if unknown:
                raise Refusal(N_("Question {n} ({question}): choose among the choices shown."), **where)
            answers[key] = [c for c in q["choices"] if c in values]
        elif kind == "contact":
            if values[0] not in ("yes", "no"):
                raise Refusal(N_("Question {n} ({question}): answer yes or no."), **where)
            answers[key] = values[0] == "yes"
        else:  # text
            text = values[0]
            if len(text) > MAX_TEXT:
                raise Refusal(N_("Question {n} ({question}): at most {most} characters (got {got})."), **where, most=MAX_TEXT, got=len(text))
            texts[key] = text
    return answers, texts


def nps_of(questions: list[dict[str, Any]], answers: dict[str, Any]) -> int | None:
    return next((answers.get(q["key"]) for q in questions if q["type"] == "nps"), None)


def contact_of(questions: list[dict[str, Any]], answers: dict[str, Any]) -> bool | None:
    return next((answers.get(q["key"]) for q in questions if q["type"] == "contact"), None)


def described(questions: list[dict[str, Any]], answers: dict[str, Any]) -> str:
    """The answers in plain lines (no free text): what a follow-up task carries."""
    lines = []
    for q in questions:
        value = answers.get(q["key"])
        if value is None:
            continue
        shown = ", ".join(value) if isinstance(value, list) else ("yes" if value is True else "no" if value is False else str(value))
        lines.append(f"{q['text']}: {shown}")
    return "\n".join(lines)
