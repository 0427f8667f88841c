"""Campaigns: compose a draft, preview it, test-send it, launch it (freezing the audience), cancel it.

Launch is set-based: one INSERT … SELECT turns the segment into one message row per recipient, minus
those without current consent for the channel and topic, the suppressed, those without an address and
those at the frequency cap; a deterministic share of the rest is held out (rows that are never sent).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, and_, case, delete, exists, func, insert, literal, or_, select, update
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import do_not_mail, preference_tokens, sending, templates
from crmcore.campaigns.rules.compiler import patron_ids_select
from crmcore.campaigns.templates import Rendered
from crmcore.db import Database
from crmcore.languages import codes, variants
from crmcore.library import consent
from crmcore.models import Campaign, CurrentConsent, Message, Patron, Prospect, Segment, StaffUser, Suppression, Survey, utcnow
from crmcore.privacy import audit
from crmcore.recommendations import block
from crmcore.signups import prospects
from crmcore.surveys import tokens as survey_tokens
from crmcore.texts import do_not_text, phones, segments, wording
from crmcore.texts import sending as text_sending

CHANNELS = ("email", "sms")
# Who a campaign goes to: the patrons of a segment, or the prospects who confirmed its topic (crmcore.signups).
PATRONS, PROSPECTS = "patrons", "prospects"
AUDIENCES = (PATRONS, PROSPECTS)
EXCLUSIONS = ("no_email", "no_consent", "suppressed", "frequency_cap")
# A text campaign's: no number on record, a number that cannot be a phone's, the do-not-text list.
TEXT_EXCLUSIONS = ("no_phone", "bad_phone", "no_consent", "do_not_text", "frequency_cap")
TEXT_SUBJECT = "(text message)"  # a text has no subject: what the campaign's subject column holds
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
    survey_id: int | None = None,
    recommendations_fallback: str = "picks",
    audience: str = PATRONS,
) -> Campaign:
    """Create a draft, or change one (`campaign_id`); ValueError naming the field on bad input.

    The templates are checked first, before this function touches the session: a session's transaction
    begins at its first statement, so filling them in never holds the write lock."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    if channel == "sms":
        subject = TEXT_SUBJECT
    templates.check(subject=subject, body=body)
    if not name or not name.strip():
        raise ValueError("Name: give the campaign a name.")
    if channel not in CHANNELS:
        raise ValueError(f"Channel: only {', '.join(CHANNELS)} campaigns can be sent.")
    consent.check(channel, topic)
    if audience not in AUDIENCES:
        raise ValueError("Send to: patrons in a segment, or prospects.")
    if audience == PROSPECTS:
        segment_id = None
    elif segment_id is None or session.get(Segment, segment_id) is None:
        raise ValueError("Segment: choose the segment to send to.")
    if not 0 <= float(holdout_pct) <= 50:
        raise ValueError("Holdout: between 0 and 50 percent.")
    check_survey(session, survey_id, subject, body)
    if recommendations_fallback not in block.FALLBACKS:
        raise ValueError(f"Recommendations: for patrons without interests choose {' or '.join(block.FALLBACKS.values())}.")
    if channel == "sms":
        text_length(session, actor=actor, body=body)
    if campaign_id is None:
        campaign = Campaign(name=name.strip()[:200], topic=topic, subject_template=subject, body_template=body, created_by_id=actor.id)
    else:
        campaign = get(session, campaign_id)
        if campaign.status != "draft":
            raise ValueError(f"Campaign {campaign.name!r} is {campaign.status}; only drafts can be changed.")
    campaign.name, campaign.segment_id, campaign.channel, campaign.topic = name.strip()[:200], segment_id, channel, topic
    campaign.audience = audience
    campaign.subject_template, campaign.body_template, campaign.holdout_pct = subject, body, float(holdout_pct)
    campaign.survey_id = survey_id
    campaign.recommendations_fallback = recommendations_fallback
    campaign.updated_at = utcnow()
    session.add(campaign)
    session.flush()
    audit.record(session, actor=actor, action="campaign.compose", entity="campaign", entity_id=campaign.id, detail={"name": campaign.name})
    return campaign


def check_survey(session: Session, survey_id: int | None, subject: str, body: str, *, launching: bool = False) -> None:
    """A message (a campaign's, a journey step's) using {{ survey_link }} names its survey; a survey named exists,
    and is open when it goes out."""
    if survey_id is None:
        if templates.uses_survey_link(subject, body):
            raise ValueError("Survey: the message uses {{ survey_link }}; choose the survey it opens.")
        return
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise ValueError(f"Survey: there is no survey {survey_id}.")
    if survey.status == "closed" or (launching and survey.status != "open"):
        raise ValueError(f"Survey: {survey.name!r} is {survey.status}; open it on the Surveys page before sending its link.")


