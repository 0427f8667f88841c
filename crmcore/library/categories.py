"""Item categories: the controlled vocabulary of material types and genres an import's category may hold.

An activity row's category and a circulation row's material type must match a term here (case does not
matter; the term's own spelling is stored), so a title mapped to a category column is a row error, never
a stored value. Admins add and remove terms (audited); the migration pre-fills the usual ones.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import CategoryTerm
from crmcore.privacy import audit

GROUPS = {"material": "Material types", "genre": "Genres"}
MAX_LEN = 80
_term = CategoryTerm.__table__


def list_terms(session: Session, *, actor: Actor, group: str | None = None) -> list[CategoryTerm]:
    """The terms, by group then name (one group when `group` is given)."""
    require(actor, Perm.IMPORT_DATA)
    query = select(CategoryTerm)
    if group is not None:
        _check_group(group)
        query = query.where(CategoryTerm.group == group)
    return list(session.execute(query.order_by(CategoryTerm.group, CategoryTerm.name)).scalars())


def add_term(session: Session, *, actor: Actor, name: str, group: str) -> CategoryTerm:
    """Add a term; ValueError when it is blank, too long or there already (in any case)."""
    require(actor, Perm.MANAGE_SETTINGS)
    _check_group(group)
    name = " ".join(name.split())
    if not name:
        raise ValueError("Give the category a name.")
    if len(name) > MAX_LEN:
        raise ValueError(f"A category name has at most {MAX_LEN} characters.")
    existing = vocabulary(session).get(name.casefold())
    if existing is not None:
        raise ValueError(f"{existing[0]!r} is already an item category ({GROUPS[existing[1]].lower()[:-1]}).")
    term = CategoryTerm(name=name, group=group)
    session.add(term)
    session.flush()
    audit.record(session, actor=actor, action="category.added", entity="category_term", entity_id=term.id, detail={"name": name, "group": group})
    return term


def remove_term(session: Session, *, actor: Actor, term_id: int) -> str:
    """Remove a term (values already stored stay); its name. ValueError when there is no such term."""
    require(actor, Perm.MANAGE_SETTINGS)
    term = session.get(CategoryTerm, term_id)
    if term is None:
        raise ValueError("That item category is not there any more.")
    name, group = term.name, term.group
    session.delete(term)
    session.flush()
    audit.record(session, actor=actor, action="category.removed", entity="category_term", entity_id=term_id, detail={"name": name, "group": group})
    return name


def vocabulary(session: Session, *, group: str | None = None) -> dict[str, tuple[str, str]]:
    """casefolded name → (the term's spelling, its group): what an importer matches cells against."""
    query = select(_term.c.name, _term.c.group)
    if group is not None:
        query = query.where(_term.c.group == group)
    return {name.casefold(): (name, g) for name, g in session.connection().execute(query)}


def not_a_term(text: str, *, group: str | None = None) -> str:
    """The row error for a value outside the vocabulary (it may be a title: say how to add a real category)."""
    what = "a material type" if group == "material" else "an item category"
    return f"{text!r} is not {what}: add it on the Item categories page if it is one (titles are never stored)"


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ValueError(f"A category group is one of {', '.join(GROUPS)}.")
