"""The text sender: campaign messages on channel sms (in the patron's language's words where the campaign has
them, with their own {{ survey_link }}), through the campaign pipeline's claim, leases,
throttle, retries and outcomes (crmcore.campaigns.sending), out through Kannel (or the text outbox).

At most once, as for mail: a text is committed "sending" before its HTTP request, recorded "sent" once
Kannel took it; one still "sending" after its lease is "unknown" (`sending.recover`), never resent. Only
what Kannel did not take (a refused connection, 503) is tried again. Nothing goes out in quiet hours:
the due texts stay queued until the window opens. `now` is the clock (injected by tests).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable
from urllib.parse import quote

from sqlalchemy import bindparam, exists, select, update

from crmcore.admin import config, settings
from crmcore.campaigns import sending
from crmcore.campaigns.sending import Throttle
from crmcore.campaigns.transport import SendFailure
from crmcore.surveys import tokens as survey_tokens
from crmcore.db import Database
from crmcore.languages import variants
from crmcore.models import Campaign, Message, Patron, utcnow
from crmcore.texts import do_not_text, gateway, phones, quiet_hours, segments, wording

# Texts marked "sending" together at most (mail: 10): a text's exchange is shorter than a mail's, so a durable
# commit per ten would cap the rate; a crash at 100,000 a minute leaves at most 50 (30 ms of texts) "unknown".
WINDOW = 50
SKIPPED_NOTE = "No consent, usable number or permission to text at send time."

_START = (
    update(Message)
    .where(
        Message.id == bindparam("m_id"), Message.status == "queued", Message.lease_owner == bindparam("m_owner"),
        exists().where(Patron.id == bindparam("m_patron"), Patron.phone == bindparam("m_phone"), Patron.erased_at.is_(None)),
        sending._consent_granted(bindparam("m_patron"), "sms", bindparam("m_topic")),
    )
    .values(status="sending", attempts=Message.attempts + 1, lease_expires_at=bindparam("m_lease"), message_id=bindparam("m_name"))
)
_SENT = (
    update(Message)
    .where(Message.id == bindparam("m_id"), Message.lease_owner == bindparam("m_owner"))
    .values(status="sent", sent_at=bindparam("m_at"), parts=bindparam("m_parts"), lease_owner=None, last_error=None)
)
_SKIP = (
    update(Message)
    .where(Message.id == bindparam("m_id"), Message.status == "queued", Message.lease_owner == bindparam("m_owner"))
    .values(status=bindparam("m_status"), last_error=bindparam("m_error"), lease_owner=None, lease_expires_at=None)
)


def _callback_base(session) -> str:
    """The app's address as Kannel reaches it (CRM_SMS_CALLBACK_URL, else the public address)."""
    return (config.get("CRM_SMS_CALLBACK_URL") or sending.public_url(session)).rstrip("/")


def _dlr_url(base: str, message_id: int) -> str | None:
    """Where Kannel reports the delivery of one text (%d: Kannel puts the report's type there); None without
    CRM_SMS_SECRET, which the route requires."""
    secret = config.get("CRM_SMS_SECRET")
    return f"{base}/sms/dlr?secret={quote(secret, safe='')}&message={message_id}&type=%d" if secret else None


def _file_name(campaign_id: int, patron_id: int) -> str:
    return f"campaign-{campaign_id}.patron-{patron_id}"


