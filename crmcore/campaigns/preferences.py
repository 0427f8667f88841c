"""The patron's own preference page, reached with a signed token instead of a sign-in.

It shows a patron no more than their first name and their current consent; every change is a consent
record with source "preference page", decided by the patron (it wins over imports and staff actions).
Reading never changes anything (link scanners open links). A save changes only what the patron changed
on the page they were shown: a box left as it was shown never overrides a choice made since, elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from crmcore.campaigns import preference_tokens
from crmcore.languages.catalogues import N_
from crmcore.library import consent
from crmcore.library import categories, consent
from crmcore.models import Patron
from crmcore.recommendations import interests as liked

SOURCE = "preference page"


@dataclass(frozen=True)
class PreferenceView:
    first_name: str
    consent: dict[tuple[str, str], bool]  # every channel × topic, False where nothing was granted
    language: str | None = None  # the patron's preferred language: the page speaks it unless they choose another
    interests: list[tuple[str, str]] = field(default_factory=list)  # (category, why: chosen, borrowed or interests), most liked first
    chosen: list[str] = field(default_factory=list)  # the topics the patron chose here
    history_opt_in: bool = False


def _patron(session: Session, token: str | None) -> Patron:
    patron = session.get(Patron, preference_tokens.read(token))
    if patron is None or patron.erased_at is not None:
        raise ValueError(N_("We have no preferences on file for this link any more."))
    return patron


def view(session: Session, *, token: str | None) -> PreferenceView:
    """What the page shows for a token: first name and consent by channel × topic."""
    patron = _patron(session, token)
    current = consent.current(session, patron.id)
    grid = {(c, t): current.get((c, t), False) for c in consent.CHANNELS for t in consent.TOPICS}
    top = liked.top_categories(session, [patron.id], limit=10).get(patron.id, [])
    chosen = liked.stated(session, [patron.id]).get(patron.id, ([], []))[0]
    return PreferenceView(
        first_name=patron.first_name or "", consent=grid, language=patron.language, interests=top, chosen=chosen, history_opt_in=patron.history_opt_in
    )


def topic_choices(session: Session) -> list[str]:
    """The categories a patron may choose as topics on the page (the vocabulary's genres)."""
    return sorted(name for name, _group in categories.vocabulary(session, group="genre").values())


def choose_topics(session: Session, *, token: str | None, topics: list[str]) -> list[str]:
    """The patron's own topics for "new materials you may like" (replacing those chosen before)."""
    return liked.choose(session, patron_id=_patron(session, token).id, topics=topics)


def clear_interests(session: Session, *, token: str | None) -> None:
    """The patron clears their interests: the topics they chose and the interests on file."""
    liked.clear(session, patron_id=_patron(session, token).id)


def stop_history(session: Session, *, token: str | None) -> int:
    """The patron turns reading-history opt-in off: their activity's categories go at once; how many events had one."""
    return liked.stop_history(session, patron_id=_patron(session, token).id)


def save(
    session: Session,
    *,
    token: str | None,
    choices: dict[tuple[str, str], bool],
    shown: dict[tuple[str, str], bool],
    wording_version: str = consent.WORDING_VERSION,
) -> int:
    """Record each choice the patron changed from what the page `shown` them (a "no" through
    `consent.patron_withdraws`, the one way a patron's withdrawal is recorded); returns how many were recorded."""
    patron = _patron(session, token)
    current = consent.current(session, patron.id)
    changed = 0
    for (channel, topic), granted in choices.items():
        consent.check(channel, topic)
        if bool(granted) == shown.get((channel, topic), False):
            continue  # left as it was shown: not a decision
        if not granted:
            changed += consent.patron_withdraws(session, patron_id=patron.id, channel=channel, topic=topic, source=SOURCE, wording_version=wording_version)
        elif not current.get((channel, topic), False):
            consent.record(session, patron_id=patron.id, channel=channel, topic=topic, granted=True, source=SOURCE, by=consent.PATRON, wording_version=wording_version)
            changed += 1
    return changed


def unsubscribe_all(session: Session, *, token: str | None, wording_version: str = consent.WORDING_VERSION) -> int:
    """The patron's "no" to every channel × topic; returns how many had been granted."""
    return withdraw_everything(session, patron_id=_patron(session, token).id, source=SOURCE, wording_version=wording_version)


def withdraw_everything(session: Session, *, patron_id: int, source: str, wording_version: str | None = consent.WORDING_VERSION) -> int:
    """The patron's own "no" to every channel × topic (page, complaint, STOP…), standing against any later import,
    also where consent was off already; returns how many of them had been granted."""
    granted = sum(consent.current(session, patron_id).values())
    for channel in consent.CHANNELS:
        for topic in consent.TOPICS:
            consent.patron_withdraws(session, patron_id=patron_id, channel=channel, topic=topic, source=source, wording_version=wording_version)
    return granted
