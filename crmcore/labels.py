"""Plain words for librarians: the names staff read for columns, kinds, topics and states.

Kinds, topics and states keep their labels beside their definitions (`activity.KIND_LABELS`,
`consent.TOPIC_LABELS`, `summaries.STATE_LABELS`); this module gathers them with the column labels of the
tables and charts the pages show, and says "1 interaction" / "4 interactions" (`plural`).
"""

from __future__ import annotations

import re

import pandas as pd

from crmcore.kpis.summaries import STATE_LABELS
from crmcore.library.activity import KIND_LABELS
from crmcore.library.consent import TOPIC_LABELS
from crmcore.outreach.kinds import KINDS as OUTREACH_KINDS

# Column names of the tables, downloads and chart axes the app makes, as a librarian says them.
COLUMN_LABELS = {
    # Peers (crmcore.peers)
    "fscs_key": "FSCS key",
    "own": "our library",
    "peer_median": "peer median",
    "liaison": "in Liaison",
    "registered_per_1000": "registered per 1,000 residents",
    "active_per_1000": "active per 1,000 residents",
    "attendees_per_1000": "attendees per 1,000 residents",
    "at_start": "at the start",
    "at_end": "at the end",
    "from_state": "from",
    "to_state": "to",
    "age_band": "age band",
    "new_registrations": "new registrations",
    "cards_issued": "cards issued",
    "follow_up_on": "follow up on",
    "follow_up_done": "follow-up done",
    "logged_by": "logged by",
    "job_title": "job title",
    "entity_id": "record",
    "entity": "record type",
    "actor_id": "staff member",
    "ils_id": "library card number",
    "first_name": "first name",
    "last_name": "last name",
    "patron_type": "patron type",
    "registered_on": "registered on",
    "last_activity_on": "last activity on",
    "occurred_on": "occurred on",
    "occurred_at": "when",
    "created_at": "created",
    "file_name": "file",
}
# What Plotly calls the two sides of a wide frame drawn at once (y=["registered", "active"]).
AXIS_LABELS = {"value": "count", "variable": "measure", "index": "row"}
# Values shown in tables and chart legends: outreach and activity kinds, consent topics, lifecycle states.
VALUE_LABELS = {**{k: v.lower() for k, v in OUTREACH_KINDS.items()}, **KIND_LABELS, **TOPIC_LABELS, **STATE_LABELS}
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


def column(name: object) -> str:
    """A column's label: its own if it has one, else the name with spaces for underscores (lower case, as
    the app's other column names)."""
    text = str(name)
    if text in COLUMN_LABELS:
        return COLUMN_LABELS[text]
    return text.replace("_", " ") if _SNAKE.match(text) else text


def value(name: object) -> object:
    """A kind, topic or state as a librarian reads it; anything else unchanged."""
    return VALUE_LABELS.get(name, name) if isinstance(name, str) else name


def frame(data: pd.DataFrame) -> pd.DataFrame:
    """`data` with plain column names and plain kinds/topics/states in its text columns (a copy)."""
    out = data.rename(columns=column)
    for name in out.columns:
        if out[name].dtype == object:
            out[name] = out[name].map(value)
    return out


def plural(count: int, word: str, many: str | None = None) -> str:
    """'1 interaction', '4 interactions', '2 consents withdrawn' style counts (`many` for irregular words)."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"
