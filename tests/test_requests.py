"""Requests from patrons and partners: real mail in through the inbound listener (aiosmtpd) and out through a
real SMTP sink, references that bring answers back into the same request (and forged ones that do not), mail
with no text or a 20 MB attachment, due dates and My follow-ups on an injected clock, closing with an
interaction or a task, KPIs, erasure and retention."""

from __future__ import annotations

import smtplib
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from crmcore.admin import settings
from crmcore.inbox import canned, kpis, references, tickets, topics
from crmcore.models import InboundMail, Interaction, Request, RequestEntry, Task
from crmcore.outreach import contacts
from crmcore.privacy import rights
from tests.campaign_fixtures import _isolated_mail_config, add_patrons, free_port, smtp  # noqa: F401
from tests.inbox_records import request_id, topic_id
from tests.test_inbound import listener  # noqa: F401  (fixture: the inbound listener on loopback)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def mail(*, subject: str, text: str | None = "Hello, my card does not work for e-books.", sender: str = "Ann Asker <ann@example.test>", **headers) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "help@library.test", subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    if text is not None:
        message.set_content(text)
    return message


def deliver(port: int, message: EmailMessage, to: str = "help@library.test") -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("ann@example.test", [to], message.as_bytes(policy=policy.SMTP))  # CRLF line ends, as mail systems send


def requests_of(db) -> list[Request]:
    with db.read() as s:
        return list(s.scalars(select(Request).order_by(Request.id)))


def entries_of(db, rid: int) -> list[RequestEntry]:
    with db.read() as s:
        return list(s.scalars(select(RequestEntry).where(RequestEntry.request_id == rid).order_by(RequestEntry.id)))


def test_mail_to_help_opens_a_request_matched_to_the_patron_and_the_reply_comes_back_into_it(db, staff, listener, smtp):
    with db.write() as s:
        pid = add_patrons(s, 1)[0]
        topic_id(s)
    deliver(listener, mail(subject="E-books", sender="Pat0 <pat0.main@example.test>"))
    (request,) = requests_of(db)
    assert (request.channel, request.status, request.patron_id, request.requester_email) == ("email", "new", pid, "pat0.main@example.test")
    assert request.branch_id is not None  # the patron's home branch
    assert entries_of(db, request.id)[0].body.startswith("Hello, my card")
    with db.write() as s:
        tickets.take(s, actor=staff["outreach"], request_id=request.id)
        tickets.reply(s, actor=staff["outreach"], request_id=request.id, text="Try again now: your card is renewed.")
    (sent,) = smtp.messages
    reference = references.make(request.id)
    assert reference in str(sent["Subject"]) and str(sent["To"]) == "pat0.main@example.test"
    assert "help@library.test" in str(sent["From"]) and "renewed" in sent.get_body(("plain",)).get_content()
    with db.read() as s:
        assert s.get(Request, request.id).status == "waiting" and s.get(Request, request.id).first_response_at is not None
    answer = mail(subject=f"Re: {sent['Subject']}", text="Thank you, it works.", sender="pat0.main@example.test", In_Reply_To=str(sent["Message-ID"]))
    deliver(listener, answer)
    assert len(requests_of(db)) == 1  # the same request
    assert [e.kind for e in entries_of(db, request.id)] == ["incoming", "reply", "incoming"]
    with db.read() as s:
        assert s.get(Request, request.id).status == "open"
        assert s.scalar(select(func.count()).select_from(InboundMail).where(InboundMail.kind == "request")) == 2


def test_an_unknown_or_forged_reference_opens_a_new_request_and_says_so(db, staff, listener):
    with db.write() as s:
        first = request_id(s)
    real = references.make(first)
    forged = real[:-1] + ("0" if real[-1] != "0" else "1")
    deliver(listener, mail(subject=f"Re: books [{forged}]"))
    deliver(listener, mail(subject=f"Re: [{references.make(first + 100)}]"))
    found = requests_of(db)
    assert len(found) == 3
    assert "never made" in entries_of(db, found[1].id)[0].remark
    assert "no longer exists" in entries_of(db, found[2].id)[0].remark
    assert len(entries_of(db, first)) == 1  # nothing added to the real one


def test_mail_without_text_and_with_a_20_mb_attachment_is_kept_and_noted(db, staff, listener):
    html_only = mail(subject="Only HTML", text=None)
    html_only.set_content("<p>My <b>account</b> is locked</p><script>alert(1)</script>", subtype="html")
    deliver(listener, html_only)
    big = mail(subject="Scan of my card", text="See the attached scan.")
    big.add_attachment(b"\0" * 20_000_000, maintype="application", subtype="pdf", filename="scan.pdf")
    deliver(listener, big)
    empty = mail(subject="Nothing", text=None)
    empty.add_attachment(b"GIF89a", maintype="image", subtype="gif", filename="x.gif")
    deliver(listener, empty)
    html_req, big_req, empty_req = requests_of(db)
    entry = entries_of(db, html_req.id)[0]
    assert entry.body == "My account is locked" and "HTML" in entry.remark
    entry = entries_of(db, big_req.id)[0]
    assert entry.body == "See the attached scan." and "scan.pdf (20.0 MB)" in entry.remark and "not kept" in entry.remark
    entry = entries_of(db, empty_req.id)[0]
    assert "no text" in entry.body and "x.gif" in entry.remark


