"""Small records the request tests and the permission matrix share."""

from __future__ import annotations

from crmcore.inbox import tickets
from crmcore.models import RequestTopic


def topic_id(session, name: str = "Account", hours: int = 24) -> int:
    """A topic (the migration's, or made again after PostgreSQL's tables were emptied)."""
    from sqlmodel import select

    found = session.exec(select(RequestTopic).where(RequestTopic.name == name)).first()
    if found is None:
        found = RequestTopic(name=name, target_hours=hours)
        session.add(found)
        session.flush()
    return found.id


def request_id(session, *, email: str | None = "asker@example.test", **kwargs) -> int:
    """A new request by e-mail from `email`."""
    return tickets.open_request(session, channel="email", subject="Cannot reach the e-books", body="The e-book site says my card is invalid.",
                                requester_email=email, requester_name="Ann Asker", topic_id=topic_id(session), **kwargs).id


def canned_id(session) -> int:
    """A saved canned reply."""
    from crmcore.models import CannedReply

    row = CannedReply(name="Gone", body="Thanks")
    session.add(row)
    session.flush()
    return row.id
