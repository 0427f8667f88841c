"""The sender: claims queued messages with a lease, re-checks consent, renders, sends, records outcomes.

At most once: a message is committed as "sending" before its SMTP transaction starts, and only the
worker holding its lease may do that or record its outcome. A message still "sending" when its lease
has expired belonged to a worker that died mid-send: it becomes "unknown" for review, never resent.
With no SMTP server configured, messages are written to the outbox as .eml files instead.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlmodel import Session

from crmcore import campaign_templates, config, email_suppression, preference_tokens, privacy, settings
from crmcore.campaign_templates import Rendered
from crmcore.db import Database
from crmcore.models import Campaign, CurrentConsent, Message, Patron, Setting, Suppression, utcnow
from crmcore.smtp_transport import OutboxTransport, SendFailure, SmtpTransport, Transport

log = logging.getLogger("liaison.sending")

CLAIM_LEASE = timedelta(minutes=5)
SEND_LEASE = timedelta(minutes=2)  # longer than any SMTP timeout
MAX_BATCH = 50
MAX_ATTEMPTS = 8
UNKNOWN_NOTE = "The worker stopped while sending this message: it may or may not have gone out. Not resent."


def transport() -> Transport:
    """SMTP when CRM_SMTP_HOST is set, else the outbox folder."""
    host = config.get("CRM_SMTP_HOST")
    if not host:
        return OutboxTransport()
    user = config.get("CRM_SMTP_USER")
    starttls = config.get("CRM_SMTP_STARTTLS", "true" if user else "false").lower() in ("1", "true", "yes", "on")
    return SmtpTransport(host=host, port=int(config.get("CRM_SMTP_PORT", "587")), user=user, password=config.get("CRM_SMTP_PASSWORD"), starttls=starttls)


def mail_from() -> str:
    return config.get("CRM_MAIL_FROM", "library@localhost")


def mail_domain() -> str:
    address = parseaddr(mail_from())[1]
    return address.rpartition("@")[2] or "localhost"


def public_url(session: Session) -> str:
    """The app's public address: the setting when staff set it, else CRM_PUBLIC_URL, else the default."""
    if session.get(Setting, "public_url") is None and config.get("CRM_PUBLIC_URL"):
        return config.get("CRM_PUBLIC_URL").rstrip("/")
    return str(settings.get(session, "public_url")).rstrip("/")


