"""A message's words per language: the variants of a campaign (or any message owner) and which one a patron gets.

A variant is the subject and body, with the same merge fields, in one language. A patron whose language has
a variant gets it; everyone else gets the default words. A journey's send step keeps its words in other
languages in its definition (crmcore.journeys.definitions), and its campaign rows get them as variants when
they are made: the send loops read campaigns' variants only.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import templates
from crmcore.languages import codes
from crmcore.models import Campaign, MessageVariant, Patron, utcnow
from crmcore.privacy import audit

OWNERS = ("campaign",)


def _check_owner(session: Session, owner: str, owner_id: int) -> Campaign:
    if owner not in OWNERS:
        raise ValueError(f"Messages of {owner!r} have no language variants; they are for {', '.join(OWNERS)}.")
    campaign = session.get(Campaign, owner_id)
    if campaign is None:
        raise LookupError(f"There is no campaign {owner_id}.")
    if campaign.status != "draft":
        raise ValueError(f"Campaign {campaign.name!r} is {campaign.status}; only a draft's words can be changed.")
    return campaign


def _language(value: str | None) -> str:
    try:
        code = codes.normalise(value)
    except ValueError as exc:
        raise ValueError(f"Language: {exc}.") from None
    if code is None:
        raise ValueError("Language: choose the language of these words.")
    return code


def variants(session: Session, *, actor: Actor, owner: str, owner_id: int) -> dict[str, tuple[str, str]]:
    """One message's variants: language → (subject, body), by language."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    return {code: (subject, body) for code, (subject, body) in for_owners(session, owner=owner, owner_ids=[owner_id]).get(owner_id, {}).items()}


def save(session: Session, *, actor: Actor, owner: str, owner_id: int, language: str, subject: str | None, body: str) -> MessageVariant:
    """Add or change the words in one language; ValueError naming the field on bad input. `subject` None: a
    text's words (a text has no subject; its campaign's own stands in). The templates are checked first,
    before the session is touched (no write lock held while they are filled in)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    code = _language(language)
    templates.check(subject="(text message)" if subject is None else subject, body=body)
    campaign = _check_owner(session, owner, owner_id)
    if subject is None:
        subject = campaign.subject_template
    row = session.scalars(select(MessageVariant).where(MessageVariant.owner == owner, MessageVariant.owner_id == owner_id, MessageVariant.language == code)).first()
    if row is None:
        row = MessageVariant(owner=owner, owner_id=owner_id, language=code, subject=subject, body=body)
    row.subject, row.body, row.updated_by_id, row.updated_at = subject, body, actor.id, utcnow()
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="message.variant_saved", entity=owner, entity_id=owner_id, detail={"language": code})
    return row


def remove(session: Session, *, actor: Actor, owner: str, owner_id: int, language: str) -> bool:
    """Remove the words in one language (its patrons get the default words again); whether there were any."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    code = _language(language)
    _check_owner(session, owner, owner_id)
    gone = session.execute(delete(MessageVariant).where(MessageVariant.owner == owner, MessageVariant.owner_id == owner_id, MessageVariant.language == code)).rowcount
    if gone:
        audit.record(session, actor=actor, action="message.variant_removed", entity=owner, entity_id=owner_id, detail={"language": code})
    return bool(gone)


def for_owners(session: Session, *, owner: str, owner_ids: list[int]) -> dict[int, dict[str, tuple[str, str]]]:
    """Every variant of these owners (the send loop's one read): owner id → language → (subject, body)."""
    out: dict[int, dict[str, tuple[str, str]]] = {}
    if not owner_ids:
        return out
    rows = session.execute(
        select(MessageVariant.owner_id, MessageVariant.language, MessageVariant.subject, MessageVariant.body)
        .where(MessageVariant.owner == owner, MessageVariant.owner_id.in_(set(owner_ids)))
        .order_by(MessageVariant.owner_id, MessageVariant.language)
    )
    for owner_id, code, subject, body in rows:
        out.setdefault(owner_id, {})[code] = (subject, body)
    return out


def pick(default: tuple[str, str], variants_: dict[str, tuple[str, str]], language: str | None) -> tuple[str, str]:
    """The (subject, body) a patron of `language` gets: their language's variant, else the default words."""
    return variants_.get(language or "", default)


def languages_in_use(session: Session, *, actor: Actor) -> list[str]:
    """The languages patrons prefer, the most spoken first (codes only, no counts): the ones worth a variant."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    rows = session.scalars(
        select(Patron.language).where(Patron.language.is_not(None), Patron.erased_at.is_(None)).group_by(Patron.language).order_by(func.count().desc(), Patron.language)
    )
    return list(rows)
