"""The sender: claims queued messages with a lease, re-checks consent, renders, sends, records outcomes.

At most once: a message is committed as "sending" before its SMTP transaction starts, and only the
worker holding its lease may do that or record its outcome. At ordinary rates one message at a time is
"sending"; at high rates a small window is (`Throttle.window`): half of it marked, in a second thread,
while the other half is sent, so that a durable commit per message does not cap the rate. A message still "sending" when its lease
has expired belonged to a worker that died mid-send: it becomes "unknown" for review, never resent.
With no SMTP server configured, messages are written to the outbox as .eml files instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, exists, func, or_, select, update
from sqlmodel import Session

from crmcore.admin import config, settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import addresses, do_not_mail, mime, preference_tokens, templates, unsubscribe
from crmcore.surveys import tokens as survey_tokens
from crmcore.campaigns.addresses import mail_domain, mail_from
from crmcore.campaigns.mime import Mail
from crmcore.campaigns.templates import Rendered
from crmcore.campaigns.transport import OutboxTransport, SendFailure, SmtpTransport, Transport
from crmcore.db import Database
from crmcore.languages import variants
from crmcore.models import Branch, Campaign, CurrentConsent, Message, Patron, Prospect, ProspectConsent, Setting, Suppression, utcnow
from crmcore.recommendations import block
from crmcore.recommendations.block import Block

log = logging.getLogger("liaison.sending")

CLAIM_LEASE = timedelta(minutes=5)
SEND_LEASE = timedelta(minutes=2)  # longer than any SMTP timeout
MAX_BATCH = 500
WINDOW = 10
MAX_ATTEMPTS = 8
UNKNOWN_NOTE = "The worker stopped while sending this message: it may or may not have gone out. Not resent."
PAUSED = "Sending paused: "  # the start of a waiting message's note when the way out was down
RETRY_AFTER_OUTAGE = timedelta(minutes=1)


def transport() -> Transport:
    """SMTP when CRM_SMTP_HOST is set, else the outbox folder."""
    host = config.get("CRM_SMTP_HOST")
    if not host:
        return OutboxTransport()
    user = config.get("CRM_SMTP_USER")
    starttls = config.get("CRM_SMTP_STARTTLS", "true" if user else "false").lower() in ("1", "true", "yes", "on")
    return SmtpTransport(host=host, port=int(config.get("CRM_SMTP_PORT", "587")), user=user, password=config.get("CRM_SMTP_PASSWORD"), starttls=starttls)


def public_url(session: Session) -> str:
    """The app's public address: the setting when staff set it, else CRM_PUBLIC_URL, else the default."""
    if session.get(Setting, "public_url") is None and config.get("CRM_PUBLIC_URL"):
        return config.get("CRM_PUBLIC_URL").rstrip("/")
    return str(settings.get(session, "public_url")).rstrip("/")


def _branding(session: Session, base: str) -> dict[str, str]:
    brand = settings.branding(session)
    # The logo as a picture on the library's own server (mail clients block data: images); its digest in the
    # address, so a new logo is never an old one from a cache.
    logo_url = f"{base}/branding/logo?v={hashlib.blake2b(brand.logo.encode(), digest_size=6).hexdigest()}" if brand.logo else ""
    return {"library_name": brand.name, "library_address": brand.address, "library_logo_url": logo_url}