def test_other_inbound_mail_is_not_a_request(db, staff, listener):
    deliver(listener, mail(subject="Hi"), to="someone-else@library.test")
    assert requests_of(db) == []


def test_due_date_from_the_topic_target_and_overdue_in_my_followups(db, staff):
    with db.write() as s:
        quick = topic_id(s, "Account", 24)
        rid = tickets.open_request(s, channel="email", subject="Locked", body="Locked out", requester_email="a@example.test", topic_id=quick, now=T0).id
        tickets.assign(s, actor=staff["manager"], request_id=rid, owner_id=staff["outreach"].id)
    with db.read() as s:
        assert tickets.queue(s, actor=staff["outreach"], now=T0)[0]["due"].replace(tzinfo=timezone.utc) == T0 + timedelta(hours=24)
        assert tickets.overdue(s, actor=staff["outreach"], now=T0 + timedelta(hours=23)) == []
        late = tickets.overdue(s, actor=staff["outreach"], now=T0 + timedelta(hours=25))
        assert [r["id"] for r in late] == [rid] and late[0]["overdue"]
        assert tickets.overdue(s, actor=staff["manager"], now=T0 + timedelta(hours=25)) == []  # only the owner's
    with db.write() as s:  # waiting on the requester is not overdue for staff
        s.get(Request, rid).status = "waiting"
    with db.read() as s:
        assert tickets.overdue(s, actor=staff["outreach"], now=T0 + timedelta(hours=25)) == []


def test_queue_filters_and_thread_is_audited(db, staff):
    with db.write() as s:
        a = request_id(s)
        b = request_id(s, email="other@example.test")
        tickets.take(s, actor=staff["outreach"], request_id=a)
        tickets.add_note(s, actor=staff["outreach"], request_id=a, text="Called the vendor.")
    with db.read() as s:
        assert [r["id"] for r in tickets.queue(s, actor=staff["manager"], owner_id=staff["outreach"].id)] == [a]
        assert [r["id"] for r in tickets.queue(s, actor=staff["manager"], unowned=True)] == [b]
        assert [r["id"] for r in tickets.queue(s, actor=staff["manager"], statuses=["new"])] == [b]
        with pytest.raises(ValueError, match="Status"):
            tickets.queue(s, actor=staff["manager"], statuses=["lost"])
    with db.write() as s:
        view = tickets.thread(s, actor=staff["manager"], request_id=a)
        assert [e["kind"] for e in view["entries"]] == ["incoming", "note"] and view["request"]["status"] == "open"
    from crmcore.models import AuditLog

    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "request.view", AuditLog.entity_id == str(a))) == 1


def test_staff_log_a_phone_request_and_bad_input_is_refused(db, staff):
    with db.write() as s:
        rid = tickets.log_request(s, actor=staff["outreach"], channel="phone", subject="", body="Wants a class visit in May", requester_name="Ms Ortiz", topic_id=topic_id(s))
        req = s.get(Request, rid.id)
        assert (req.status, req.owner_id, req.subject) == ("open", staff["outreach"].id, "Wants a class visit in May")
        for kwargs, message in [({"channel": "fax"}, "neither phone nor desk"), ({"body": " "}, "empty"), ({"requester_name": "", "requester_email": ""}, "name or an e-mail"),
                                ({"requester_email": "not-an-address"}, "not a valid email")]:
            call = {"channel": "desk", "subject": "x", "body": "a question", "requester_name": "A", **kwargs}
            with pytest.raises(ValueError, match=message):
                tickets.log_request(s, actor=staff["outreach"], **call)
        with pytest.raises(ValueError, match="no e-mail address to answer"):
            tickets.reply(s, actor=staff["outreach"], request_id=rid.id, text="Yes")
        with pytest.raises(ValueError, match="no request number"):
            tickets.take(s, actor=staff["outreach"], request_id=999999)
        with pytest.raises(ValueError, match="Response target"):
            topics.save_topic(s, actor=staff["admin"], name="Visits", target_hours="soon")


