"""Prospects and their consent: a sign-up stored, confirmed (only then does it grant anything), withdrawn,
linked to the patron with the same address, listed for staff, and deleted when never confirmed.

A prospect's consent is their own word (source class "patron"): on confirmation one `prospect_consent` row
per topic asked for; when a patron import brings the same address, each is carried to the patron's
consent history through `consent.record` with its own time and source, so it stands as the patron's choice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, func, select, update
from sqlmodel import Session

from crmcore import validation
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import do_not_mail
from crmcore.db import Database
from crmcore.languages.catalogues import N_, Refusal, gettext
from crmcore.library import consent
from crmcore.library.patrons import mask_email
from crmcore.models import Branch, Message, Patron, Prospect, ProspectConsent, utcnow
from crmcore.privacy import audit
from crmcore.signups import spam, tokens

# What a prospect may ask for: every marketing topic (library services are for cardholders).
TOPICS = tuple(t for t in consent.TOPICS if t != "services")
DEFAULT_TOPIC = "newsletter"
SOURCE = "sign-up form"
UNCONFIRMED_DAYS = 7
WITHDRAWN_DAYS = 30  # a prospect who withdrew every topic is deleted after this
_POSTAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{0,18}$")


@dataclass(frozen=True)
class SignUp:
    """A cleaned form: what `store` keeps."""

    email: str
    name: str | None
    topics: tuple[str, ...]
    branch_id: int | None
    postal_code: str | None


def clean(session: Session, fields: dict[str, str | list[str]]) -> SignUp:
    """The form's fields checked; a Refusal naming the field (in the form's own words) otherwise."""
    typed = str(fields.get("email") or "")
    try:
        email = validation.email(typed, field="Email address")
    except ValueError:
        raise Refusal(N_("Email address: {address} is not a valid email address."), address=typed.strip()) from None
    if email is None:
        raise Refusal(N_("Email address: please give your email address."))
    name = " ".join(str(fields.get("name") or "").split()) or None
    if name and len(name) > 120:
        raise Refusal(N_("Name: at most {most} characters."), most=120)
    asked = fields.get("topics") or []
    asked = [asked] if isinstance(asked, str) else list(asked)
    unknown = [t for t in asked if t not in TOPICS]
    if unknown:
        raise Refusal(N_("Topics: {topic} is not one of the choices."), topic=repr(unknown[0]))
    topics = tuple(t for t in TOPICS if t in asked) or (DEFAULT_TOPIC,)
    branch_id = None
    code = str(fields.get("branch") or "").strip()
    if code:
        branch_id = session.scalar(select(Branch.id).where(Branch.code == code))
        if branch_id is None:
            raise Refusal(N_("Library branch: choose one of the branches listed."))
    postal = " ".join(str(fields.get("postal_code") or "").split()) or None
    if postal and not _POSTAL.match(postal):
        raise Refusal(N_("Postal code: letters, digits, spaces and dashes only, at most 19."))
    return SignUp(email=email.lower(), name=name, topics=topics, branch_id=branch_id, postal_code=postal)


def branch_choices(session: Session) -> dict[str, str]:
    """Branch code → name, for the public form (no personal data)."""
    return dict(session.execute(select(Branch.code, Branch.name).order_by(Branch.name)).all())


def store(session: Session, *, signup: SignUp, client: str | None, now: datetime | None = None) -> Prospect | None:
    """Keep a sign-up, counting it against the client's rate limit (ValueError past it); an address signing up
    again has its form refreshed. None when the address must never be mailed (do-not-mail list): nothing kept."""
    now = now or utcnow()
    spam.admit(session, client=client, now=now)
    if do_not_mail.is_suppressed(session, signup.email):
        return None
    prospect = session.scalar(select(Prospect).where(Prospect.email == signup.email))
    if prospect is None:
        prospect = Prospect(email=signup.email, created_at=now)
    if prospect.confirmed_at is None:
        prospect.created_at = now  # a new link: the 7 days start again
    prospect.name = signup.name or prospect.name
    prospect.branch_id = signup.branch_id or prospect.branch_id
    prospect.postal_code = signup.postal_code or prospect.postal_code
    prospect.topics = ",".join(signup.topics)
    session.add(prospect)
    session.flush()
    return prospect


def named(session: Session, *, token: str | None) -> Prospect:
    """The sign-up a confirmation token names; ValueError (for the person) when expired, changed or deleted."""
    prospect_id, address_hash = tokens.read_confirm_token(token)
    prospect = session.get(Prospect, prospect_id)
    if prospect is None or not tokens.matches(prospect.email, address_hash):
        raise ValueError(tokens.CONFIRM_INVALID)
    return prospect


def topic_words(topics: str | tuple[str, ...], language: str | None = None) -> str:
    """'events, newsletter' → 'events and newsletter', in `language`."""
    names = [gettext(language, consent.TOPIC_LABELS[t]) for t in (topics.split(",") if isinstance(topics, str) else topics) if t in consent.TOPIC_LABELS]
    if not names:
        return gettext(language, "news")
    if len(names) == 1:
        return names[0]
    return gettext(language, "{first} and {last}").format(first=", ".join(names[:-1]), last=names[-1])


def confirm(session: Session, *, token: str | None, now: datetime | None = None) -> Prospect:
    """The person followed their link and pressed Confirm: their consent to each topic asked for, from now.
    Idempotent. A prospect already linked to a patron has it carried to the patron at once."""
    now = now or utcnow()
    prospect = named(session, token=token)
    prospect.confirmed_at = prospect.confirmed_at or now
    for topic in prospect.topics.split(","):
        _decide(session, prospect, topic=topic, granted=True, source=SOURCE, at=now)
    session.add(prospect)
    return prospect


def _decide(session: Session, prospect: Prospect, *, topic: str, granted: bool, source: str, at: datetime) -> None:
    row = session.get(ProspectConsent, (prospect.id, topic))
    if row is not None and row.granted == granted:
        return
    if row is None:
        row = ProspectConsent(prospect_id=prospect.id, topic=topic, granted=granted, updated_at=at, source=source)
    row.granted, row.updated_at, row.source = granted, at, source[:200]
    session.add(row)
    if prospect.patron_id is not None:
        consent.record(session, patron_id=prospect.patron_id, channel="email", topic=topic, granted=granted, source=source, by=consent.PATRON, at=at)


def withdraw(session: Session, *, prospect_id: int, topic: str, source: str) -> bool:
    """The prospect's own "no" to email about `topic` (an unsubscribe link or address); True if it was granted."""
    prospect = session.get(Prospect, prospect_id)
    if prospect is None:
        return False
    row = session.get(ProspectConsent, (prospect_id, topic))
    was = bool(row and row.granted)
    _decide(session, prospect, topic=topic, granted=False, source=source, at=utcnow())
    return was