def contexts_for(session: Session, patron_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Merge fields (with signed preference links) for these patrons."""
    base = public_url(session)
    return campaign_templates.contexts(session, patron_ids, preference_url=lambda pid: f"{base}/preferences?token={preference_tokens.make(pid)}")


def message_id(campaign_id: int, patron_id: int) -> str:
    """Deterministic: the same recipient of the same campaign always has the same Message-ID."""
    return f"<campaign-{campaign_id}.patron-{patron_id}@{mail_domain()}>"


def build(*, rendered: Rendered, to: str, msg_id: str, preferences_url: str, token: str | None) -> EmailMessage:
    """A multipart (text + HTML) message with one-click List-Unsubscribe headers."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = mail_from(), to, rendered.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = msg_id
    mailto = f"mailto:{parseaddr(mail_from())[1]}?subject=unsubscribe" + (f"%20{token}" if token else "")
    msg["List-Unsubscribe"] = f"<{mailto}>, <{preferences_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


def send_test_message(session: Session, *, to: str, rendered: Rendered, campaign_id: int, patron_id: int) -> None:
    """Send one rendered message to a staff address now (not recorded as a campaign message)."""
    context = contexts_for(session, [patron_id])[patron_id]
    rendered = Rendered(subject=f"[Test] {rendered.subject}", text=rendered.text, html=rendered.html)
    msg = build(rendered=rendered, to=to, msg_id=f"<test-{campaign_id}.{uuid.uuid4().hex}@{mail_domain()}>", preferences_url=context["preferences_url"], token=None)
    with transport().connect() as sender:
        sender.send(msg, to)


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


def claim(db: Database, *, owner: str, limit: int, lease: timedelta = CLAIM_LEASE) -> list[int]:
    """Lease up to `limit` due messages to `owner` (SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on SQLite)."""
    now = utcnow()
    with db.write() as session:
        ids = list(
            session.scalars(
                select(Message.id)
                .where(
                    Message.status == "queued",
                    or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now),
                    or_(Message.lease_expires_at.is_(None), Message.lease_expires_at < now),
                )
                .order_by(Message.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            session.execute(update(Message).where(Message.id.in_(ids)).values(lease_owner=owner, lease_expires_at=now + lease))
    return ids


def _consent_granted(patron_id: int, campaign: Campaign):
    """SQL: the patron currently consents to the campaign's channel and topic."""
    return exists().where(
        CurrentConsent.patron_id == patron_id,
        CurrentConsent.channel == campaign.channel,
        CurrentConsent.topic == campaign.topic,
        CurrentConsent.granted.is_(True),
    )


def _sending(campaign_id: int, patron_id: int, send_lease: timedelta) -> dict[str, Any]:
    """The values that mark a message "sending": one more attempt, a send lease, its Message-ID."""
    return {"status": "sending", "attempts": Message.attempts + 1, "lease_expires_at": utcnow() + send_lease, "message_id": message_id(campaign_id, patron_id)}


def _start(session: Session, *, message_id_: int, owner: str, send_lease: timedelta) -> tuple[Message, Campaign] | str | None:
    """Re-check and mark one message "sending"; None if it is no longer ours, "skipped" if consent is gone."""
    msg = session.get(Message, message_id_)
    if msg is None or msg.status != "queued" or msg.lease_owner != owner:
        return None
    campaign = session.get(Campaign, msg.campaign_id)
    patron = session.get(Patron, msg.patron_id) if msg.patron_id else None
    consented = patron is not None and session.scalar(select(_consent_granted(patron.id, campaign)))
    if not consented or not patron.email or patron.erased_at or email_suppression.suppressed(session, [patron.email]):
        msg.status, msg.lease_owner, msg.last_error = "skipped", None, "No consent, address or permission to mail at send time."
        session.add(msg)
        return "skipped"
    started = session.execute(
        update(Message)
        .where(Message.id == msg.id, Message.status == "queued", Message.lease_owner == owner)
        .values(**_sending(campaign.id, patron.id, send_lease))
    ).rowcount
    return (msg, campaign) if started == 1 else None


def _finish(db: Database, *, message_id_: int, owner: str, **values: Any) -> None:
    with db.write() as session:
        _record(session, message_id_=message_id_, owner=owner, **values)


def _record(session: Session, *, message_id_: int, owner: str, **values: Any) -> None:
    session.execute(update(Message).where(Message.id == message_id_, Message.lease_owner == owner).values(**values))


def _sent() -> dict[str, Any]:
    """The values that record a message the SMTP server accepted."""
    return {"status": "sent", "sent_at": utcnow(), "lease_owner": None, "last_error": None}


def _start_fast(session: Session, *, message_id_: int, owner: str, campaign: Campaign, patron_id: int, email: str, send_lease: timedelta) -> bool:
    """`_start` in one statement for the usual case: still ours and queued, the patron still has this
    address, consent, and no suppression. False means: look closer with `_start`."""
    return session.execute(
        update(Message)
        .where(
            Message.id == message_id_, Message.status == "queued", Message.lease_owner == owner,
            exists().where(Patron.id == patron_id, Patron.email == email, Patron.erased_at.is_(None)),
            _consent_granted(patron_id, campaign),
            ~exists().where(Suppression.email_hash == privacy.email_hash(email)),
        )
        .values(**_sending(campaign.id, patron_id, send_lease))
    ).rowcount == 1


def _release(db: Database, *, ids: list[int], owner: str) -> None:
    """Give back messages never attempted (e.g. the SMTP server could not be reached)."""
    with db.write() as session:
        session.execute(
            update(Message)
            .where(Message.id.in_(ids), Message.status == "queued", Message.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None, next_attempt_at=utcnow() + timedelta(minutes=1))
        )


@dataclass
class Throttle:
    per_minute: int
    last: float = 0.0

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
            privacy.suppress(session, email=to, reason="hard bounce")
    return "failed"


def send_batch(db: Database, *, ids: list[int], owner: str, throttle: Throttle, send_lease: timedelta = SEND_LEASE) -> dict[str, int]:
    """Send the claimed messages over one connection; returns counts of outcomes.

    One write transaction per message: it records the previous message as sent and marks this one
    "sending" (after re-checking consent), so at most one message is ever in flight."""
    outcome = {"sent": 0, "failed": 0, "retry": 0, "skipped": 0, "unknown": 0}
    with db.read() as session:
        rows = session.execute(
            select(Message.id, Message.patron_id, Message.campaign_id, Patron.email).outerjoin(Patron, Patron.id == Message.patron_id).where(Message.id.in_(ids))
        ).all()
        contexts = contexts_for(session, [row.patron_id for row in rows if row.patron_id])
        campaigns = {c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_({row.campaign_id for row in rows})))}
    known = {row.id: row for row in rows}
    try:
        connection = transport().connect()
        sender = connection.__enter__()
    except (OSError, SendFailure) as exc:
        log.error("cannot reach the mail server: %s", type(exc).__name__)
        _release(db, ids=ids, owner=owner)
        return outcome
    sent: int | None = None  # sent over SMTP, to be recorded in the next transaction
    try:
        for position, mid in enumerate(ids):
            row = known.get(mid)
            with db.write() as session:
                if sent is not None:
                    _record(session, message_id_=sent, owner=owner, **_sent())
                    sent = None
                if row and row.email and _start_fast(session, message_id_=mid, owner=owner, campaign=campaigns[row.campaign_id], patron_id=row.patron_id, email=row.email, send_lease=send_lease):
                    campaign, patron_id, to = campaigns[row.campaign_id], row.patron_id, row.email
                else:
                    started = _start(session, message_id_=mid, owner=owner, send_lease=send_lease)
                    if started == "skipped":
                        outcome["skipped"] += 1
                        continue
                    if started is None:
                        continue
                    msg, campaign = started
                    patron_id, to = msg.patron_id, session.get(Patron, msg.patron_id).email
            context = contexts.get(patron_id)
            try:
                rendered = campaign_templates.render(subject=campaign.subject_template, body=campaign.body_template, context=context)
            except ValueError as exc:
                _finish(db, message_id_=mid, owner=owner, status="failed", last_error=str(exc)[:500], lease_owner=None)
                outcome["failed"] += 1
                continue
            token = context["preferences_url"].rpartition("token=")[2]
            email = build(rendered=rendered, to=to, msg_id=message_id(campaign.id, patron_id), preferences_url=context["preferences_url"], token=token)
            throttle.wait()
            try:
                sender.send(email, to)
            except SendFailure as failure:
                outcome[_record_failure(db, message_id_=mid, owner=owner, failure=failure, to=to)] += 1
                if failure.ambiguous:  # the connection is gone: give the rest back untried
                    _release(db, ids=ids[position + 1 :], owner=owner)
                    break
                continue
            sent = mid
            outcome["sent"] += 1
    finally:
        if sent is not None:
            _finish(db, message_id_=sent, owner=owner, **_sent())
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


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def send_pending(db: Database, *, budget_seconds: float = 50.0, claim_lease: timedelta = CLAIM_LEASE, send_lease: timedelta = SEND_LEASE) -> dict[str, int]:
    """The worker job: recover, then claim and send batches until nothing is due or the budget is spent."""
    started, owner = time.monotonic(), worker_id()
    totals = {"sent": 0, "failed": 0, "retry": 0, "skipped": 0, "unknown": recover(db)}
    with db.read() as session:
        rate = int(settings.get(session, "send_rate_per_minute"))
    throttle = Throttle(per_minute=rate)
    while time.monotonic() - started < budget_seconds:
        ids = claim(db, owner=owner, limit=max(1, min(MAX_BATCH, rate)), lease=claim_lease)
        if not ids:
            break
        for key, n in send_batch(db, ids=ids, owner=owner, throttle=throttle, send_lease=send_lease).items():
            totals[key] += n
    update_campaigns(db)
    return {k: v for k, v in totals.items() if v}
