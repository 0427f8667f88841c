"""Inbound mail: what comes back after sending, processed so that the patron's word and the mail system's are heard.

Liaison runs its own small SMTP listener (aiosmtpd, `python -m crmcore inbound`, started by `serve` when
CRM_INBOUND_PORT is set) rather than polling a mailbox over IMAP: it needs no mailbox, password or polling
interval, sees the envelope recipient (which carries each message's token), and answers at once. The
library's mail server hands it the `unsubscribe+…@` and `bounce+…@` addresses of the inbound domain.

- `unsubscribe+<token>@…` (the mailto in List-Unsubscribe): the patron's own withdrawal of that message's topic.
- A delivery status notification (RFC 3464 `multipart/report; report-type=delivery-status`) to
  `bounce+<token>@…` or naming a Liaison Message-ID: a permanent failure (5.x.x) puts the address on the
  do-not-mail list; a temporary one (4.x.x, or "delayed") is counted, and SOFT_LIMIT of them within
  SOFT_DAYS put it there too.
- A complaint (RFC 5965 `multipart/report; report-type=feedback-report`): the patron is unsubscribed from
  everything, as their own choice.
- Mail to the help address (CRM_HELP_ADDRESS): a request, or the next message of one (crmcore.inbox.incoming).
- Anything else, or a report about no message Liaison sent, is kept (up to MAX_RAW bytes) for staff to
  review on the Sent mail page. Nothing is ever a crash: a message that cannot be read is kept the same way.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from sqlalchemy import func, select
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import addresses, do_not_mail, preferences, unsubscribe
from crmcore.db import Database
from crmcore.inbox import incoming
from crmcore.models import Bounce, InboundMail, Message, Patron, Prospect, utcnow
from crmcore.signups import prospects

log = logging.getLogger("liaison.inbound")
SOFT_LIMIT, SOFT_DAYS = 3, 30
MAX_RAW = 1_000_000
KIND_LABELS = {"unsubscribe": "Unsubscribed by mail", "hard_bounce": "Permanent failures", "soft_bounce": "Temporary failures",
               "complaint": "Spam complaints", "unknown": "Not understood", "request": "Requests"}
KINDS = tuple(KIND_LABELS)
_OUR_MESSAGE_ID = re.compile(r"<campaign-(\d+)\.(patron|prospect)-(\d+)@")


def process(session: Session, *, recipients: list[str], data: bytes, now: datetime | None = None) -> InboundMail:
    """Act on one inbound message and record what was done (an `inbound_mail` row, returned)."""
    now = now or utcnow()
    try:
        kind, message_id, outcome = _act(session, recipients=recipients, data=data, now=now)
    except Exception as exc:  # a message nobody can read is kept for review, never a crash of the listener
        log.warning("inbound mail could not be read: %s", type(exc).__name__)
        session.rollback()
        kind, message_id, outcome = "unknown", None, f"could not be read ({type(exc).__name__})"
    row = InboundMail(received_at=now, kind=kind, message_id=message_id, outcome=outcome[:300])
    if kind == "unknown":
        row.raw = data[:MAX_RAW]
        row.subject = _subject(data)
    session.add(row)
    return row


def _act(session: Session, *, recipients: list[str], data: bytes, now: datetime) -> tuple[str, int | None, str]:
    if any(addresses.is_help_address(a) for a in recipients):
        return "request", None, incoming.receive(session, data=data, now=now)[1]
    for address in recipients:
        if (token := addresses.token_in(address, "unsubscribe")) is not None:
            try:
                found, changed = unsubscribe.withdraw(session, token=token, source="mailto")
            except ValueError:
                return "unknown", None, "an unsubscribe address whose token is not one Liaison made"
            return "unsubscribe", found.message_id, f"withdrew {found.described}" if changed else f"{found.described}: already withdrawn"
    mail = message_from_bytes(data, policy=policy.default)
    report = mail.get_content_type() == "multipart/report" and (mail.get_param("report-type") or "").lower()
    if report not in ("delivery-status", "feedback-report"):
        return "unknown", None, "not a report Liaison understands"
    message = _our_message(session, recipients=recipients, mail=mail)
    if message is None:
        return "unknown", None, f"a {report} report about no message Liaison sent"
    if report == "feedback-report":
        if message.prospect_id is not None:  # a prospect (crmcore.signups): every topic of theirs withdrawn
            withdrawn = prospects.withdraw_everything(session, prospect_id=message.prospect_id, source="spam complaint")
            return "complaint", message.id, f"unsubscribed from everything ({withdrawn} withdrawn)"
        if message.patron_id is None:
            return "complaint", message.id, "a complaint about a message to a patron since erased"
        withdrawn = preferences.withdraw_everything(session, patron_id=message.patron_id, source="spam complaint")
        return "complaint", message.id, f"unsubscribed from everything ({withdrawn} withdrawn)"
    delivery = _delivery(mail)
    if delivery is None:
        return "unknown", message.id, "a delivery report without a failed or delayed recipient"
    hard, address = delivery
    patron = session.get(Patron, message.patron_id) if message.patron_id else None
    prospect = session.get(Prospect, message.prospect_id) if message.prospect_id else None
    address = address or (patron.email if patron else prospect.email if prospect else None)
    if not address:
        return "unknown", message.id, "a bounce naming no address"
    digest = do_not_mail.email_hash(address)
    session.add(Bounce(email_hash=digest, hard=hard, at=now, message_id=message.id))
    if hard:
        do_not_mail.suppress(session, email=address, reason="hard bounce (report)")
        return "hard_bounce", message.id, "permanent failure: address on the do-not-mail list"
    session.flush()
    soft = session.scalar(select(func.count()).where(Bounce.email_hash == digest, Bounce.hard.is_(False), Bounce.at >= now - timedelta(days=SOFT_DAYS)))
    if soft >= SOFT_LIMIT:
        do_not_mail.suppress(session, email=address, reason=f"{SOFT_LIMIT} soft bounces in {SOFT_DAYS} days")
        return "soft_bounce", message.id, f"temporary failure, {soft} in {SOFT_DAYS} days: address on the do-not-mail list"
    return "soft_bounce", message.id, f"temporary failure ({soft} in {SOFT_DAYS} days)"


def _our_message(session: Session, *, recipients: list[str], mail: EmailMessage) -> Message | None:
    """The message a report is about: the VERP token of the bounce address, else the original's Message-ID."""
    for address in recipients:
        if (token := addresses.token_in(address, "bounce")) is not None:
            try:
                return session.get(Message, unsubscribe.read(token))
            except ValueError:
                return None
    for part in mail.walk():
        if part.get_content_type() in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            text = part.as_string() if part.get_content_type() == "message/rfc822" else part.get_content()
            if found := _OUR_MESSAGE_ID.search(text if isinstance(text, str) else str(text)):
                recipient = Message.patron_id if found[2] == "patron" else Message.prospect_id
                return session.scalar(select(Message).where(Message.campaign_id == int(found[1]), recipient == int(found[3])))
    return None