def _audience(session: Session, campaign: Campaign, today):
    segment = session.get(Segment, campaign.segment_id) if campaign.segment_id else None
    if segment is None:
        raise ValueError(f"Campaign {campaign.name!r} has no segment; choose one first.")
    return patron_ids_select(segment.rules, today=today).subquery("audience")


def sample_patrons(session: Session, *, actor: Actor, campaign_id: int, limit: int = 20) -> list[tuple[int, str]]:
    """A few patrons of the campaign's segment to preview with: (id, label; names only with VIEW_PII, audited)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    campaign = get(session, campaign_id)
    if campaign.audience == PROSPECTS:
        return []  # prospects are previewed with the sample patron (see `preview`)
    audience = _audience(session, campaign, utcnow().date())
    pid = list(audience.c)[0]
    rows = session.execute(select(Patron.id, Patron.first_name, Patron.last_name).join(audience, pid == Patron.id).order_by(Patron.id).limit(limit)).all()
    if not actor.can(Perm.VIEW_PII):
        return [(i, f"Patron #{i}") for i, _, _ in rows]
    if rows:  # full names of patrons: a view of personal data
        audit.record(session, actor=actor, action="campaign.sample", entity="patron", detail={"campaign": campaign_id, "shown": len(rows), "patron_ids": [i for i, _, _ in rows]})
    return [(i, f"{first or ''} {last or ''} (#{i})".strip()) for i, first, last in rows]


def preview(db: Database, *, actor: Actor, campaign_id: int, patron_id: int, in_frame: bool = True, language: str | None = None) -> Rendered:
    """The message as one patron would get it (audited: it shows their personal details): in their language's
    words, or in `language`'s when given (the default words where that language has none). Filled in
    between a read and the audit's short write, never inside a write transaction. `in_frame`: for the
    preview frame, which requests nothing (the logo itself in the message, not its address)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    with db.read() as session:
        campaign = get(session, campaign_id)
        context = sending.with_survey_links(session, sending.contexts_for(session, [patron_id]), campaign.survey_id).get(patron_id)
        logo = settings.branding(session).logo
        words = variants.for_owners(session, owner="campaign", owner_ids=[campaign_id]).get(campaign_id, {})
        patron_language = session.scalar(select(Patron.language).where(Patron.id == patron_id))
        if context is not None:
            context.update(recommendations=sending.recommendations_for(session, [campaign], [(campaign.id, patron_id)]).get((campaign.id, patron_id), context["recommendations"]))
    if context is None:
        raise LookupError(f"There is no patron {patron_id}.")
    if in_frame and context["library_logo_url"]:
        context["library_logo_url"] = logo
    subject, body = variants.pick((campaign.subject_template, campaign.body_template), words, language or patron_language)
    if campaign.channel == "sms":
        shown = Rendered(subject="", text=wording.campaign_text(body=body, context=context), html="")
    else:
        shown = templates.render(subject=subject, body=body, context=context)
    with db.write() as session:
        audit.record(session, actor=actor, action="campaign.preview", entity="patron", entity_id=patron_id, detail={"campaign": campaign_id})
    return shown


def send_test(db: Database, *, actor: Actor, campaign_id: int, patron_id: int, language: str | None = None) -> str:
    """Send the preview for `patron_id` (in `language`'s words, as `preview`) to the staff member's own address, or
    a text campaign's to their own phone number (My account); returns where it went."""
    rendered = preview(db, actor=actor, campaign_id=campaign_id, patron_id=patron_id, in_frame=False, language=language)
    with db.read() as session:
        staff = session.get(StaffUser, actor.id) if actor.id is not None else None
        if get(session, campaign_id).channel == "sms":
            sent_to = text_sending.send_test_text(session, phone=staff.phone if staff else None, body=rendered.text, campaign_id=campaign_id, patron_id=patron_id)
        elif staff is None or not staff.email:
            raise ValueError("Test send: your staff account has no email address; ask an administrator to add one.")
        else:
            sending.send_test_message(session, to=staff.email, rendered=rendered, campaign_id=campaign_id, patron_id=patron_id)
            sent_to = staff.email
    with db.write() as session:
        audit.record(session, actor=actor, action="campaign.test_send", entity="campaign", entity_id=campaign_id)
    return sent_to


