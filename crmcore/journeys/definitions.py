"""What a journey is: its trigger, its steps (send, wait, branch, end), exits, re-entry and goal; the five
ready-made templates; and `validate`, which refuses a definition with a message saying which step and field.

A definition is JSON kept in a journey version:
`{"trigger": {"kind", "days", "segment_id", "rule"}, "steps": [...], "exits": [...], "reentry_days", "goal", "goal_days"}`.
Steps are a vertical list run top to bottom: `{"kind": "send", "channel", "topic", "subject", "body", "survey_id", "variants"}`
(channel "email", or "sms" for a text message, which has no subject; the survey its {{ survey_link }} opens, if any;
the words in other languages, `{"es": {"subject", "body"}}`, which a patron of that language gets instead),
`{"kind": "wait", "days"}`, `{"kind": "branch", "rule", "otherwise"}` (the rule is any segment rule, kept in the
step; patrons matching it go on to
the next step, the others to step `otherwise` — an index further down — or, when it is None, to the end),
`{"kind": "end"}`. Withdrawn consent and erasure always end an enrolment; `exits` adds the optional ones.
"""

from __future__ import annotations

import copy
from typing import Any

from crmcore.campaigns import templates
from crmcore.campaigns.drafts import TEXT_SUBJECT
from crmcore.campaigns.rules.language import validate as validate_rule
from crmcore.languages import codes, variants
from crmcore.library import consent

TRIGGERS = {
    "registered": "Registered (days after registration)",
    "first_activity": "First activity (days after it)",
    "card_expiry": "Card expiry date (days before it)",
    "attended": "Attended a program (days after it)",
    "segment": "Entered a segment",
}
STEP_KINDS = {"send": "Send a message", "wait": "Wait", "branch": "Branch on a condition", "end": "End"}
EXITS = {"became_active": "Became active", "renewed": "Renewed their card"}
# Always applied, whatever the journey says: the patron's choice and erasure end an enrolment.
ALWAYS_EXITS = {"no_consent": "Withdrew consent", "erased": "Erased"}
GOALS = {"activity": "Any library activity", "renewal": "Renewed their card"}
CHANNELS = {"email": "Email", "sms": "Text message"}
MAX_STEPS = 30
MAX_DAYS = 3650

_NEVER_ACTIVE = {"field": "days_since_activity", "op": "never"}
_LAPSED = {"field": "days_since_activity", "op": ">=", "value": 180}


def _send(topic: str, subject: str, body: str) -> dict[str, Any]:
    return {"kind": "send", "channel": "email", "topic": topic, "subject": subject, "body": body}


def _wait(days: int) -> dict[str, Any]:
    return {"kind": "wait", "days": days}


_SIGN = "\n\nYour {{ library_name }}\n\nChange what you receive: {{ preferences_url }}"

TEMPLATES: dict[str, dict[str, Any]] = {
    "welcome": {
        "label": "Welcome",
        "description": "New patron: a welcome on day 0, what the card opens on day 7, a nudge on day 30 only if no activity yet.",
        "definition": {
            "trigger": {"kind": "registered", "days": 0},
            "steps": [
                _send("services", "Welcome to {{ library_name }}", "Hello {{ first_name }},\n\nwelcome to the library!" + _SIGN),
                _wait(7),
                _send("services", "What your card opens", "Hello {{ first_name }},\n\nyour card opens books, films, e-books, computers and programs." + _SIGN),
                _wait(23),
                {"kind": "branch", "rule": _NEVER_ACTIVE, "otherwise": None},
                _send("services", "We are here for you", "Hello {{ first_name }},\n\ncome and see us at {{ branch }}." + _SIGN),
                {"kind": "end"},
            ],
            "exits": [], "reentry_days": None, "goal": "activity", "goal_days": 30,
        },
    },
    "first_use": {
        "label": "First use",
        "description": "Registered 30 days ago and no activity yet: one invitation.",
        "definition": {
            "trigger": {"kind": "registered", "days": 30, "rule": _NEVER_ACTIVE},
            "steps": [_send("services", "Your card is waiting", "Hello {{ first_name }},\n\nyour card has not been used yet: here is how to start." + _SIGN), {"kind": "end"}],
            "exits": ["became_active"], "reentry_days": None, "goal": "activity", "goal_days": 30,
        },
    },
    "we_miss_you": {
        "label": "We miss you",
        "description": "No activity for 180 days: two messages a month apart; ends when they return.",
        "definition": {
            "trigger": {"kind": "segment", "rule": _LAPSED},
            "steps": [
                _send("newsletter", "We miss you", "Hello {{ first_name }},\n\nit has been a while: see what is new at {{ branch }}." + _SIGN),
                _wait(30),
                _send("newsletter", "Still here for you", "Hello {{ first_name }},\n\nthe library is still here for you." + _SIGN),
                {"kind": "end"},
            ],
            "exits": ["became_active"], "reentry_days": 365, "goal": "activity", "goal_days": 60,
        },
    },
    "card_renewal": {
        "label": "Card renewal",
        "description": "Card expires in 30 days: a reminder then, again at 7 days, once after expiry; ends when renewed.",
        "definition": {
            "trigger": {"kind": "card_expiry", "days": 30},
            "steps": [
                _send("services", "Your card expires soon", "Hello {{ first_name }},\n\nyour library card expires in 30 days." + _SIGN),
                _wait(23),
                _send("services", "Your card expires in a week", "Hello {{ first_name }},\n\nyour library card expires in a week." + _SIGN),
                _wait(8),
                _send("services", "Your card has expired", "Hello {{ first_name }},\n\nyour card has expired; renewing takes a minute." + _SIGN),
                {"kind": "end"},
            ],
            "exits": ["renewed"], "reentry_days": 300, "goal": "renewal", "goal_days": 60,
        },
    },
    "after_event": {
        "label": "After the event",
        "description": "Attended a program: thanks the next day, with the programs coming up.",
        "definition": {
            "trigger": {"kind": "attended", "days": 1},
            "steps": [_send("events", "Thank you for coming", "Hello {{ first_name }},\n\nthank you for coming; more programs are coming up at {{ branch }}." + _SIGN),
                      {"kind": "end"}],
            "exits": [], "reentry_days": 30, "goal": "activity", "goal_days": 30,
        },
    },
}