def _delivery(mail: EmailMessage) -> tuple[bool, str | None] | None:
    """(permanent failure?, the failed address) from the report's per-recipient fields (RFC 3464)."""
    for part in mail.walk():
        if part.get_content_type() == "message/delivery-status":
            for fields in part.get_payload()[1:] or part.get_payload():
                action = str(fields.get("Action", "")).strip().lower()
                status = str(fields.get("Status", "")).strip()
                recipient = str(fields.get("Final-Recipient") or fields.get("Original-Recipient") or "")
                address = recipient.partition(";")[2].strip() or None
                if action in ("failed", "delayed") or status[:1] in ("4", "5"):
                    return (action == "failed" and not status.startswith("4")) or status.startswith("5"), address
    return None


def _subject(data: bytes) -> str | None:
    try:
        return str(message_from_bytes(data, policy=policy.default).get("Subject") or "")[:300] or None
    except Exception:  # an unreadable header is no reason to lose the message
        return None


def recent(session: Session, *, actor: Actor, limit: int = 100) -> dict:
    """For the Sent mail page: counts by kind over 30 days and the messages waiting for review."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    since = utcnow() - timedelta(days=30)
    counts = dict(session.execute(select(InboundMail.kind, func.count()).where(InboundMail.received_at >= since).group_by(InboundMail.kind)).all())
    waiting = session.execute(
        select(InboundMail.id, InboundMail.received_at, InboundMail.subject, InboundMail.outcome)
        .where(InboundMail.kind == "unknown", InboundMail.reviewed_at.is_(None))
        .order_by(InboundMail.received_at.desc())
        .limit(limit)
    ).all()
    return {"counts": {k: counts.get(k, 0) for k in KINDS}, "review": [dict(r._mapping) for r in waiting]}


def mark_reviewed(session: Session, *, actor: Actor, inbound_id: int) -> None:
    """Done with one kept message: its raw content is dropped."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    row = session.get(InboundMail, inbound_id)
    if row is None:
        raise ValueError(f"No inbound message {inbound_id}.")
    row.reviewed_at, row.raw = utcnow(), None
    session.add(row)


class Handler:
    """aiosmtpd handler: each message is processed in its own transaction, and always answered 250."""

    def __init__(self, db: Database):
        self.db = db

    async def handle_DATA(self, server, session, envelope):
        with self.db.write() as db_session:
            process(db_session, recipients=list(envelope.rcpt_tos), data=envelope.original_content or envelope.content)
        return "250 OK"


def start(db: Database, *, host: str, port: int) -> Controller:
    """Start the listener in a thread; stop it with `.stop()`."""
    controller = Controller(Handler(db), hostname=host, port=port, data_size_limit=incoming.MAX_MESSAGE)
    controller.start()
    return controller


def listen(db: Database, *, host: str, port: int) -> None:
    """Run the listener until interrupted (the `inbound` command)."""
    controller = start(db, host=host, port=port)
    log.info("inbound mail listener on %s:%s", host, port)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()