def _capped(session: Session, recipient, now: datetime):
    """SQL: the recipients (`recipient`: Message.patron_id or Message.prospect_id) who have had the weekly cap of
    messages (campaigns and journeys alike) in the 7 days to `now`.

    One aggregate over the recent messages (a semi-join), not a count per recipient: its cost does not
    depend on the planner guessing the size of the message table."""
    return (
        select(recipient)
        .where(
            recipient.is_not(None),
            Message.status.in_(CAPPED_STATUSES),
            func.coalesce(Message.sent_at, Message.next_attempt_at, Message.created_at) >= now - timedelta(days=7),
        )
        .group_by(recipient)
        .having(func.count() >= int(settings.get(session, "frequency_cap_per_7_days")))
    )


def at_frequency_cap(session: Session, patron_id, now: datetime):
    """SQL: the patron (a column) has had the weekly cap of messages in the 7 days to `now`."""
    return patron_id.in_(_capped(session, Message.patron_id, now))


def _classified(session: Session, campaign: Campaign, now: datetime):
    """(recipient_id, reason) for everyone in the audience; reason "ok" or the first exclusion that applies.
    The recipient is a patron, or for a campaign to prospects a prospect."""
    do_not_mail.prepare(session)
    if campaign.audience == PROSPECTS:
        consenting = prospects.audience(topic=campaign.topic).subquery("consenting")
        reason = case(
            (consenting.c.id.is_(None), "no_consent"),
            (exists().where(Suppression.email_hash == do_not_mail.email_hash_sql(Prospect.email)), "suppressed"),
            (Prospect.id.in_(_capped(session, Message.prospect_id, now)), "frequency_cap"),
            else_="ok",
        )
        everyone = select(Prospect.id.label("recipient_id"), reason.label("reason")).outerjoin(consenting, consenting.c.id == Prospect.id)
        return everyone.where(Prospect.confirmed_at.is_not(None), Prospect.patron_id.is_(None)).subquery("classified")
    audience = _audience(session, campaign, now.date())
    pid = list(audience.c)[0]
    has_consent = exists().where(
        CurrentConsent.patron_id == Patron.id,
        CurrentConsent.channel == campaign.channel,
        CurrentConsent.topic == campaign.topic,
        CurrentConsent.granted.is_(True),
    )
    suppressed = exists().where(Suppression.email_hash == do_not_mail.email_hash_sql(Patron.email))
    if campaign.channel == "sms":  # numbers are checked in Python after this (`_unreachable`): no phone library in SQL
        reason = case(
            (or_(Patron.phone.is_(None), Patron.phone == "", Patron.erased_at.is_not(None)), "no_phone"),
            (~has_consent, "no_consent"),
            (at_frequency_cap(session, Patron.id, now), "frequency_cap"),
            else_="ok",
        )
    else:
        reason = case(
            (or_(Patron.email.is_(None), Patron.email == "", Patron.erased_at.is_not(None)), "no_email"),
            (~has_consent, "no_consent"),
            (suppressed, "suppressed"),
            (at_frequency_cap(session, Patron.id, now), "frequency_cap"),
            else_="ok",
        )
    return select(Patron.id.label("recipient_id"), reason.label("reason")).join(audience, pid == Patron.id).subquery("classified")


def _unreachable(session: Session, classified) -> dict[int, str]:
    """Of a text campaign's eligible patrons, those whose number cannot be normalised (bad_phone) or is on the
    do-not-text list (do_not_text): patron id → reason."""
    region = phones.region(session)
    rows = session.execute(select(Patron.id, Patron.phone).join(classified, classified.c.recipient_id == Patron.id).where(classified.c.reason == "ok")).all()
    numbers = {pid: phones.normalise(phone, region=region) for pid, phone in rows}
    blocked = do_not_text.blocked(session, [n for n in numbers.values() if n])
    return {pid: "bad_phone" if n is None else "do_not_text" for pid, n in numbers.items() if n is None or n in blocked}