def contexts_for(session: Session, patron_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Merge fields (with signed preference links) for these patrons."""
    base = public_url(session)
    token = preference_tokens.maker()
    return templates.contexts(session, patron_ids, preference_url=lambda pid: f"{base}/preferences?token={token(pid)}", branding=_branding(session, base))


def prospect_contexts(session: Session, messages: dict[int, int]) -> dict[int, dict[str, Any]]:
    """Merge fields for messages to prospects (message id → prospect id), by message id: a prospect has no card
    and no preference page, so their link to change what they receive is the message's own unsubscribe page."""
    if not messages:
        return {}
    base, token = public_url(session), unsubscribe.maker()
    branding = _branding(session, base)
    found = {pid: (name, branch) for pid, name, branch in session.execute(
        select(Prospect.id, Prospect.name, Branch.name).outerjoin(Branch, Branch.id == Prospect.branch_id).where(Prospect.id.in_(set(messages.values()))))}
    return {
        mid: {"first_name": (found[pid][0] or "").split(" ")[0], "branch": found[pid][1] or "", "card_expires": "", "patron_type": "",
              "preferences_url": f"{base}/unsubscribe/{token(mid)}", **dict.fromkeys(templates.BRANDING_FIELDS, ""), **branding}
        for mid, pid in messages.items() if pid in found
    }


def with_survey_links(session: Session, contexts: dict[int, dict[str, Any]], survey_id: int | None) -> dict[int, dict[str, Any]]:
    """`contexts` with each patron's {{ survey_link }} to `survey_id` (unchanged without one): the one hook a
    campaign, and a journey step, use to send a survey."""
    if survey_id is None:
        return contexts
    link = survey_tokens.link_maker(public_url(session), survey_id)
    return {pid: {**context, "survey_link": link(pid)} for pid, context in contexts.items()}


def recommendations_for(session: Session, campaigns: Iterable[Campaign], pairs: list[tuple[int, int]],
                        choosers: dict[int, block.Chooser] | None = None) -> dict[tuple[int, int], Block]:
    """The {{ recommendations }} block of each (campaign id, patron id) whose campaign's body uses it;
    `choosers` (campaign id → its chooser) carries the feed and the blocks chosen so far from batch to batch."""
    choosers = {} if choosers is None else choosers
    out: dict[tuple[int, int], Block] = {}
    for campaign in campaigns:
        if block.uses_block(campaign.body_template):
            if campaign.id not in choosers:
                choosers[campaign.id] = block.Chooser(session, fallback=campaign.recommendations_fallback)
            ids = [pid for cid, pid in pairs if cid == campaign.id]
            out.update({(campaign.id, pid): b for pid, b in choosers[campaign.id].blocks(session, ids).items()})
    return out


def message_id(campaign_id: int, patron_id: int | None, prospect_id: int | None = None) -> str:
    """Deterministic: the same recipient of the same campaign always has the same Message-ID."""
    recipient = f"patron-{patron_id}" if prospect_id is None else f"prospect-{prospect_id}"
    return f"<campaign-{campaign_id}.{recipient}@{mail_domain()}>"


def build(*, rendered: Rendered, to: str, msg_id: str, preferences_url: str, base_url: str, token: str | None) -> Mail:
    """A multipart (text + HTML) message. With the message's unsubscribe `token` (a campaign message): one-click
    List-Unsubscribe headers (RFC 8058: the https link answers a POST) and the bounce address as envelope
    sender. Without (a test message, which no row records): the preference page only."""
    if token is None:
        headers, envelope = [("List-Unsubscribe", f"<{preferences_url}>")], None
    else:
        links = f"<mailto:{addresses.unsubscribe_address(token)}>, <{base_url}/unsubscribe/{token}>"
        headers, envelope = [("List-Unsubscribe", links), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")], addresses.bounce_address(token)
    return mime.build(mail_from=mail_from(), to=to, subject=rendered.subject, text=rendered.text, html=rendered.html, message_id=msg_id, date=utcnow(),
                      extra=headers, envelope=envelope)


def send_test_message(session: Session, *, to: str, rendered: Rendered, campaign_id: int, patron_id: int) -> None:
    """Send one rendered message to a staff address now (not recorded as a campaign message)."""
    context = contexts_for(session, [patron_id])[patron_id]
    rendered = Rendered(subject=f"[Test] {rendered.subject}", text=rendered.text, html=rendered.html)
    mail = build(rendered=rendered, to=to, msg_id=f"<test-{campaign_id}.patron-{patron_id}.{uuid.uuid4().hex}@{mail_domain()}>", preferences_url=context["preferences_url"],
                 base_url=public_url(session), token=None)
    with transport().connect() as sender:
        sender.send(mail)


# --- the worker side ----------------------------------------------------------------------------


def recover(db: Database, *, now: datetime | None = None) -> int:
    """Mark messages left "sending" by a dead worker (lease expired) as "unknown"; returns how many."""
    now = now or utcnow()
    with db.write() as session:
        return session.execute(
            update(Message)
            .where(Message.status == "sending", Message.lease_expires_at < now)
            .values(status="unknown", last_error=UNKNOWN_NOTE, lease_owner=None)
        ).rowcount


def claim(db: Database, *, owner: str, limit: int, lease: timedelta = CLAIM_LEASE, channel: str = "email", now: datetime | None = None) -> list[int]:
    """Lease up to `limit` due messages of campaigns on `channel` to `owner` (SKIP LOCKED on PostgreSQL,
    BEGIN IMMEDIATE on SQLite)."""
    now = now or utcnow()
    with db.write() as session:
        ids = list(
            session.scalars(
                select(Message.id)
                .where(
                    Message.status == "queued",
                    or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
                    or_(Message.lease_expires_at.is_(None), Message.lease_expires_at < now),
                    Message.campaign_id.in_(select(Campaign.id).where(Campaign.channel == channel)),
                )
                .order_by(Message.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            session.execute(update(Message).where(Message.id.in_(ids)).values(lease_owner=owner, lease_expires_at=now + lease))
    return ids


def _consent_granted(patron_id: Any, channel: Any, topic: Any):
    """SQL: the patron currently consents to the channel and topic."""
    return exists().where(
        CurrentConsent.patron_id == patron_id,
        CurrentConsent.channel == channel,
        CurrentConsent.topic == topic,
        CurrentConsent.granted.is_(True),
    )


# The values that mark a message "sending": one more attempt, a send lease, its Message-ID (bound per message).
_SENDING = {"status": "sending", "attempts": Message.attempts + 1, "lease_expires_at": bindparam("m_lease"), "message_id": bindparam("m_message_id")}


def _recipient(session: Session, msg: Message, campaign: Campaign) -> str | None:
    """The address a queued message may go to now (consent, address, not erased, not on the do-not-mail list), or None."""
    if msg.prospect_id is not None:
        prospect = session.get(Prospect, msg.prospect_id)
        choice = session.get(ProspectConsent, (msg.prospect_id, campaign.topic))
        email = prospect.email if prospect is not None and prospect.patron_id is None and choice is not None and choice.granted else None
    else:
        patron = session.get(Patron, msg.patron_id) if msg.patron_id else None
        consented = patron is not None and not patron.erased_at and session.scalar(select(_consent_granted(patron.id, campaign.channel, campaign.topic)))
        email = patron.email if consented else None
    return email if email and not do_not_mail.suppressed(session, [email]) else None


def _start(session: Session, *, message_id_: int, owner: str, send_lease: timedelta) -> tuple[Campaign, str, str] | str | None:
    """Re-check and mark one message "sending": (campaign, its Message-ID, address); None if it is no longer
    ours, "skipped" if consent, address or permission to mail is gone."""
    msg = session.get(Message, message_id_)
    if msg is None or msg.status != "queued" or msg.lease_owner != owner:
        return None
    campaign = session.get(Campaign, msg.campaign_id)
    to = _recipient(session, msg, campaign)
    if to is None:
        msg.status, msg.lease_owner, msg.last_error = "skipped", None, "No consent, address or permission to mail at send time."
        session.add(msg)
        return "skipped"
    header_id = message_id(campaign.id, msg.patron_id, msg.prospect_id)
    started = session.execute(
        update(Message).where(Message.id == msg.id, Message.status == "queued", Message.lease_owner == owner).values(**_SENDING),
        {"m_lease": utcnow() + send_lease, "m_message_id": header_id},
    ).rowcount
    return (campaign, header_id, to) if started == 1 else None


def _finish(db: Database, *, message_id_: int, owner: str, **values: Any) -> None:
    with db.write() as session:
        _record(session, message_id_=message_id_, owner=owner, **values)


def _record(session: Session, *, message_id_: int, owner: str, **values: Any) -> None:
    session.execute(update(Message).where(Message.id == message_id_, Message.lease_owner == owner).values(**values))


# The two statements every message runs, built once (executed with fresh values per message):
# mark it "sending" when, in one statement, it is still ours and queued, the patron still has this
# address and consent, and the address is not suppressed (else `_start` looks closer) ...
_START_FAST = (
    update(Message)
    .where(
        Message.id == bindparam("m_id"), Message.status == "queued", Message.lease_owner == bindparam("m_owner"),
        exists().where(Patron.id == bindparam("m_patron"), Patron.email == bindparam("m_email"), Patron.erased_at.is_(None)),
        _consent_granted(bindparam("m_patron"), bindparam("m_channel"), bindparam("m_topic")),
        ~exists().where(Suppression.email_hash == bindparam("m_hash")),
    )
    .values(**_SENDING)
)
_MARKED = select(Message.id).where(Message.id.in_(bindparam("m_ids", expanding=True)), Message.status == "sending", Message.lease_owner == bindparam("m_owner"))
# ... and record it sent once the SMTP server has accepted it.
_SENT = (
    update(Message)
    .where(Message.id == bindparam("m_id"), Message.lease_owner == bindparam("m_owner"))
    .values(status="sent", sent_at=bindparam("m_at"), lease_owner=None, last_error=None)
)


# A message whose template cannot be filled in for its patron fails with the reason, before it is "sending".
_BROKEN = (
    update(Message)
    .where(Message.id == bindparam("m_id"), Message.status == "queued", Message.lease_owner == bindparam("m_owner"))
    .values(status="failed", last_error=bindparam("m_error"), lease_owner=None, lease_expires_at=None)
)


def _render_window(rows: list, *, campaigns: dict[int, Campaign], contexts: dict[int, dict[str, Any]],
                   words: dict[int, dict[str, tuple[str, str]]], blocks: dict[tuple[int, int], Block], survey_links: dict | None = None) -> tuple[dict[int, Rendered], dict[int, str]]:
    """Fill in each message's templates (the patron's language's `words` where the campaign has them) before
    anything is marked: (rendered by id, reason by id for the failed); `contexts` by message id."""
    rendered, broken = {}, {}
    for row in rows:
        context = contexts.get(row.id)
        if context is None:
            continue  # no recipient any more: `_start` records it skipped
        if (row.campaign_id, row.patron_id) in blocks:
            context = {**context, "recommendations": blocks[(row.campaign_id, row.patron_id)]}
        campaign = campaigns[row.campaign_id]
        if campaign.survey_id and survey_links and row.patron_id:
            context = {**context, "survey_link": survey_links[campaign.survey_id](row.patron_id)}
        subject, body = variants.pick((campaign.subject_template, campaign.body_template), words.get(campaign.id, {}), row.language)
        try:
            rendered[row.id] = templates.render(subject=subject, body=body, context=context)
        except ValueError as exc:
            broken[row.id] = f"The message could not be filled in for this patron: {exc}"[:500]
    return rendered, broken


def _start_group(conn: Connection, rows: list, *, owner: str, campaigns: dict[int, Campaign], lease_until: datetime) -> set[int]:
    """Mark these messages to patrons "sending" where `_START_FAST` allows; the ids it marked (messages to
    prospects are marked one by one by `_start`)."""
    rows = [row for row in rows if row.patron_id is not None]
    if not rows:
        return set()
    conn.execute(_START_FAST, [
        {"m_id": row.id, "m_owner": owner, "m_patron": row.patron_id, "m_email": row.email, "m_channel": campaigns[row.campaign_id].channel,
         "m_topic": campaigns[row.campaign_id].topic, "m_hash": do_not_mail.email_hash(row.email), "m_lease": lease_until,
         "m_message_id": message_id(row.campaign_id, row.patron_id)}
        for row in rows
    ])
    return set(conn.scalars(_MARKED, {"m_ids": [row.id for row in rows], "m_owner": owner}))


def _record_sent(conn: Connection, ids: list[int], *, owner: str) -> None:
    if ids:
        now = utcnow()
        conn.execute(_SENT, [{"m_id": mid, "m_owner": owner, "m_at": now} for mid in ids])


def _release(db: Database, *, ids: list[int], owner: str, reason: str | None = None) -> None:
    """Give back messages never attempted (the mail server or the outbox was down), queued again; with
    `reason`, each one's note says why sending is paused (what the Sent mail page shows)."""
    if not ids:
        return
    values: dict[str, Any] = {"status": "queued", "lease_owner": None, "lease_expires_at": None, "next_attempt_at": utcnow() + RETRY_AFTER_OUTAGE,
                              "attempts": case((Message.status == "sending", Message.attempts - 1), else_=Message.attempts)}  # not an attempt
    if reason:
        values["last_error"] = (PAUSED + reason)[:500]
    with db.write() as session:
        session.execute(update(Message).where(Message.id.in_(ids), Message.status.in_(("queued", "sending")), Message.lease_owner == owner).values(**values))


@dataclass
class Throttle:
    per_minute: int
    last: float = 0.0
    most: int = WINDOW  # the largest window (texts: crmcore.texts.sending.WINDOW)

    @property
    def window(self) -> int:
        """How many messages are marked "sending" together: as many as go out in a tenth of a second
        at this rate (1 at ordinary rates, at most `most`). A crash leaves at most this many "unknown"."""
        return max(1, min(self.most, self.per_minute // 600))

    @property
    def gap(self) -> timedelta:
        return timedelta(seconds=60 / self.per_minute)

    def wait(self) -> None:
        gap = 60.0 / self.per_minute - (time.monotonic() - self.last)
        if gap > 0:
            time.sleep(gap)
        self.last = time.monotonic()


def _record_failure(db: Database, *, message_id_: int, owner: str, failure: SendFailure, to: str) -> str:
    if failure.ambiguous:
        _finish(db, message_id_=message_id_, owner=owner, status="unknown", last_error=str(failure)[:500], lease_owner=None)
        return "unknown"
    with db.read() as session:
        attempts = session.scalar(select(Message.attempts).where(Message.id == message_id_))  # this try included
    if failure.temporary and attempts < MAX_ATTEMPTS:
        retry_at = utcnow() + min(timedelta(minutes=2 ** (attempts - 1)), timedelta(hours=6))
        _finish(db, message_id_=message_id_, owner=owner, status="queued", next_attempt_at=retry_at, last_error=str(failure)[:500], lease_owner=None, lease_expires_at=None)
        return "retry"
    with db.write() as session:
        _record(session, message_id_=message_id_, owner=owner, status="failed", last_error=str(failure)[:500], lease_owner=None)
        if failure.hard_bounce:
            do_not_mail.suppress(session, email=to, reason="hard bounce")
    return "failed"


def send_batch(db: Database, *, ids: list[int], owner: str, throttle: Throttle, send_lease: timedelta = SEND_LEASE,
               choosers: dict[int, block.Chooser] | None = None) -> dict[str, int]:
    """Send the claimed messages over one connection; returns counts of outcomes. `choosers`: the
    recommendations of each campaign so far (see `recommendations_for`), kept by the caller from batch to batch.

    Messages are marked "sending" a group at a time: one short write transaction records the messages sent
    before as sent and marks the next group "sending" after re-checking consent. At ordinary rates a group is
    one message, marked after the one before has gone; at high rates (`Throttle.window` > 1) it is half a
    window, and the next group is marked, in a second thread, while this one is sent, so that the commit's
    wait for the disk overlaps the SMTP exchange. Either way at most a window is "sending" at any moment,
    and a crash leaves at most a window "unknown"."""
    outcome = {"sent": 0, "failed": 0, "retry": 0, "skipped": 0, "unknown": 0}
    with db.read() as session:
        rows = session.execute(
            select(Message.id, Message.patron_id, Message.prospect_id, Message.campaign_id, func.coalesce(Patron.email, Prospect.email).label("email"), Patron.language)
            .outerjoin(Patron, Patron.id == Message.patron_id).outerjoin(Prospect, Prospect.id == Message.prospect_id).where(Message.id.in_(ids))
        ).all()
        by_patron = contexts_for(session, [row.patron_id for row in rows if row.patron_id])
        contexts = {row.id: by_patron[row.patron_id] for row in rows if row.patron_id in by_patron}
        contexts.update(prospect_contexts(session, {row.id: row.prospect_id for row in rows if row.prospect_id}))
        base_url, unsubscribe_token = public_url(session), unsubscribe.maker()
        campaigns = {c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_({row.campaign_id for row in rows})))}
        survey_links = {c.survey_id: survey_tokens.link_maker(base_url, c.survey_id) for c in campaigns.values() if c.survey_id}
        words = variants.for_owners(session, owner="campaign", owner_ids=list(campaigns))
        blocks = recommendations_for(session, campaigns.values(), [(row.campaign_id, row.patron_id) for row in rows if row.patron_id], choosers)
    known = {row.id: row for row in rows}
    try:
        connection = transport().connect()
        sender = connection.__enter__()
    except (OSError, SendFailure) as exc:
        reason = str(exc) if isinstance(exc, SendFailure) else f"the mail server cannot be reached ({type(exc).__name__})"
        log.error("sending paused: %s", reason)
        _release(db, ids=ids, owner=owner, reason=reason)
        return outcome
    # At high rates the window goes in two halves, the next half marked (in a thread: the commit waits on the
    # disk, the SMTP exchange on the server) while this one is sent; at most a window is ever "sending".
    ahead = throttle.window > 1
    step = max(1, throttle.window // 2)
    groups = [ids[first : first + step] for first in range(0, len(ids), step)]
    to_record: list[int] = []  # taken by the SMTP server, to be recorded by the next transaction
    given: list[int] = []  # taken, and being recorded by the transaction in hand

    def prepare(group: list[int], sent: list[int]) -> tuple[dict[int, Rendered], dict[int, str], set[int]]:
        """Record `sent`, fill in `group`'s templates and mark it "sending": one short write transaction.
        Templates are filled in before a message is "sending": a template error fails that message with its
        reason, never leaves it "unknown"."""
        rendered, broken = _render_window(
            [known[mid] for mid in group if mid in known], campaigns=campaigns, contexts=contexts, words=words, blocks=blocks, survey_links=survey_links
        )
        with conn.begin():
            _record_sent(conn, sent, owner=owner)
            if broken:
                conn.execute(_BROKEN, [{"m_id": mid, "m_owner": owner, "m_error": error} for mid, error in broken.items()])
            mailable = [known[mid] for mid in group if mid in rendered and known[mid].email]
            started = _start_group(conn, mailable, owner=owner, campaigns=campaigns, lease_until=utcnow() + send_lease + throttle.gap * 2 * step)
        return rendered, broken, started

    def begin(group: list[int]) -> Future:
        nonlocal to_record, given
        given, to_record = to_record, []
        return marker.submit(prepare, group, given)

    def settle() -> None:
        """Wait for the transaction in hand; if it failed, its sent messages are still to be recorded."""
        nonlocal marking, to_record, given
        if marking is not None:
            try:
                marking.result()
            except Exception:
                to_record = given + to_record
            marking, given = None, []

    with db.writer() as conn, ThreadPoolExecutor(max_workers=1) as marker:
        marking: Future | None = None  # the transaction in hand, in the thread
        try:
            marking = begin(groups[0])
            for number, group in enumerate(groups):
                rendered, broken, started = marking.result()
                marking, given = None, []
                if ahead and number + 1 < len(groups):
                    marking = begin(groups[number + 1])
                outcome["failed"] += len(broken)
                for position, mid in enumerate(group, number * step):
                    if mid in broken:
                        continue
                    if mid in started:
                        row = known[mid]
                        campaign, header_id, to = campaigns[row.campaign_id], message_id(row.campaign_id, row.patron_id), row.email
                    else:
                        with db.write() as session:
                            begun = _start(session, message_id_=mid, owner=owner, send_lease=send_lease)
                        if begun == "skipped":
                            outcome["skipped"] += 1
                        if not isinstance(begun, tuple):
                            continue
                        campaign, header_id, to = begun
                    context = contexts[mid]
                    mail = build(rendered=rendered[mid], to=to, msg_id=header_id, preferences_url=context["preferences_url"],
                                 base_url=base_url, token=unsubscribe_token(mid))
                    throttle.wait()
                    try:
                        sender.send(mail)
                    except SendFailure as failure:
                        if failure.outage:  # nothing went out: this one and the rest wait for the fault to go
                            log.error("sending paused: %s", failure)
                            settle()  # the next group's marks, if any, are given back too
                            _release(db, ids=ids[position:], owner=owner, reason=str(failure))
                            return outcome
                        outcome[_record_failure(db, message_id_=mid, owner=owner, failure=failure, to=to)] += 1
                        if failure.ambiguous:  # the connection is gone: give the rest back untried
                            settle()
                            _release(db, ids=ids[position + 1 :], owner=owner)
                            return outcome
                        continue
                    to_record.append(mid)
                    outcome["sent"] += 1
                if not ahead and number + 1 < len(groups):
                    marking = begin(groups[number + 1])
        finally:
            settle()
            if to_record:
                with conn.begin():
                    _record_sent(conn, to_record, owner=owner)
            try:
                connection.__exit__(None, None, None)
            except Exception:  # closing a connection that already failed must not hide the outcome
                pass
    return outcome


def update_campaigns(db: Database) -> None:
    """Scheduled campaigns whose time has come are sending; sending campaigns with nothing left are sent."""
    now = utcnow()
    with db.write() as session:
        session.execute(update(Campaign).where(Campaign.status == "scheduled", Campaign.scheduled_at <= now).values(status="sending", updated_at=now))
        pending = exists().where(Message.campaign_id == Campaign.id, Message.status.in_(("queued", "sending")))
        session.execute(update(Campaign).where(and_(Campaign.status == "sending", ~pending)).values(status="sent", updated_at=now))


def status(session: Session, *, actor: Actor, now: datetime | None = None) -> dict[str, Any]:
    """For staff: how many messages wait to go out, and whether sending is paused (why, since when):
    the last fault of the way out, unless a message has gone out since."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    now = now or utcnow()
    waiting = session.scalar(select(func.count()).where(Message.status == "queued")) or 0
    due = session.scalar(select(func.count()).where(Message.status == "queued", or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now))) or 0
    paused = session.execute(
        select(Message.last_error, Message.next_attempt_at)
        .where(Message.status == "queued", Message.last_error.like(PAUSED + "%"))
        .order_by(Message.next_attempt_at.desc())
        .limit(1)
    ).first()
    out: dict[str, Any] = {"waiting": int(waiting), "due": int(due), "paused": None, "paused_at": None}
    if paused is not None and paused.next_attempt_at is not None:
        at = paused.next_attempt_at - RETRY_AFTER_OUTAGE
        last_sent = session.scalar(select(func.max(Message.sent_at)))
        if last_sent is None or _aware(last_sent) < _aware(at):
            out.update(paused=paused.last_error[len(PAUSED):], paused_at=at)
    return out


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def send_pending(db: Database, *, budget_seconds: float = 50.0, claim_lease: timedelta = CLAIM_LEASE, send_lease: timedelta = SEND_LEASE) -> dict[str, int]:
    """The worker job: recover, then claim and send batches until nothing is due or the budget is spent."""
    started, owner = time.monotonic(), worker_id()
    totals = {"sent": 0, "failed": 0, "retry": 0, "skipped": 0, "unknown": recover(db)}
    with db.read() as session:
        rate = int(settings.get(session, "send_rate_per_minute"))
    throttle = Throttle(per_minute=rate)
    choosers: dict[int, block.Chooser] = {}  # one run's recommendations per campaign: the feed read once, each distinct block rendered once
    while time.monotonic() - started < budget_seconds:
        ids = claim(db, owner=owner, limit=max(1, min(MAX_BATCH, rate // 12)), lease=claim_lease)  # about 5 s of sending
        if not ids:
            break
        for key, n in send_batch(db, ids=ids, owner=owner, throttle=throttle, send_lease=send_lease, choosers=choosers).items():
            totals[key] += n
    update_campaigns(db)
    return {k: v for k, v in totals.items() if v}