def withdraw_everything(session: Session, *, prospect_id: int, source: str) -> int:
    """The prospect's "no" to every topic they had granted (a spam complaint); how many were withdrawn."""
    topics = list(session.scalars(select(ProspectConsent.topic).where(ProspectConsent.prospect_id == prospect_id, ProspectConsent.granted.is_(True))))
    for topic in topics:
        withdraw(session, prospect_id=prospect_id, topic=topic, source=source)
    return len(topics)


def link_patrons(session: Session, *, now: datetime | None = None) -> int:
    """Link every prospect whose address a patron now has to that patron, carrying their consent over
    as the patron's own choice, recorded now (so that it stands over what the import just stated) with the
    source and the day the prospect decided; returns how many were linked. The patron import's last step."""
    now = now or utcnow()
    patron = (
        select(func.min(Patron.id))
        .where(func.lower(Patron.email) == Prospect.email, Patron.erased_at.is_(None))
        .scalar_subquery()
    )
    found = session.execute(select(Prospect.id, patron.label("patron_id")).where(Prospect.patron_id.is_(None), patron.is_not(None))).all()
    for prospect_id, patron_id in found:
        session.execute(update(Prospect).where(Prospect.id == prospect_id).values(patron_id=patron_id, linked_at=now))
        for row in session.scalars(select(ProspectConsent).where(ProspectConsent.prospect_id == prospect_id)):
            consent.record(session, patron_id=patron_id, channel="email", topic=row.topic, granted=row.granted,
                           source=f"{row.source}, {row.updated_at:%Y-%m-%d}, before their card", by=consent.PATRON, at=now)
    return len(found)


def audience(*, topic: str):
    """SQL: the prospects a campaign about `topic` goes to: confirmed, consenting, not yet a patron (a linked
    prospect is reached as the patron), with an address not on the do-not-mail list."""
    granted = exists().where(ProspectConsent.prospect_id == Prospect.id, ProspectConsent.topic == topic, ProspectConsent.granted.is_(True))
    return select(Prospect.id).where(Prospect.confirmed_at.is_not(None), Prospect.patron_id.is_(None), granted)


def count_audience(session: Session, *, actor: Actor, topic: str) -> int:
    """How many prospects a campaign about `topic` would reach now (before the do-not-mail list): the Segments page."""
    require(actor, Perm.MANAGE_SEGMENTS)
    consent.check("email", topic)
    return session.scalar(select(func.count()).select_from(audience(topic=topic).subquery())) or 0


