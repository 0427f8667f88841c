"""Campaigns: compose a draft, preview it, test-send it, launch it (freezing the audience), cancel it.

Launch is set-based: one INSERT … SELECT turns the segment into one message row per recipient, minus
those without current consent for the channel and topic, the suppressed, those without an address and
those at the frequency cap; a deterministic share of the rest is held out (rows that are never sent).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, and_, case, exists, func, insert, literal, or_, select, update
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import do_not_mail, sending, templates
from crmcore.campaigns.rules.compiler import patron_ids_select
from crmcore.campaigns.templates import Rendered
from crmcore.db import Database
from crmcore.library import consent
from crmcore.models import Campaign, CurrentConsent, Message, Patron, Segment, StaffUser, Suppression, utcnow
from crmcore.privacy import audit

CHANNELS = ("email",)
EXCLUSIONS = ("no_email", "no_consent", "suppressed", "frequency_cap")
# Messages that count against the frequency cap (sent, or about to be).
CAPPED_STATUSES = ("queued", "sending", "sent", "unknown")
_HOLD_MULT, _HOLD_PRIME, _HOLD_STEP = 2654435761, 4294967291, 7919


def in_holdout(campaign_id: int, patron_id: int, pct: float) -> bool:
    """The holdout rule, in Python (launch computes the same in SQL)."""
    return ((patron_id + campaign_id * _HOLD_STEP) * _HOLD_MULT) % _HOLD_PRIME % 10_000 < round(pct * 100)


def _holdout_sql(campaign_id: int, patron_id, pct: float):
    mixed = ((patron_id + campaign_id * _HOLD_STEP) * literal(_HOLD_MULT, BigInteger)) % literal(_HOLD_PRIME, BigInteger)
    return mixed % 10_000 < round(pct * 100)


def get(session: Session, campaign_id: int) -> Campaign:
    found = session.get(Campaign, campaign_id)
    if found is None:
        raise LookupError(f"There is no campaign {campaign_id}.")
    return found


def list_campaigns(session: Session, *, actor: Actor) -> list[Campaign]:
    """Every campaign, newest first."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    # A journey's steps are campaigns of their own (status "journey"), shown on the Journeys page.
    return list(session.scalars(select(Campaign).where(Campaign.journey_version_id.is_(None)).order_by(Campaign.id.desc())))


def segment_choices(session: Session, *, actor: Actor) -> dict[int, str]:
    """Saved segments a campaign can go to: id → name."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    return dict(session.execute(select(Segment.id, Segment.name).order_by(Segment.name)).all())


def compose(
    session: Session,
    *,
    actor: Actor,
    name: str,
    segment_id: int | None,
    topic: str,
    subject: str,
    body: str,
    holdout_pct: float = 10.0,
    channel: str = "email",
    campaign_id: int | None = None,
) -> Campaign:
    """Create a draft, or change one (`campaign_id`); ValueError naming the field on bad input.

    The templates are checked first, before this function touches the session: a session's transaction
    begins at its first statement, so filling them in never holds the write lock."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    templates.check(subject=subject, body=body)
    if not name or not name.strip():
        raise ValueError("Name: give the campaign a name.")
    if channel not in CHANNELS:
        raise ValueError(f"Channel: only {', '.join(CHANNELS)} campaigns can be sent.")
    consent.check(channel, topic)
    if segment_id is None or session.get(Segment, segment_id) is None:
        raise ValueError("Segment: choose the segment to send to.")
    if not 0 <= float(holdout_pct) <= 50:
        raise ValueError("Holdout: between 0 and 50 percent.")
    if campaign_id is None:
        campaign = Campaign(name=name.strip()[:200], topic=topic, subject_template=subject, body_template=body, created_by_id=actor.id)
    else:
        campaign = get(session, campaign_id)
        if campaign.status != "draft":
            raise ValueError(f"Campaign {campaign.name!r} is {campaign.status}; only drafts can be changed.")
    campaign.name, campaign.segment_id, campaign.channel, campaign.topic = name.strip()[:200], segment_id, channel, topic
    campaign.subject_template, campaign.body_template, campaign.holdout_pct = subject, body, float(holdout_pct)
    campaign.updated_at = utcnow()
    session.add(campaign)
    session.flush()
    audit.record(session, actor=actor, action="campaign.compose", entity="campaign", entity_id=campaign.id, detail={"name": campaign.name})
    return campaign


def _audience(session: Session, campaign: Campaign, today):
    segment = session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    if segment is None:
        raise ValueError(f"Campaign {campaign.name!r} has no segment; choose one first.")
    return patron_ids_select(segment.rules, today=today).subquery("audience")


