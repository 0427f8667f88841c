"""Requests and their threads: opening one (by mail, the public form or staff at the desk), the queue, taking,
assigning, replying (by e-mail from the library's help address, with the request's reference), internal notes,
closing (optionally logging an interaction or a task), overdue requests, and what privacy asks of them
(access export, erasure, retention).

States: new (nobody has it yet) → open (someone has it) → waiting (a reply went out; waiting on the requester)
→ done. A message from the requester brings a waiting or done request back to open. A request is overdue when
it is new or open past its due time (created, or last heard from the requester, plus the topic's target).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from email.utils import formataddr
from html import escape
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlmodel import Session

from crmcore.admin import settings
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import addresses, mime, sending
from crmcore.campaigns.transport import SendFailure
from crmcore.db import Database
from crmcore.inbox import references, topics
from crmcore.models import (
    Branch,
    Contact,
    Interaction,
    InteractionContact,
    Patron,
    Request,
    RequestEntry,
    RequestTopic,
    StaffUser,
    utcnow,
)
from crmcore.outreach import interactions, tasks
from crmcore.privacy import audit
from crmcore import validation

STATUS_LABELS = {"new": "new", "open": "open", "waiting": "waiting on requester", "done": "done"}
CHANNEL_LABELS = {"email": "e-mail", "form": "web form", "phone": "phone", "desk": "at the desk"}
STAFF_CHANNELS = ("phone", "desk")
MAX_BODY = 100_000  # characters of one message kept; the rest is noted as cut
ACTIVE = ("new", "open")


def _clean_body(body: str | None) -> tuple[str, str | None]:
    text = (body or "").replace("\r\n", "\n").strip()
    if len(text) > MAX_BODY:
        return text[:MAX_BODY], f"The message was {len(text):,} characters long; the first {MAX_BODY:,} are kept."
    return text, None


def _match(session: Session, email: str | None) -> tuple[int | None, int | None, int | None]:
    """(patron id, contact id, the patron's home branch) of the requester's address, each None when unknown."""
    if not email:
        return None, None, None
    lower = email.lower()
    patron = session.execute(select(Patron.id, Patron.branch_id).where(func.lower(Patron.email) == lower, Patron.erased_at.is_(None)).order_by(Patron.id).limit(1)).first()
    contact = session.scalar(select(Contact.id).where(func.lower(Contact.email) == lower, Contact.archived.is_(False), Contact.merged_into_id.is_(None)).order_by(Contact.id).limit(1))
    return (patron[0] if patron else None), contact, (patron[1] if patron else None)


def open_request(
    session: Session,
    *,
    channel: str,
    subject: str,
    body: str,
    requester_name: str | None = None,
    requester_email: str | None = None,
    topic_id: int | None = None,
    branch_id: int | None = None,
    remark: str | None = None,
    author_id: int | None = None,
    now: datetime | None = None,
) -> Request:
    """A new request with its first message; the requester is matched by e-mail to a patron and a contact."""
    now = now or utcnow()
    patron_id, contact_id, home_branch = _match(session, requester_email)
    text, cut = _clean_body(body)
    request = Request(
        channel=channel, subject=(" ".join((subject or "").split()) or "(no subject)")[:300],
        requester_name=(" ".join((requester_name or "").split()) or None), requester_email=requester_email or None,
        patron_id=patron_id, contact_id=contact_id, topic_id=topic_id, branch_id=branch_id or home_branch,
        status="new", created_at=now, due_at=now + timedelta(hours=topics.target_hours(session, topic_id)),
    )
    session.add(request)
    session.flush()
    notes = " ".join(r for r in (remark, cut) if r)[:500] or None
    session.add(RequestEntry(request_id=request.id, kind="incoming", at=now, author_id=author_id, body=text, remark=notes))
    return request


def add_incoming(session: Session, *, request: Request, body: str, remark: str | None = None, now: datetime | None = None) -> RequestEntry:
    """A further message from the requester: into the thread; a waiting or done request is open again, due anew."""
    now = now or utcnow()
    text, cut = _clean_body(body)
    entry = RequestEntry(request_id=request.id, kind="incoming", at=now, body=text, remark=" ".join(r for r in (remark, cut) if r)[:500] or None)
    session.add(entry)
    if request.status in ("waiting", "done"):
        request.status = "open" if request.owner_id else "new"
        request.closed_at = None
        request.due_at = now + timedelta(hours=topics.target_hours(session, request.topic_id))
        session.add(request)
    return entry


def log_request(
    session: Session,
    *,
    actor: Actor,
    channel: str,
    subject: str,
    body: str,
    requester_name: str | None = None,
    requester_email: str | None = None,
    topic_id: int | None = None,
    branch_id: int | None = None,
    take: bool = True,
    now: datetime | None = None,
) -> Request:
    """A request taken by phone or at the desk, logged by staff (and theirs, with `take`); audited."""
    require(actor, Perm.EDIT_OUTREACH)
    if channel not in STAFF_CHANNELS:
        raise ValueError(f"How it came: {channel!r} is neither phone nor desk.")
    if not (body or "").strip():
        raise ValueError("Request: say what was asked (the message is empty).")
    email = (requester_email or "").strip() or None
    if email:
        email = validation.email(email, field="Requester e-mail")
    if not email and not (requester_name or "").strip():
        raise ValueError("Requester: give a name or an e-mail address.")
    if topic_id is not None and session.get(RequestTopic, topic_id) is None:
        raise ValueError(f"Topic: no topic with id {topic_id}.")
    if branch_id is not None and session.get(Branch, branch_id) is None:
        raise ValueError(f"Branch: no branch with id {branch_id}.")
    request = open_request(session, channel=channel, subject=subject or (body or "").strip().splitlines()[0][:80], body=body, requester_name=requester_name,
                           requester_email=email, topic_id=topic_id, branch_id=branch_id, author_id=actor.id, now=now)
    if take:
        request.owner_id, request.status = actor.id, "open"
    audit.record(session, actor=actor, action="request.log", entity="request", entity_id=request.id, detail={"channel": channel})
    return request


def _names(session: Session, model, ids) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    if model is StaffUser:
        return {r.id: r.display_name or r.username for r in session.scalars(select(StaffUser).where(StaffUser.id.in_(ids)))}
    return dict(session.execute(select(model.id, model.name).where(model.id.in_(ids))).all())


def _rows(session: Session, found: list[Request], now: datetime) -> list[dict[str, Any]]:
    topic_names = _names(session, RequestTopic, [r.topic_id for r in found])
    branch_names = _names(session, Branch, [r.branch_id for r in found])
    owners = _names(session, StaffUser, [r.owner_id for r in found])
    return [
        {
            "id": r.id, "reference": references.make(r.id), "subject": r.subject,
            "requester": r.requester_name or r.requester_email or "unknown", "email": r.requester_email or "",
            "topic": topic_names.get(r.topic_id, "none"), "branch": branch_names.get(r.branch_id, "none"),
            "status": STATUS_LABELS[r.status], "owner": owners.get(r.owner_id, "nobody"), "came by": CHANNEL_LABELS.get(r.channel, r.channel),
            "created": r.created_at, "due": r.due_at, "overdue": r.status in ACTIVE and _aware(r.due_at) < now,
        }
        for r in found
    ]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def queue(
    session: Session,
    *,
    actor: Actor,
    statuses: list[str] | None = None,
    topic_id: int | None = None,
    branch_id: int | None = None,
    owner_id: int | None = None,
    unowned: bool = False,
    limit: int = 500,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Requests in the queue (default: everything not done), soonest due first, filtered by status, topic, branch
    and owner (`unowned`: nobody's yet)."""
    require(actor, Perm.VIEW_OUTREACH)
    statuses = list(statuses or ("new", "open", "waiting"))
    unknown = [s for s in statuses if s not in STATUS_LABELS]
    if unknown:
        raise ValueError(f"Status: {', '.join(unknown)} is not one of {', '.join(STATUS_LABELS.values())}.")
    query = select(Request).where(Request.status.in_(statuses))
    if topic_id is not None:
        query = query.where(Request.topic_id == topic_id)
    if branch_id is not None:
        query = query.where(Request.branch_id == branch_id)
    if unowned:
        query = query.where(Request.owner_id.is_(None))
    elif owner_id is not None:
        query = query.where(Request.owner_id == owner_id)
    found = list(session.scalars(query.order_by(Request.due_at, Request.id).limit(limit)))
    return _rows(session, found, now or utcnow())


def choices(session: Session, *, actor: Actor) -> dict[str, dict[int, str]]:
    """What the Requests page offers to filter and fill in: topics, branches, and staff who can own requests."""
    require(actor, Perm.VIEW_OUTREACH)
    return {
        "topics": dict(session.execute(select(RequestTopic.id, RequestTopic.name).order_by(RequestTopic.name)).all()),
        "branches": dict(session.execute(select(Branch.id, Branch.name).order_by(Branch.name)).all()),
        "staff": tasks.assignable_staff(session, actor=actor),
    }


def _get(session: Session, request_id: int) -> Request:
    request = session.get(Request, request_id)
    if request is None:
        raise ValueError(f"Request: no request number {request_id} (it may have been closed and deleted after the retention period).")
    return request


def thread(session: Session, *, actor: Actor, request_id: int, now: datetime | None = None) -> dict[str, Any]:
    """One request with its thread, the requester's other requests and their logged interactions; audited (personal data)."""
    require(actor, Perm.VIEW_OUTREACH)
    request = _get(session, request_id)
    now = now or utcnow()
    entries = list(session.scalars(select(RequestEntry).where(RequestEntry.request_id == request.id).order_by(RequestEntry.at, RequestEntry.id)))
    authors = _names(session, StaffUser, [e.author_id for e in entries])
    same = [Request.requester_email == request.requester_email] if request.requester_email else []
    same += [Request.patron_id == request.patron_id] if request.patron_id else []
    same += [Request.contact_id == request.contact_id] if request.contact_id else []
    others = list(session.scalars(select(Request).where(or_(*same), Request.id != request.id).order_by(Request.created_at.desc()).limit(20))) if same else []
    logged = []
    if request.contact_id:
        logged = [
            {"when": i.occurred_at, "kind": interactions.KINDS.get(i.kind, i.kind), "notes": i.notes or "", "outcome": i.outcome or ""}
            for i in session.scalars(
                select(Interaction).join(InteractionContact, InteractionContact.interaction_id == Interaction.id)
                .where(InteractionContact.contact_id == request.contact_id).order_by(Interaction.occurred_at.desc()).limit(20)
            )
        ]
    audit.record(session, actor=actor, action="request.view", entity="request", entity_id=request.id)
    return {
        "request": _rows(session, [request], now)[0] | {"patron_id": request.patron_id, "contact_id": request.contact_id, "owner_id": request.owner_id,
                                                       "status_code": request.status, "topic_id": request.topic_id, "branch_id": request.branch_id},
        "entries": [{"kind": e.kind, "at": e.at, "author": authors.get(e.author_id) or ("requester" if e.kind == "incoming" else "staff"), "body": e.body, "remark": e.remark or ""} for e in entries],
        "other_requests": _rows(session, others, now),
        "interactions": logged,
    }


def take(session: Session, *, actor: Actor, request_id: int) -> None:
    """The actor takes the request (it is open, and theirs); audited."""
    assign(session, actor=actor, request_id=request_id, owner_id=actor.id)


def assign(session: Session, *, actor: Actor, request_id: int, owner_id: int) -> None:
    """Give the request to a staff member who can see outreach records; audited."""
    require(actor, Perm.EDIT_OUTREACH)
    request = _get(session, request_id)
    owner = tasks.check_assignee(session, owner_id)
    old, request.owner_id = request.owner_id, owner
    if request.status == "new":
        request.status = "open"
    session.add(request)
    audit.record(session, actor=actor, action="request.assign", entity="request", entity_id=request.id, detail={"from": old, "to": owner})


def add_note(session: Session, *, actor: Actor, request_id: int, text: str, now: datetime | None = None) -> RequestEntry:
    """An internal note in the thread (never sent to the requester); audited."""
    require(actor, Perm.EDIT_OUTREACH)
    request = _get(session, request_id)
    body, _ = _clean_body(text)
    if not body:
        raise ValueError("Note: the text is empty.")
    entry = RequestEntry(request_id=request.id, kind="note", at=now or utcnow(), author_id=actor.id, body=body)
    session.add(entry)
    audit.record(session, actor=actor, action="request.note", entity="request", entity_id=request.id)
    return entry


def help_sender(session: Session) -> str:
    """The From of replies: the library's name and its help address."""
    return formataddr((settings.branding(session).name, addresses.help_address()))


def reply(session: Session, *, actor: Actor, request_id: int, text: str, now: datetime | None = None) -> RequestEntry:
    """E-mail a reply to the requester from the help address, the reference in its subject and Message-ID (their
    answer comes back into this request); then it is in the thread and the request waits on the requester. Audited."""
    require(actor, Perm.EDIT_OUTREACH)
    request = _get(session, request_id)
    body, _ = _clean_body(text)
    if not body:
        raise ValueError("Reply: the text is empty.")
    if not request.requester_email:
        raise ValueError(f"Reply: request {references.make(request.id)} has no e-mail address to answer; note what you told them by phone or at the desk instead.")
    now = now or utcnow()
    reference = references.make(request.id)
    subject = request.subject if reference.lower() in request.subject.lower() else f"Re: {request.subject} [{reference}]"
    domain = addresses.mail_domain()
    html = "<p>" + escape(body).replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"
    mail = mime.build(mail_from=help_sender(session), to=request.requester_email, subject=subject, text=body, html=html,
                      message_id=f"<{reference}.{uuid.uuid4().hex[:12]}@{domain}>", date=now, extra=[("References", f"<{reference}@{domain}>")],
                      envelope=addresses.help_address())
    try:
        with sending.transport().connect() as sender:
            sender.send(mail)
    except SendFailure as exc:
        raise ValueError(f"Reply to {reference}: not sent ({exc}). Nothing was recorded; try again later.") from None
    entry = RequestEntry(request_id=request.id, kind="reply", at=now, author_id=actor.id, body=body)
    session.add(entry)
    request.first_response_at = request.first_response_at or now
    request.status = "waiting"
    request.owner_id = request.owner_id or actor.id
    session.add(request)
    audit.record(session, actor=actor, action="request.reply", entity="request", entity_id=request.id)
    return entry


def close(
    session: Session,
    *,
    actor: Actor,
    request_id: int,
    log: str | None = None,
    follow_up_title: str | None = None,
    follow_up_on=None,
    now: datetime | None = None,
) -> dict[str, int | None]:
    """Close the request (done). `log` "interaction" logs an e-mail interaction with the requester's contact
    (a partner); "task" adds a task (`follow_up_title`, due `follow_up_on`) for the actor. Audited."""
    require(actor, Perm.EDIT_OUTREACH)
    request = _get(session, request_id)
    if log not in (None, "interaction", "task"):
        raise ValueError(f"On closing: {log!r} is neither an interaction nor a task.")
    now = now or utcnow()
    reference = references.make(request.id)
    made: dict[str, int | None] = {"interaction_id": None, "task_id": None}
    if log == "interaction":
        if request.contact_id is None:
            raise ValueError(f"Close {reference}: the requester is not a community contact, so no interaction can be logged with them; close without one or add a task.")
        kind = "phone" if request.channel == "phone" else "email"
        made["interaction_id"] = interactions.log_interaction(session, actor=actor, kind=kind, occurred_at=now, contact_ids=[request.contact_id],
                                                              notes=f"Request {reference}: {request.subject}", outcome="request answered").id
    elif log == "task":
        title = (follow_up_title or "").strip() or f"Follow up request {reference}: {request.subject}"[:200]
        made["task_id"] = tasks.create_task(session, actor=actor, title=title, due_on=follow_up_on, contact_id=request.contact_id, notes=f"From request {reference}").id
    request.status, request.closed_at = "done", now
    request.owner_id = request.owner_id or actor.id
    session.add(request)
    audit.record(session, actor=actor, action="request.close", entity="request", entity_id=request.id, detail=made)
    return made


def overdue(session: Session, *, actor: Actor, now: datetime | None = None) -> list[dict[str, Any]]:
    """The actor's own requests past their due time (for My follow-ups), most overdue first."""
    require(actor, Perm.VIEW_OUTREACH)
    now = now or utcnow()
    found = list(session.scalars(select(Request).where(Request.owner_id == actor.id, Request.status.in_(ACTIVE), Request.due_at < now).order_by(Request.due_at)))
    return _rows(session, found, now)


# --- privacy: access export, erasure, retention ---------------------------------------------------


def _of_patron(patron_id: int, email: str | None):
    return or_(Request.patron_id == patron_id, func.lower(Request.requester_email) == email.lower()) if email else Request.patron_id == patron_id


def for_access_export(session: Session, *, patron_id: int, email: str | None) -> list[dict[str, Any]]:
    """A patron's requests and their messages (internal notes included), for privacy.rights.access_export."""
    rows = []
    for r in session.scalars(select(Request).where(_of_patron(patron_id, email)).order_by(Request.created_at)):
        for e in session.scalars(select(RequestEntry).where(RequestEntry.request_id == r.id).order_by(RequestEntry.at, RequestEntry.id)):
            rows.append({"request": references.make(r.id), "subject": r.subject, "status": STATUS_LABELS[r.status], "at": e.at.isoformat(),
                         "entry": {"incoming": "from you", "reply": "library's reply", "note": "staff note"}[e.kind], "text": e.body})
    return rows


def erase_patron(session: Session, *, patron_id: int, email: str | None) -> int:
    """Delete a patron's requests and their threads (privacy.rights.erase); how many requests."""
    ids = list(session.scalars(select(Request.id).where(_of_patron(patron_id, email))))
    return _delete(session, ids)


def _delete(session: Session, ids: list[int]) -> int:
    if ids:
        session.execute(delete(RequestEntry).where(RequestEntry.request_id.in_(ids)))
        session.execute(delete(Request).where(Request.id.in_(ids)))
    return len(ids)


def delete_expired(db: Database, *, now: datetime | None = None) -> str:
    """The worker's job: requests closed more than `request_retention_months` ago are deleted with their threads; audited."""
    now = now or utcnow()
    with db.write() as session:
        months = int(settings.get(session, "request_retention_months"))
        before = now - timedelta(days=round(months * 30.44))
        ids = list(session.scalars(select(Request.id).where(Request.status == "done", Request.closed_at < before)))
        count = _delete(session, ids)
        if count:
            audit.record(session, actor=None, action="retention.requests", entity="request", detail={"deleted": count, "closed_before": before.date().isoformat()})
    return f"requests: {count} closed before {before.date()} deleted"