def text_length(session: Session, *, actor: Actor, body: str) -> segments.Length:
    """A text campaign's message with the longest merge values on record: encoding, length and parts;
    ValueError past the setting's number of parts (shown while composing, checked when a draft is saved)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    return _text_length(session, body)


def _text_length(session: Session, body: str) -> segments.Length:
    """`text_length` for a caller that checked the actor (a journey's text step)."""
    base, most = sending.public_url(session), 2_147_483_647  # the largest ids: the longest signed links
    return wording.check_length(session, body=body, preferences_url=f"{base}/preferences?token={preference_tokens.maker()(most)}",
                                survey_link=survey_tokens.link_maker(base, most)(most))


def _exclusions(channel: str) -> tuple[str, ...]:
    return TEXT_EXCLUSIONS if channel == "sms" else EXCLUSIONS


def _counts(session: Session, classified, *, channel: str = "email", unreachable: dict[int, str] | None = None) -> dict[str, int]:
    rows = session.execute(select(classified.c.reason, func.count()).group_by(classified.c.reason))
    counts = {key: 0 for key in ("ok", *_exclusions(channel))}
    counts.update({reason: n for reason, n in rows})
    for reason in (unreachable or {}).values():
        counts["ok"] -= 1
        counts[reason] += 1
    return counts


def plan(session: Session, *, actor: Actor, campaign_id: int, now: datetime | None = None) -> dict[str, Any]:
    """What launching now would do: audience size and each exclusion, before anything is frozen."""
    require(actor, Perm.LAUNCH_CAMPAIGNS)
    campaign = get(session, campaign_id)
    # Read-only, so the page asks this first: a template that no longer passes (limits change) stops here.
    templates.check(subject=campaign.subject_template, body=campaign.body_template)
    check_survey(session, campaign.survey_id, campaign.subject_template, campaign.body_template, launching=True)
    classified = _classified(session, campaign, now or utcnow())
    unreachable = _unreachable(session, classified) if campaign.channel == "sms" else None
    counts = _counts(session, classified, channel=campaign.channel, unreachable=unreachable)
    eligible = counts.pop("ok")
    holdout = round(eligible * campaign.holdout_pct / 100)
    out = {"audience": eligible + sum(counts.values()), "excluded": counts, "eligible": eligible, "holdout_about": holdout, "recipients_about": eligible - holdout}
    if campaign.channel == "sms":  # every text as long as the longest merge values make it: an upper bound (in its longest language)
        parts = [text_length(session, actor=actor, body=campaign.body_template).parts]
        for code, (_subject, body) in variants.for_owners(session, owner="campaign", owner_ids=[campaign_id]).get(campaign_id, {}).items():
            try:
                parts.append(_text_length(session, body).parts)
            except ValueError as exc:
                raise ValueError(f"The words in {codes.name(code)} ({code}): {exc}") from None
        out["text_parts_at_most"] = (eligible - holdout) * max(parts)
    return out


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
    check_survey(session, campaign.survey_id, campaign.subject_template, campaign.body_template, launching=True)
    # Claim the draft first, so two launches of one campaign cannot both freeze an audience.
    claimed = session.execute(update(Campaign).where(Campaign.id == campaign_id, Campaign.status == "draft").values(status="launching"))
    if claimed.rowcount != 1:
        raise ValueError(f"Campaign {campaign.name!r} is {campaign.status}; only a draft can be launched.")
    classified = _classified(session, campaign, now)
    unreachable = _unreachable(session, classified) if campaign.channel == "sms" else {}
    counts = _counts(session, classified, channel=campaign.channel, unreachable=unreachable)
    hold = _holdout_sql(campaign_id, classified.c.recipient_id, campaign.holdout_pct)
    recipient = "prospect_id" if campaign.audience == PROSPECTS else "patron_id"
    created = literal(now, Message.__table__.c.created_at.type)
    session.execute(
        insert(Message).from_select(
            ["campaign_id", recipient, "status", "is_holdout", "attempts", "next_attempt_at", "created_at"],
            select(
                literal(campaign_id),
                classified.c.recipient_id,
                case((hold, "holdout"), else_="queued"),
                hold,
                literal(0),
                case((hold, None), else_=literal(send_at, Message.__table__.c.next_attempt_at.type)),
                created,
            ).where(classified.c.reason == "ok"),
        )
    )
    bad = list(unreachable)
    for start in range(0, len(bad), 500):  # numbers that cannot be texted: excluded (and counted above)
        session.execute(delete(Message).where(Message.campaign_id == campaign_id, Message.patron_id.in_(bad[start : start + 500])))
    frozen = dict(session.execute(select(Message.is_holdout, func.count()).where(Message.campaign_id == campaign_id).group_by(Message.is_holdout)).all())
    summary = {
        "audience": sum(counts.values()),
        "excluded": {key: counts[key] for key in _exclusions(campaign.channel)},
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
