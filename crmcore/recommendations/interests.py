"""A patron's interests: item categories, never titles.

Three sources, in this order of precedence: the topics the patron chose on their preference page; the
categories they borrowed most within the retention window (from `activity_event.category`, read only for
patrons with history opt-in — a category is kept only for them, and the opt-in is checked again here);
and the interests field from the ILS, where its words are item categories. Ties are broken by name, so
the same data always gives the same order.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from sqlalchemy import delete, func, select, update
from sqlmodel import Session

from crmcore.library import categories
from crmcore.models import ActivityEvent, Patron, PatronInterest, utcnow
from crmcore.privacy import retention

BORROWING = ("checkout", "renewal", "digital_loan")  # what "borrowed" counts
_CHUNK = 900  # patron ids per IN list (SQLite's bound-parameter limit, with room)
_WORDS = re.compile(r"[;|,/\n]")


def chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def borrowed(session: Session, patron_ids: list[int], *, since: date, until: date) -> dict[int, dict[str, int]]:
    """patron → category (spelt as the vocabulary's term) → items borrowed between `since` and `until` (both
    included), for opted-in patrons only."""
    spelt = spelling(session)
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for chunk in chunks(patron_ids):
        rows = session.execute(
            select(ActivityEvent.patron_id, ActivityEvent.category, func.sum(ActivityEvent.count))
            .join(Patron, Patron.id == ActivityEvent.patron_id)
            .where(
                ActivityEvent.patron_id.in_(chunk),
                Patron.history_opt_in.is_(True),
                Patron.erased_at.is_(None),
                ActivityEvent.category.is_not(None),
                ActivityEvent.kind.in_(BORROWING),
                ActivityEvent.occurred_on >= since,
                ActivityEvent.occurred_on <= until,
            )
            .group_by(ActivityEvent.patron_id, ActivityEvent.category)
        )
        for pid, category, n in rows:
            name = spelt(category)
            out[pid][name] = out[pid].get(name, 0) + int(n or 0)
    return out


def spelling(session: Session):
    """A function giving a stored category its vocabulary term's spelling (events written before the vocabulary, or
    by the demo, may differ in case)."""
    terms = categories.vocabulary(session)
    return lambda category: terms.get(category.casefold(), (category,))[0]


def stated(session: Session, patron_ids: list[int]) -> dict[int, tuple[list[str], list[str]]]:
    """patron → (the topics they chose, by name; the interests field's item categories, as written)."""
    terms = categories.vocabulary(session)
    chosen: dict[int, list[str]] = defaultdict(list)
    written: dict[int, list[str]] = defaultdict(list)
    for chunk in chunks(patron_ids):
        picked = session.execute(
            select(PatronInterest.patron_id, PatronInterest.category).where(PatronInterest.patron_id.in_(chunk)).order_by(PatronInterest.patron_id, PatronInterest.category)
        )
        for pid, category in picked:
            chosen[pid].append(category)
        fields = session.execute(select(Patron.id, Patron.interests).where(Patron.id.in_(chunk), Patron.interests.is_not(None), Patron.erased_at.is_(None)))
        for pid, text in fields:
            for word in _WORDS.split(text or ""):
                term = terms.get(" ".join(word.split()).casefold())
                if term is not None and term[0] not in written[pid]:
                    written[pid].append(term[0])
    return {pid: (chosen.get(pid, []), written.get(pid, [])) for pid in {*chosen, *written}}


def top_categories(session: Session, patron_ids: list[int], *, today: date | None = None, limit: int = 3) -> dict[int, list[tuple[str, str]]]:
    """patron → up to `limit` (category, why) pairs, most liked first; why is "chosen", "borrowed" or "interests".
    Borrowing counts from the first day of the retention window to `today`; patrons with none are left out."""
    today = today or utcnow().date()
    ids = sorted(set(patron_ids))
    loans = borrowed(session, ids, since=retention.cutoff(session, today=today), until=today)
    said = stated(session, ids)
    out: dict[int, list[tuple[str, str]]] = {}
    for pid in ids:
        chosen, written = said.get(pid, ([], []))
        ranked = [(c, "chosen") for c in chosen]
        ranked += [(c, "borrowed") for c, _n in sorted(loans.get(pid, {}).items(), key=lambda kv: (-kv[1], kv[0]))]
        ranked += [(c, "interests") for c in written]
        seen: dict[str, str] = {}
        for category, why in ranked:
            seen.setdefault(category, why)
        if seen:
            out[pid] = list(seen.items())[:limit]
    return out


# --- what the patron changes on their preference page (crmcore.campaigns.preferences calls these) --------


def choose(session: Session, *, patron_id: int, topics: list[str]) -> list[str]:
    """Replace the patron's chosen topics with `topics` (item categories; ValueError naming one that is not)."""
    terms = categories.vocabulary(session)
    clean = []
    for text in topics:
        term = terms.get(" ".join(str(text).split()).casefold())
        if term is None:
            raise ValueError(f"Topics: {text!r} is not one of the library's categories.")
        clean.append(term[0])
    clean = sorted(set(clean))
    session.execute(delete(PatronInterest).where(PatronInterest.patron_id == patron_id))
    now = utcnow()
    session.add_all(PatronInterest(patron_id=patron_id, category=c, chosen_at=now) for c in clean)
    session.flush()
    return clean


def clear(session: Session, *, patron_id: int) -> None:
    """Forget the patron's stated interests: the topics they chose and the interests field."""
    session.execute(delete(PatronInterest).where(PatronInterest.patron_id == patron_id))
    session.execute(update(Patron).where(Patron.id == patron_id).values(interests=None, interests_cleared_by_patron=True, updated_at=utcnow()))


def stop_history(session: Session, *, patron_id: int) -> int:
    """History opt-in off: the categories of their activity are dropped at once (the counts stay); how many events had one."""
    session.execute(update(Patron).where(Patron.id == patron_id).values(history_opt_in=False, history_stopped_by_patron=True, updated_at=utcnow()))
    return session.execute(update(ActivityEvent).where(ActivityEvent.patron_id == patron_id, ActivityEvent.category.is_not(None)).values(category=None)).rowcount
