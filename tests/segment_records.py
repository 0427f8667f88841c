"""A saved segment to act on, for tests that need one (tests/test_permissions.py)."""

from crmcore.models import Segment


def segment_id(session, name: str = "A segment") -> int:
    """Id of a new saved segment matching every patron."""
    segment = Segment(name=name, rules={"all": []})
    session.add(segment)
    session.flush()
    return segment.id