def template(name: str) -> dict[str, Any]:
    """A copy of a template's definition; ValueError for an unknown template."""
    if name not in TEMPLATES:
        raise ValueError(f"Template: there is no template {name!r}; the templates are {', '.join(t['label'] for t in TEMPLATES.values())}.")
    return copy.deepcopy(TEMPLATES[name]["definition"])


def blank() -> dict[str, Any]:
    """A definition to build from scratch: one message to write over (a valid one, so the draft can be kept)."""
    first = _send("services", "A message from {{ library_name }}", "Hello {{ first_name }},\n\n" + _SIGN.lstrip("\n"))
    return {"trigger": {"kind": "registered", "days": 0}, "steps": [first, {"kind": "end"}], "exits": [], "reentry_days": None,
            "goal": "activity", "goal_days": 30}


def _days(value: Any, where: str, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_DAYS:
        raise ValueError(f"{where}: a whole number of days from {low} to {MAX_DAYS}.")
    return value


def step_label(number: int, step: dict[str, Any]) -> str:
    """"Step 3 (Wait)": how the builder names a step."""
    return f"Step {number} ({STEP_KINDS.get(step.get('kind'), 'unknown')})" if isinstance(step, dict) else f"Step {number}"


def subject_of(step: dict[str, Any]) -> str:
    """A send step's subject; a text message has none (what its campaign row keeps instead)."""
    return TEXT_SUBJECT if step.get("channel") == "sms" else step.get("subject") or ""


def words_of(step: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """A send step's words in other languages: language → (subject, body), as `variants.pick` takes them
    (a text's subject is what its campaign row keeps)."""
    return {code: (subject_of(step) if step.get("channel") == "sms" else words.get("subject") or "", words.get("body") or "")
            for code, words in (step.get("variants") or {}).items()}


def words_for(step: dict[str, Any], language: str | None) -> tuple[str, str]:
    """The (subject, body) of a send step a patron of `language` gets: their language's words, else the step's own."""
    return variants.pick((subject_of(step), step.get("body") or ""), words_of(step), language)


def with_words(definition: dict[str, Any], *, index: int, language: str | None, subject: str = "", body: str = "",
               remove: bool = False) -> tuple[dict[str, Any], str]:
    """A copy of `definition` whose send step `index` has these words in `language` (or none in it: `remove`),
    and the language's code; ValueError naming the step and field (saving the copy is an edit, as any other)."""
    steps = definition.get("steps") or []
    if not 0 <= index < len(steps) or steps[index].get("kind") != "send":
        raise ValueError("Words in other languages: choose a step that sends a message.")
    where = step_label(index + 1, steps[index])
    try:
        code = codes.normalise(language)
    except ValueError as exc:
        raise ValueError(f"{where}, language: {exc}.") from None
    if code is None:
        raise ValueError(f"{where}, language: choose the language of these words.")
    changed = copy.deepcopy(definition)
    step = changed["steps"][index]
    words = dict(step.get("variants") or {})
    if remove:
        words.pop(code, None)
    else:
        words[code] = {"body": body} if step.get("channel") == "sms" else {"subject": subject, "body": body}
        _check_words(step, code, words[code], where)
    step["variants"] = words
    return changed, code


def _check_words(step: dict[str, Any], code: Any, words: Any, where: str) -> None:
    name = f"{where}, the words in {codes.name(code) if isinstance(code, str) else code} ({code})"
    if not isinstance(code, str) or not isinstance(words, dict):
        raise ValueError(f"{where}: words in another language need a language code and a message.")
    try:
        normal = codes.normalise(code)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}.") from None
    if normal != code:
        raise ValueError(f"{name}: write the language as its code, {normal or 'a code such as es'}.")
    try:
        templates.check(subject=subject_of(step) if step.get("channel") == "sms" else words.get("subject") or "", body=words.get("body") or "")
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def send_steps(definition: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(i, s) for i, s in enumerate(definition["steps"]) if s["kind"] == "send"]


def validate(definition: Any, *, segment_exists=None) -> None:
    """Raise ValueError naming the step and field unless the definition can run. `segment_exists(id)`
    tells whether a saved segment is there (a deleted segment refuses the journey)."""
    if not isinstance(definition, dict):
        raise ValueError("The journey has no definition.")
    trigger = definition.get("trigger")
    if not isinstance(trigger, dict) or trigger.get("kind") not in TRIGGERS:
        raise ValueError(f"Trigger: choose one of {', '.join(TRIGGERS.values())}.")
    if trigger["kind"] == "segment":
        if trigger.get("segment_id") is None and trigger.get("rule") is None:
            raise ValueError("Trigger: choose the segment patrons enter.")
        if trigger.get("segment_id") is not None and segment_exists is not None and not segment_exists(trigger["segment_id"]):
            raise ValueError("Trigger: the segment this journey starts from has been deleted; choose another.")
    else:
        _days(trigger.get("days", 0), "Trigger, number of days")
    if trigger.get("rule") is not None:
        try:
            validate_rule(trigger["rule"])
        except ValueError as exc:
            raise ValueError(f"Trigger, condition: {exc}") from None
    steps = definition.get("steps")
    if not isinstance(steps, list) or not steps:
        raise ValueError("Steps: add at least one step.")
    if len(steps) > MAX_STEPS:
        raise ValueError(f"Steps: at most {MAX_STEPS}.")
    for number, step in enumerate(steps, 1):
        where = step_label(number, step)
        if not isinstance(step, dict) or step.get("kind") not in STEP_KINDS:
            raise ValueError(f"{where}: choose what the step does ({', '.join(STEP_KINDS.values())}).")
        kind = step["kind"]
        if kind == "send":
            if step.get("channel") not in CHANNELS:
                raise ValueError(f"{where}, channel: choose {' or '.join(CHANNELS.values()).lower()}.")
            try:
                consent.check(step["channel"], step.get("topic"))
                templates.check(subject=subject_of(step), body=step.get("body") or "")
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if not isinstance(step.get("variants") or {}, dict):
                raise ValueError(f"{where}: words in other languages need a language code and a message.")
            for code, words in (step.get("variants") or {}).items():
                _check_words(step, code, words, where)
        elif kind == "wait":
            _days(step.get("days"), f"{where}, number of days", low=1)
        elif kind == "branch":
            try:
                validate_rule(step.get("rule"))
            except ValueError as exc:
                raise ValueError(f"{where}, condition: {exc}") from None
            target = step.get("otherwise")
            if target is not None and (isinstance(target, bool) or not isinstance(target, int) or not number <= target < len(steps)):
                raise ValueError(f"{where}: patrons who do not match go to a later step, or to the end.")
    if not send_steps(definition):
        raise ValueError("Steps: a journey needs at least one step that sends a message.")
    unreachable = [n for n in _unreachable(steps)]
    if unreachable:
        raise ValueError(f"{step_label(unreachable[0] + 1, steps[unreachable[0]])}: no patron can reach this step (it follows an end); remove it or branch to it.")
    for key in definition.get("exits") or []:
        if key not in EXITS:
            raise ValueError(f"Exit conditions: {key!r} is not one of {', '.join(EXITS.values())}.")
    if definition.get("reentry_days") is not None:
        _days(definition["reentry_days"], "Re-entry, number of days", low=1)
    if definition.get("goal") not in GOALS:
        raise ValueError(f"Goal: choose one of {', '.join(GOALS.values())}.")
    _days(definition.get("goal_days"), "Goal, number of days", low=1)


def _unreachable(steps: list[dict[str, Any]]) -> list[int]:
    reached = {0}
    for i, step in enumerate(steps):
        if i not in reached:
            continue
        if step["kind"] != "end":
            reached.add(i + 1)
        if step["kind"] == "branch" and step.get("otherwise") is not None:
            reached.add(step["otherwise"])
    return [i for i in range(len(steps)) if i not in reached]


def first_send(definition: dict[str, Any]) -> dict[str, Any]:
    """The first send step: entering needs its consent (the holdout the same, so both groups compare)."""
    return send_steps(definition)[0][1]
