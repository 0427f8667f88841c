"""The catalogue feed as staff see it (imported as the "catalogue" kind, crmcore/imports/catalogue.py), and
the library's picks: the items patrons without interests are recommended."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Branch, CatalogueItem
from crmcore.privacy import audit


def items(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Every item of the feed, newest first: what it is, where, when added, whether it is a pick."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    rows = session.execute(
        select(CatalogueItem, Branch.name).outerjoin(Branch, Branch.id == CatalogueItem.branch_id).order_by(CatalogueItem.added_on.desc(), CatalogueItem.id.desc())
    )
    return [
        {"id": it.id, "pick": it.is_pick, "title": it.title, "author": it.author or "", "material type": it.material_type or "",
         "categories": ", ".join(it.categories or []), "branch": branch or "any branch", "added on": it.added_on, "link": it.link}
        for it, branch in rows
    ]


def set_picks(session: Session, *, actor: Actor, item_ids: list[int]) -> int:
    """Make exactly these items the library's picks (audited); how many picks there are now."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    wanted = sorted({int(i) for i in item_ids})
    known = set(session.scalars(select(CatalogueItem.id).where(CatalogueItem.id.in_(wanted)))) if wanted else set()
    if missing := [i for i in wanted if i not in known]:
        raise ValueError(f"Library's picks: item {missing[0]} is no longer in the catalogue feed; reload the page.")
    session.execute(update(CatalogueItem).where(CatalogueItem.is_pick.is_(True), CatalogueItem.id.not_in(wanted)).values(is_pick=False))
    if wanted:
        session.execute(update(CatalogueItem).where(CatalogueItem.id.in_(wanted)).values(is_pick=True))
    audit.record(session, actor=actor, action="catalogue.picks", entity="catalogue_item", detail={"picks": wanted})
    return len(wanted)