def send_batch(db: Database, *, ids: list[int], owner: str, throttle: Throttle, send_lease: timedelta = sending.SEND_LEASE) -> dict[str, int]:
    """Send these claimed texts over one connection to Kannel; returns counts of outcomes."""
    outcome = {"sent": 0, "failed": 0, "retry": 0, "skipped": 0, "unknown": 0}
    with db.read() as session:
        rows = session.execute(
            select(Message.id, Message.patron_id, Message.campaign_id, Patron.phone, Patron.language)
            .outerjoin(Patron, Patron.id == Message.patron_id).where(Message.id.in_(ids))
        ).all()
        contexts = sending.contexts_for(session, [row.patron_id for row in rows if row.patron_id])
        campaigns = {c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_({row.campaign_id for row in rows})))}
        words = variants.for_owners(session, owner="campaign", owner_ids=list(campaigns))
        survey_links = {c.survey_id: survey_tokens.link_maker(sending.public_url(session), c.survey_id) for c in campaigns.values() if c.survey_id}
        region, base = phones.region(session), _callback_base(session)
        numbers = {row.id: phones.normalise(row.phone, region=region) for row in rows}
        blocked = do_not_text.blocked(session, [n for n in numbers.values() if n])
    known = {row.id: row for row in rows}
    # Filled in before anything is "sending": a template error fails that text with its reason.
    texts: dict[int, str] = {}
    skipped: dict[int, tuple[str, str]] = {}
    for row in rows:
        if row.patron_id is None or row.patron_id not in contexts or not numbers[row.id] or numbers[row.id] in blocked:
            skipped[row.id] = ("skipped", SKIPPED_NOTE)
            continue
        campaign, context = campaigns[row.campaign_id], contexts[row.patron_id]
        if campaign.survey_id:  # the patron's own {{ survey_link }}, as in a mail
            context = {**context, "survey_link": survey_links[campaign.survey_id](row.patron_id)}
        _subject, body = variants.pick((campaign.subject_template, campaign.body_template), words.get(campaign.id, {}), row.language)
        try:
            texts[row.id] = wording.campaign_text(body=body, context=context)
        except ValueError as exc:
            skipped[row.id] = ("failed", f"The text could not be filled in for this patron: {exc}"[:500])
    try:
        connection = gateway.transport().connect()
        sender = connection.__enter__()
    except (OSError, SendFailure) as exc:
        sending._release(db, ids=ids, owner=owner, reason=str(exc))
        return outcome
    accepted: list[tuple[int, int]] = []  # (message id, parts) taken by Kannel, recorded in the next transaction

    def record_accepted(session) -> None:
        if accepted:
            at = utcnow()
            session.connection().execute(_SENT, [{"m_id": mid, "m_owner": owner, "m_at": at, "m_parts": parts} for mid, parts in accepted])
            accepted.clear()

    try:
        for first in range(0, len(ids), throttle.window):
            window = [mid for mid in ids[first : first + throttle.window] if mid in known]
            with db.write() as session:
                record_accepted(session)
                for mid in window:
                    if mid in skipped:
                        status, note = skipped[mid]
                        if session.execute(_SKIP, {"m_id": mid, "m_owner": owner, "m_status": status, "m_error": note}).rowcount:
                            outcome[status] += 1
                lease_until = utcnow() + send_lease + throttle.gap * len(window)
                ready = [mid for mid in window if mid in texts]
                if ready:  # one statement for the window (executemany), then which of them it marked
                    conn = session.connection()
                    conn.execute(_START, [{
                        "m_id": mid, "m_owner": owner, "m_patron": known[mid].patron_id, "m_phone": known[mid].phone, "m_topic": campaigns[known[mid].campaign_id].topic,
                        "m_lease": lease_until, "m_name": _file_name(known[mid].campaign_id, known[mid].patron_id)} for mid in ready])
                    marked = set(conn.scalars(sending._MARKED, {"m_ids": ready, "m_owner": owner}))
                started = [mid for mid in ready if mid in marked] if ready else []
                for mid in set(window) & set(texts) - set(started):  # consent or number gone since launch
                    if session.execute(_SKIP, {"m_id": mid, "m_owner": owner, "m_status": "skipped", "m_error": SKIPPED_NOTE}).rowcount:
                        outcome["skipped"] += 1
            for mid in started:
                row = known[mid]
                text = gateway.Text(to=numbers[mid], body=texts[mid], name=_file_name(row.campaign_id, row.patron_id), dlr_url=_dlr_url(base, mid))
                throttle.wait()
                try:
                    sender.send(text)
                except SendFailure as failure:
                    rest = ids[ids.index(mid) :] if failure.outage else ids[ids.index(mid) + 1 :]
                    if failure.outage:
                        sending._release(db, ids=rest, owner=owner, reason=str(failure))
                        return outcome
                    outcome[sending._record_failure(db, message_id_=mid, owner=owner, failure=failure, to=numbers[mid])] += 1
                    if failure.ambiguous:
                        sending._release(db, ids=rest, owner=owner)
                        return outcome
                    continue
                accepted.append((mid, segments.length(texts[mid]).parts))
                outcome["sent"] += 1
    finally:
        if accepted:
            with db.write() as session:
                record_accepted(session)
        try:
            connection.__exit__(None, None, None)
        except Exception:  # closing a connection that already failed must not hide the outcome
            pass
    return outcome


def send_pending(db: Database, *, budget_seconds: float = 50.0, now: Callable[[], datetime] | None = None) -> dict[str, int]:
    """The worker job: claim and send due texts until none is due, the budget is spent or quiet hours begin."""
    clock = now or utcnow
    started, owner = time.monotonic(), sending.worker_id()
    totals: dict[str, Any] = {"sent": 0, "failed": 0, "retry": 0, "skipped": 0, "unknown": sending.recover(db)}
    with db.read() as session:
        rate, window = int(settings.get(session, "text_rate_per_minute")), quiet_hours.window(session)
    throttle = Throttle(per_minute=rate, most=WINDOW)
    while time.monotonic() - started < budget_seconds and not quiet_hours.is_quiet(clock(), **window):
        ids = sending.claim(db, owner=owner, limit=max(1, min(sending.MAX_BATCH, rate // 12)), channel="sms", now=clock())
        if not ids:
            break
        for key, n in send_batch(db, ids=ids, owner=owner, throttle=throttle).items():
            totals[key] += n
    sending.update_campaigns(db)
    return {k: v for k, v in totals.items() if v}


NO_OWN_PHONE = "Test send: your staff account has no phone number; add yours on My account."


def send_test_text(session, *, phone: str | None, body: str, campaign_id: int, patron_id: int) -> str:
    """Text `body` (a campaign's, as `patron_id` would get it) to a staff member's own number now, through the same
    gateway as campaigns (Kannel, else the outbox). Not a campaign message: no row, no delivery report, no
    quiet hours (the staff member asked for it). Returns the number; ValueError when it cannot be texted or the
    gateway did not take it."""
    if not phone:
        raise ValueError(NO_OWN_PHONE)
    region = phones.region(session)
    number = phones.normalise(phone, region=region)
    if number is None:
        raise ValueError(f"Test send: your phone number {phone!r} cannot be normalised to an international number (default region {region}); "
                         "correct it on My account.")
    text = gateway.Text(to=number, body=f"[Test] {body}", name=f"test-{_file_name(campaign_id, patron_id)}.{uuid.uuid4().hex[:12]}")
    try:
        with gateway.transport().connect() as sender:
            sender.send(text)
    except SendFailure as failure:
        raise ValueError(f"Test send: the text was not sent: {failure}.") from None
    return number