def list_prospects(session: Session, *, actor: Actor, confirmed: bool | None = None, limit: int = 500) -> list[dict]:
    """Sign-ups, newest first; addresses and names only for roles with personal data (that view audited)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    query = select(Prospect, Branch.name).outerjoin(Branch, Branch.id == Prospect.branch_id).order_by(Prospect.created_at.desc(), Prospect.id.desc()).limit(limit)
    if confirmed is not None:
        query = query.where(Prospect.confirmed_at.is_not(None) if confirmed else Prospect.confirmed_at.is_(None))
    granted = {
        (pid, topic) for pid, topic in session.execute(select(ProspectConsent.prospect_id, ProspectConsent.topic).where(ProspectConsent.granted.is_(True)))
    }
    pii = actor.can(Perm.VIEW_PII)
    rows = []
    for prospect, branch in session.execute(query):
        rows.append({
            "id": prospect.id, "email": prospect.email if pii else mask_email(prospect.email), "name": (prospect.name if pii else None),
            "branch": branch, "postal_code": prospect.postal_code if pii else None,
            "topics": ", ".join(consent.TOPIC_LABELS[t] for t in TOPICS if (prospect.id, t) in granted) or None,
            "signed_up": prospect.created_at, "confirmed": prospect.confirmed_at, "patron_id": prospect.patron_id,
        })
    if pii and rows:
        audit.record(session, actor=actor, action="pii.view", entity="prospect", detail={"ids": [r["id"] for r in rows], "via": "sign-ups"})
    return rows


def _by_email(session: Session, email: str) -> Prospect | None:
    return session.scalar(select(Prospect).where(Prospect.email == email.strip().lower()))


def access(session: Session, *, actor: Actor, email: str) -> dict | None:
    """Everything held about the prospect with this address (right of access), or None; audited."""
    require(actor, Perm.PRIVACY_REQUESTS)
    prospect = _by_email(session, email)
    if prospect is None:
        return None
    branch = session.get(Branch, prospect.branch_id).name if prospect.branch_id else None
    consents = session.scalars(select(ProspectConsent).where(ProspectConsent.prospect_id == prospect.id).order_by(ProspectConsent.topic))
    data = {
        "sign_up": {"email": prospect.email, "name": prospect.name, "branch": branch, "postal_code": prospect.postal_code, "topics_asked": prospect.topics,
                    "signed_up_at": prospect.created_at.isoformat(), "confirmed_at": prospect.confirmed_at.isoformat() if prospect.confirmed_at else None,
                    "linked_to_patron": prospect.patron_id},
        "consent": [{"topic": c.topic, "granted": c.granted, "since": c.updated_at.isoformat(), "source": c.source} for c in consents],
        "messages": [{"campaign_id": cid, "status": status, "sent_at": sent.isoformat() if sent else None}
                     for cid, status, sent in session.execute(select(Message.campaign_id, Message.status, Message.sent_at).where(Message.prospect_id == prospect.id).order_by(Message.id))],
    }
    audit.record(session, actor=actor, action="privacy.access", entity="prospect", entity_id=prospect.id)
    return data


def erase(session: Session, *, actor: Actor, email: str) -> bool:
    """Delete the prospect with this address and their consent; their messages stay, anonymous; the address goes
    on the do-not-mail list. False when there is none. Audited."""
    require(actor, Perm.PRIVACY_REQUESTS)
    prospect = _by_email(session, email)
    if prospect is None:
        return False
    do_not_mail.suppress(session, email=prospect.email, reason="erasure")
    _delete(session, [prospect.id])
    audit.record(session, actor=actor, action="privacy.erase", entity="prospect", entity_id=prospect.id)
    return True


def forget_patron(session: Session, *, patron_id: int) -> int:
    """Delete the sign-ups linked to a patron being erased, with their consent; returns how many."""
    ids = list(session.scalars(select(Prospect.id).where(Prospect.patron_id == patron_id)))
    if ids:
        _delete(session, ids)
    return len(ids)


def linked(session: Session, *, patron_id: int) -> list[dict]:
    """The sign-ups linked to a patron, for their access export (called by privacy.rights.access_export)."""
    return [{"email": p.email, "name": p.name, "postal_code": p.postal_code, "topics_asked": p.topics, "signed_up_at": p.created_at.isoformat(),
             "confirmed_at": p.confirmed_at.isoformat() if p.confirmed_at else None}
            for p in session.scalars(select(Prospect).where(Prospect.patron_id == patron_id).order_by(Prospect.id))]


def _delete(session: Session, ids: list[int]) -> None:
    session.execute(update(Message).where(Message.prospect_id.in_(ids)).values(prospect_id=None))
    session.execute(delete(ProspectConsent).where(ProspectConsent.prospect_id.in_(ids)))
    session.execute(delete(Prospect).where(Prospect.id.in_(ids)))


def purge(db: Database, *, now: datetime | None = None) -> str:
    """The worker's job: delete sign-ups never confirmed within 7 days, prospects without a card who withdrew
    every topic over 30 days ago (nothing is left to send them), and rate-limit entries past their hour."""
    now = now or utcnow()
    granted = exists().where(ProspectConsent.prospect_id == Prospect.id, ProspectConsent.granted.is_(True))
    recent = exists().where(ProspectConsent.prospect_id == Prospect.id, ProspectConsent.updated_at >= now - timedelta(days=WITHDRAWN_DAYS))
    with db.write() as session:
        stale = list(session.scalars(select(Prospect.id).where(Prospect.confirmed_at.is_(None), Prospect.created_at < now - timedelta(days=UNCONFIRMED_DAYS))))
        gone = list(session.scalars(select(Prospect.id).where(Prospect.confirmed_at.is_not(None), Prospect.patron_id.is_(None), ~granted, ~recent)))
        if stale or gone:
            _delete(session, stale + gone)
        attempts = spam.forget_old(session, now=now)
    if not (stale or gone or attempts):
        return ""
    return f"sign-ups: {len(stale)} unconfirmed and {len(gone)} withdrawn deleted, {attempts} old form posts forgotten"
