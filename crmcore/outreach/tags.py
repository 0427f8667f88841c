"""Tags on organizations and contacts: stored trimmed and lower case, created on first use."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, select

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Tag


def tag_name(value: Any) -> str | None:
    """A tag as stored: trimmed, lower case, single spaces; None when blank."""
    cleaned = re.sub(r"\s+", " ", str(value or "")).strip().lower()
    if len(cleaned) > 60:
        raise ValueError(f"tags: {cleaned[:20]!r}… is longer than 60 characters.")
    return cleaned or None


def tag_ids(session: Session, names: Iterable[str]) -> list[int]:
    """Ids of the named tags, creating the ones that do not exist yet."""
    wanted = sorted({n for n in (tag_name(v) for v in names) if n})
    if not wanted:
        return []
    found = {t.name: t.id for t in session.exec(select(Tag).where(Tag.name.in_(wanted)))}
    for name in wanted:
        if name not in found:
            tag = Tag(name=name)
            session.add(tag)
            session.flush()
            found[name] = tag.id
    return [found[n] for n in wanted]


def all_tags(session: Session, *, actor: Actor) -> list[str]:
    """Every tag name, for pickers."""
    require(actor, Perm.VIEW_OUTREACH)
    return list(session.exec(select(Tag.name).order_by(Tag.name)))


def tags_of(session: Session, link, owner_column, owner_id: int) -> list[str]:
    rows = session.exec(select(Tag.name).join(link, link.tag_id == Tag.id).where(owner_column == owner_id).order_by(Tag.name))
    return list(rows)


def replace_tags(session: Session, link, owner_column, owner_id: int, names: Iterable[str], make) -> bool:
    """Give the owner exactly these tags (`make(tag_id)` builds a link row); True when the set changed."""
    names = list(names)
    before = tags_of(session, link, owner_column, owner_id)
    session.exec(delete(link).where(owner_column == owner_id))
    for tid in tag_ids(session, names):
        session.add(make(tid))
    return sorted(before) != sorted({n for n in map(tag_name, names) if n})