def test_closing_logs_an_interaction_for_a_partner_or_a_task(db, staff):
    with db.write() as s:
        contact = contacts.create_contact(s, actor=staff["outreach"], first_name="Rosa", last_name="Ortiz", email="rosa@school.example.org")
        partner = request_id(s, email="ROSA@school.example.org")
        assert s.get(Request, partner).contact_id == contact.id
        made = tickets.close(s, actor=staff["outreach"], request_id=partner, log="interaction")
        assert s.get(Interaction, made["interaction_id"]).kind == "email"
        other = request_id(s, email="nobody@example.test")
        with pytest.raises(ValueError, match="not a community contact"):
            tickets.close(s, actor=staff["outreach"], request_id=other, log="interaction")
        made = tickets.close(s, actor=staff["outreach"], request_id=other, log="task", follow_up_title="Send the reading list")
        assert s.get(Task, made["task_id"]).title == "Send the reading list"
        assert s.get(Request, other).status == "done" and s.get(Request, other).closed_at is not None


def test_canned_replies(db, staff):
    with db.write() as s:
        canned.save_reply(s, actor=staff["outreach"], name="Card renewed", body="Your card is renewed.")
        canned.save_reply(s, actor=staff["outreach"], name="Card renewed", body="Your card is renewed for a year.")
        with pytest.raises(ValueError, match="empty"):
            canned.save_reply(s, actor=staff["outreach"], name="Blank", body="  ")
    with db.read() as s:
        assert [r["body"] for r in canned.list_replies(s, actor=staff["outreach"]).values()] == ["Your card is renewed for a year."]


def test_kpis_suppress_small_groups(db, staff):
    with db.write() as s:
        topic = topic_id(s)
        for i in range(6):
            r = tickets.open_request(s, channel="email", subject="q", body="q", requester_email=f"p{i}@example.test", topic_id=topic, now=T0 + timedelta(minutes=i))
            r.first_response_at = T0 + timedelta(hours=2 + i * 10)
            r.closed_at = T0 + timedelta(hours=3 + i * 10)
        tickets.open_request(s, channel="form", subject="q", body="q", requester_email="x@example.test", now=T0)
    with db.read() as s:
        found = kpis.request_kpis(s, actor=staff["viewer"], date_from=T0.date(), date_to=T0.date())
    assert found["requests"] == 7 and found["median_first_response_hours"] == 27.0 and found["median_resolution_hours"] == 28.0
    assert found["within_target_share"] == 50.0  # 2, 12 and 22 hours within the 24-hour target; 32, 42, 52 not
    by_topic = dict(zip(found["by_week_topic"]["topic"], found["by_week_topic"]["requests"]))
    assert by_topic == {"Account": 6, "no topic": "<5"}


def test_erasure_and_access_export_include_the_patrons_requests(db, staff):
    with db.write() as s:
        pid = add_patrons(s, 1)[0]
        rid = request_id(s, email="pat0.main@example.test")
        tickets.add_note(s, actor=staff["outreach"], request_id=rid, text="Spoke to the vendor")
        kept = request_id(s, email="someone@example.test")
    with db.write() as s:
        data = rights.access_export(s, actor=staff["admin"], patron_id=pid)
        assert [e["entry"] for e in data["requests"]] == ["from you", "staff note"]
        assert b"Requests to the library" in rights.to_html(data)
        assert rights.erase(s, actor=staff["admin"], patron_id=pid)["requests_deleted"] == 1
    with db.read() as s:
        assert s.get(Request, rid) is None and s.get(Request, kept) is not None
        assert s.scalar(select(func.count()).select_from(RequestEntry).where(RequestEntry.request_id == rid)) == 0


def test_retention_deletes_requests_closed_long_ago(db, staff):
    with db.write() as s:
        old = request_id(s)
        recent = request_id(s)
        still_open = request_id(s)
        s.get(Request, old).status, s.get(Request, old).closed_at = "done", T0 - timedelta(days=800)
        s.get(Request, recent).status, s.get(Request, recent).closed_at = "done", T0 - timedelta(days=300)
        s.get(Request, still_open).created_at = T0 - timedelta(days=900)
    assert "1 closed before" in tickets.delete_expired(db, now=T0)
    with db.write() as s:
        assert s.get(Request, old) is None and s.get(Request, recent) is not None and s.get(Request, still_open) is not None
        settings.put(s, actor=staff["admin"], key="request_retention_months", value=6)
    tickets.delete_expired(db, now=T0)
    with db.read() as s:
        assert s.get(Request, recent) is None and s.get(Request, still_open) is not None


def test_reading_odd_mail_loses_nothing():
    from crmcore.inbox import incoming

    two = incoming.read(b"From: A <a@example.org>, B <b@example.org>\r\nSubject: hi\r\n\r\nhello\r\n")
    assert (two.email, two.text) == ("a@example.org", "hello")
    bad = incoming.read(b"From: not an address\r\nSubject: hi\r\n\r\nhello\r\n")
    assert bad.email is None and "no reply can be sent" in bad.remarks[0] and bad.text == "hello"
    bare = incoming.read(b"Subject: \r\n\r\n")
    assert bare.email is None and bare.text == incoming.NO_TEXT