def sample_patrons(session: Session, *, actor: Actor, campaign_id: int, limit: int = 20) -> list[tuple[int, str]]:
    """A few patrons of the campaign's segment to preview with: (id, label; names only with VIEW_PII, audited)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    audience = _audience(session, get(session, campaign_id), utcnow().date())
    pid = list(audience.c)[0]
    rows = session.execute(select(Patron.id, Patron.first_name, Patron.last_name).join(audience, pid == Patron.id).order_by(Patron.id).limit(limit)).all()
    if not actor.can(Perm.VIEW_PII):
        return [(i, f"Patron #{i}") for i, _, _ in rows]
    if rows:  # full names of patrons: a view of personal data
        audit.record(session, actor=actor, action="campaign.sample", entity="patron", detail={"campaign": campaign_id, "shown": len(rows), "patron_ids": [i for i, _, _ in rows]})
    return [(i, f"{first or ''} {last or ''} (#{i})".strip()) for i, first, last in rows]


def preview(db: Database, *, actor: Actor, campaign_id: int, patron_id: int, in_frame: bool = True) -> Rendered:
    """The message as one patron would get it (audited: it shows their personal details). Filled in
    between a read and the audit's short write, never inside a write transaction. `in_frame`: for the
    preview frame, which requests nothing (the logo itself in the message, not its address)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    with db.read() as session:
        campaign = get(session, campaign_id)
        context = sending.contexts_for(session, [patron_id]).get(patron_id)
        logo = settings.branding(session).logo
    if context is None:
        raise LookupError(f"There is no patron {patron_id}.")
    if in_frame and context["library_logo_url"]:
        context["library_logo_url"] = logo
    shown = templates.render(subject=campaign.subject_template, body=campaign.body_template, context=context)
    with db.write() as session:
        audit.record(session, actor=actor, action="campaign.preview", entity="patron", entity_id=patron_id, detail={"campaign": campaign_id})
    return shown


def send_test(db: Database, *, actor: Actor, campaign_id: int, patron_id: int) -> str:
    """Send the preview for `patron_id` to the staff member's own address; returns that address."""
    rendered = preview(db, actor=actor, campaign_id=campaign_id, patron_id=patron_id, in_frame=False)
    with db.read() as session:
        staff = session.get(StaffUser, actor.id) if actor.id is not None else None
        if staff is None or not staff.email:
            raise ValueError("Test send: your staff account has no email address; ask an administrator to add one.")
        sending.send_test_message(session, to=staff.email, rendered=rendered, campaign_id=campaign_id, patron_id=patron_id)
    with db.write() as session:
        audit.record(session, actor=actor, action="campaign.test_send", entity="campaign", entity_id=campaign_id)
    return staff.email


def at_frequency_cap(session: Session, patron_id, now: datetime):
    """SQL: the patron (a column) has had the weekly cap of messages (campaigns and journeys alike) in the 7 days to `now`.

    One aggregate over the recent messages (a semi-join), not a count per patron: its cost does not
    depend on the planner guessing the size of the message table."""
    capped = (
        select(Message.patron_id)
        .where(
            Message.patron_id.is_not(None),
            Message.status.in_(CAPPED_STATUSES),
            func.coalesce(Message.sent_at, Message.next_attempt_at, Message.created_at) >= now - timedelta(days=7),
        )
        .group_by(Message.patron_id)
        .having(func.count() >= int(settings.get(session, "frequency_cap_per_7_days")))
    )
    return patron_id.in_(capped)


def _classified(session: Session, campaign: Campaign, now: datetime):
    """(patron_id, reason) for everyone in the segment; reason "ok" or the first exclusion that applies."""
    audience = _audience(session, campaign, now.date())
    pid = list(audience.c)[0]
    do_not_mail.prepare(session)
    has_consent = exists().where(
        CurrentConsent.patron_id == Patron.id,
        CurrentConsent.channel == campaign.channel,
        CurrentConsent.topic == campaign.topic,
        CurrentConsent.granted.is_(True),
    )
    suppressed = exists().where(Suppression.email_hash == do_not_mail.email_hash_sql(Patron.email))
    reason = case(
        (or_(Patron.email.is_(None), Patron.email == "", Patron.erased_at.is_not(None)), "no_email"),
        (~has_consent, "no_consent"),
        (suppressed, "suppressed"),
        (at_frequency_cap(session, Patron.id, now), "frequency_cap"),
        else_="ok",
    )
    return select(Patron.id.label("patron_id"), reason.label("reason")).join(audience, pid == Patron.id).subquery("classified")


