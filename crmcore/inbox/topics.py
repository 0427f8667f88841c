"""Request topics (e-resources, account, programs, outreach, other …): an editable list, each with the
response target that sets a new request's due time."""

from __future__ import annotations

from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import RequestTopic
from crmcore.privacy import audit

DEFAULT_TARGET_HOURS = 72  # a request without a topic (or whose topic was removed) is due in three days


def list_topics(session: Session, *, actor: Actor, active_only: bool = False) -> list[dict]:
    """Every topic (or only those offered to requesters), by name."""
    require(actor, Perm.VIEW_OUTREACH)
    return public_topics(session) if active_only else [
        {"id": t.id, "name": t.name, "target_hours": t.target_hours, "active": t.active} for t in session.exec(select(RequestTopic).order_by(RequestTopic.name))
    ]


def public_topics(session: Session) -> list[dict]:
    """The topics the public form offers (active ones): names and ids only."""
    rows = session.exec(select(RequestTopic).where(RequestTopic.active).order_by(RequestTopic.name))
    return [{"id": t.id, "name": t.name, "target_hours": t.target_hours, "active": t.active} for t in rows]


def save_topic(session: Session, *, actor: Actor, name: str, target_hours: int, active: bool = True, topic_id: int | None = None) -> RequestTopic:
    """Add a topic, or change one (`topic_id`): its name, response target (hours) and whether it is offered; audited."""
    require(actor, Perm.MANAGE_SETTINGS)
    name = " ".join((name or "").split())
    if not name:
        raise ValueError("Topic name: required.")
    if len(name) > 60:
        raise ValueError(f"Topic name: at most 60 characters (got {len(name)}).")
    try:
        hours = int(target_hours)
    except (TypeError, ValueError):
        raise ValueError(f"Response target of {name}: a whole number of hours, not {target_hours!r}.") from None
    if not 1 <= hours <= 24 * 60:
        raise ValueError(f"Response target of {name}: between 1 hour and 60 days (got {hours} hours).")
    same = session.exec(select(RequestTopic).where(RequestTopic.name == name)).first()
    if same is not None and same.id != topic_id:
        raise ValueError(f"Topic name: there is already a topic called {name}.")
    topic = RequestTopic() if topic_id is None else session.get(RequestTopic, topic_id)
    if topic is None:
        raise ValueError(f"Topic: no topic with id {topic_id}.")
    topic.name, topic.target_hours, topic.active = name, hours, bool(active)
    session.add(topic)
    session.flush()
    audit.record(session, actor=actor, action="request_topic.save", entity="request_topic", entity_id=topic.id, detail={"name": name, "target_hours": hours, "active": bool(active)})
    return topic


def target_hours(session: Session, topic_id: int | None) -> int:
    """The response target of a topic, in hours (the default when there is none)."""
    topic = session.get(RequestTopic, topic_id) if topic_id is not None else None
    return topic.target_hours if topic is not None else DEFAULT_TARGET_HOURS
