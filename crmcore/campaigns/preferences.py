"""The patron's own preference page, reached with a signed token instead of a sign-in.

It shows a patron no more than their first name and their current consent; every change is a consent
record with source "preference page". Reading never changes anything (link scanners open links).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from crmcore.campaigns import preference_tokens
from crmcore.library import consent
from crmcore.models import Patron

SOURCE = "preference page"


@dataclass(frozen=True)
class PreferenceView:
    first_name: str
    consent: dict[tuple[str, str], bool]  # every channel × topic, False where nothing was granted


def _patron(session: Session, token: str | None) -> Patron:
    patron = session.get(Patron, preference_tokens.read(token))
    if patron is None or patron.erased_at is not None:
        raise ValueError("We have no preferences on file for this link any more.")
    return patron


def view(session: Session, *, token: str | None) -> PreferenceView:
    """What the page shows for a token: first name and consent by channel × topic."""
    patron = _patron(session, token)
    current = consent.current(session, patron.id)
    grid = {(c, t): current.get((c, t), False) for c in consent.CHANNELS for t in consent.TOPICS}
    return PreferenceView(first_name=patron.first_name or "", consent=grid)


def save(session: Session, *, token: str | None, choices: dict[tuple[str, str], bool], wording_version: str = consent.WORDING_VERSION) -> int:
    """Record each choice that differs from current consent; returns how many changed."""
    patron = _patron(session, token)
    current = consent.current(session, patron.id)
    changed = 0
    for (channel, topic), granted in choices.items():
        consent.check(channel, topic)
        if current.get((channel, topic), False) != bool(granted):
            consent.record(session, patron_id=patron.id, channel=channel, topic=topic, granted=bool(granted), source=SOURCE, wording_version=wording_version)
            changed += 1
    return changed


def unsubscribe_all(session: Session, *, token: str | None, wording_version: str = consent.WORDING_VERSION) -> int:
    """Withdraw every consent currently granted; returns how many were withdrawn."""
    choices = {pair: False for pair in consent.current(session, _patron(session, token).id)}
    return save(session, token=token, choices=choices, wording_version=wording_version)