def _counts(session: Session, classified) -> dict[str, int]:
    rows = session.execute(select(classified.c.reason, func.count()).group_by(classified.c.reason))
    counts = {key: 0 for key in ("ok", *EXCLUSIONS)}
    counts.update({reason: n for reason, n in rows})
    return counts


def plan(session: Session, *, actor: Actor, campaign_id: int, now: datetime | None = None) -> dict[str, Any]:
    """What launching now would do: audience size and each exclusion, before anything is frozen."""
    require(actor, Perm.LAUNCH_CAMPAIGNS)
    campaign = get(session, campaign_id)
    # Read-only, so the page asks this first: a template that no longer passes (limits change) stops here.
    templates.check(subject=campaign.subject_template, body=campaign.body_template)
    counts = _counts(session, _classified(session, campaign, now or utcnow()))
    eligible = counts.pop("ok")
    holdout = round(eligible * campaign.holdout_pct / 100)
    return {"audience": eligible + sum(counts.values()), "excluded": counts, "eligible": eligible, "holdout_about": holdout, "recipients_about": eligible - holdout}


def launch(session: Session, *, actor: Actor, campaign_id: int, scheduled_at: datetime | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Freeze the audience into messages and start (or schedule) sending; returns the launch summary."""
    require(actor, Perm.LAUNCH_CAMPAIGNS)
    now = now or utcnow()
    campaign = get(session, campaign_id)
    if scheduled_at is not None and scheduled_at.tzinfo is None:
        raise ValueError("Schedule: give the time with its time zone.")
    send_at = scheduled_at if scheduled_at and scheduled_at > now else now
    # Remembered as passed by `plan` (which the page shows first): no filling in under the write lock then.
    templates.check(subject=campaign.subject_template, body=campaign.body_template)
    # Claim the draft first, so two launches of one campaign cannot both freeze an audience.
    claimed = session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.status == "draft").values(status="launching"))
    if claimed.rowcount != 1:
        raise ValueError(f"Campaign {campaign.name!r} is {campaign.status}; only a draft can be launched.")
    classified = _classified(session, campaign, now)
    counts = _counts(session, classified)
    hold = _holdout_sql(campaign_id, classified.c.patron_id, campaign.holdout_pct)
    created = literal(now, Message.__table__.c.created_at.type)
    session.execute(
        insert(Message).from_select(
            ["campaign_id", "patron_id", "status", "is_holdout", "attempts", "next_attempt_at", "created_at"],
            select(
                literal(campaign_id),
                classified.c.patron_id,
                case((hold, "holdout"), else_="queued"),
                hold,
                literal(0),
                case((hold, None), else_=literal(send_at, Message.__table__.c.next_attempt_at.type)),
                created,
            ).where(classified.c.reason == "ok"),
        )
    )
    frozen = dict(session.execute(select(Message.is_holdout, func.count()).where(Message.campaign_id == campaign_id).group_by(Message.is_holdout)).all())
    summary = {
        "audience": sum(counts.values()),
        "excluded": {key: counts[key] for key in EXCLUSIONS},
        "holdout": int(frozen.get(True, 0)),
        "recipients": int(frozen.get(False, 0)),
        "launched_at": now.isoformat(),
        "scheduled_at": send_at.isoformat() if send_at > now else None,
    }
    session.expire(campaign)
    campaign = get(session, campaign_id)
    campaign.status = "scheduled" if send_at > now else "sending"
    campaign.scheduled_at, campaign.launched_at, campaign.launched_by_id = send_at, now, actor.id
    campaign.launch_summary, campaign.updated_at = summary, now
    session.add(campaign)
    audit.record(session, actor=actor, action="campaign.launch", entity="campaign", entity_id=campaign_id, detail=summary)
    return summary


def cancel(session: Session, *, actor: Actor, campaign_id: int) -> int:
    """Stop a campaign: messages not yet sent are cancelled; returns how many."""
    require(actor, Perm.LAUNCH_CAMPAIGNS)
    campaign = get(session, campaign_id)
    if campaign.status not in ("draft", "scheduled", "sending"):
        raise ValueError(f"Campaign {campaign.name!r} is {campaign.status}; there is nothing left to cancel.")
    stopped = session.execute(
        update(Message).where(and_(Message.campaign_id == campaign_id, Message.status == "queued")).values(status="cancelled", lease_owner=None, lease_expires_at=None)
    ).rowcount
    campaign.status, campaign.updated_at = "cancelled", utcnow()
    session.add(campaign)
    audit.record(session, actor=actor, action="campaign.cancel", entity="campaign", entity_id=campaign_id, detail={"cancelled_messages": stopped})
    return stopped
