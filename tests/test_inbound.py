"""Inbound mail through the real listener on loopback (aiosmtpd), messages built with Python's email package and
sent over SMTP: mailto unsubscribes, late bounces (RFC 3464) hard and soft, complaints (RFC 5965), and the rest
kept for review — never a crash."""

from __future__ import annotations

import smtplib
from email import message_from_string, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from crmcore.campaigns import do_not_mail, drafts, inbound, unsubscribe
from crmcore.library import consent
from crmcore.models import InboundMail, Message, Patron
from tests.campaign_fixtures import _isolated_mail_config, add_campaign, add_patrons, add_segment, free_port  # noqa: F401


@pytest.fixture
def listener(db):
    port = free_port()
    controller = inbound.start(db, host="127.0.0.1", port=port)
    yield port
    controller.stop()


def deliver(port: int, to: str, message) -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("MAILER-DAEMON@mx.example.net", [to], message.as_bytes() if hasattr(message, "as_bytes") else message)


def campaign(db, n: int = 2) -> tuple[list[int], int, list[int]]:
    """(patrons, campaign, their message ids) for a campaign that went out."""
    with db.write() as s:
        ids = add_patrons(s, n)
        cid = add_campaign(s, patron_ids=ids)
    with db.write() as s:
        mids = [s.scalar(select(Message.id).where(Message.campaign_id == cid, Message.patron_id == p)) for p in ids]
    return ids, cid, mids


def report(kind: str, *, subject: str, notice: str, machine_type: str, machine: str, original_id: str) -> EmailMessage:
    """A multipart/report as a remote mail server writes it, parsed with Python's email package."""
    raw = (
        f'Subject: {subject}\nFrom: MAILER-DAEMON@mx.example.net\nMIME-Version: 1.0\n'
        f'Content-Type: multipart/report; report-type={kind}; boundary="b1"\n\n'
        f"--b1\nContent-Type: text/plain\n\n{notice}\n"
        f"--b1\nContent-Type: {machine_type}\n\n{machine}\n"
        f"--b1\nContent-Type: text/rfc822-headers\n\nMessage-ID: {original_id}\nSubject: Spring events\n\n"
        "--b1--\n"
    )
    return message_from_string(raw, policy=policy.default)


def dsn(*, original_id: str, recipient: str, action: str, status: str) -> EmailMessage:
    """A delivery status notification (RFC 3464)."""
    fields = f"Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; {recipient}\nAction: {action}\nStatus: {status}\n"
    return report("delivery-status", subject="Undelivered Mail Returned to Sender", notice="Your message could not be delivered.",
                  machine_type="message/delivery-status", machine=fields, original_id=original_id)


def complaint(*, original_id: str) -> EmailMessage:
    """An abuse report from a mailbox provider's feedback loop (RFC 5965)."""
    return report("feedback-report", subject="Abuse report", notice="This is an email abuse report.", machine_type="message/feedback-report",
                  machine="Feedback-Type: abuse\nUser-Agent: ExampleFBL/1.0\nVersion: 1\n", original_id=original_id)


def kinds(db) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(InboundMail.kind).order_by(InboundMail.id)))


def test_a_mail_to_the_unsubscribe_address_withdraws_that_messages_topic(db, listener):
    ids, _cid, mids = campaign(db)
    note = EmailMessage()
    note["Subject"], note["From"] = "unsubscribe", "pat0.main@example.test"
    note.set_content("please stop")
    deliver(listener, f"unsubscribe+{unsubscribe.token(mids[0])}@library.test", note)
    with db.read() as s:
        assert not consent.has_consent(s, patron_id=ids[0], channel="email", topic="events")
        assert consent.has_consent(s, patron_id=ids[1], channel="email", topic="events")
        latest = consent.history(s, ids[0])[0]
        row = s.scalars(select(InboundMail)).one()
    assert (latest.source, latest.source_class) == ("mailto", "patron")
    assert (row.kind, row.message_id, row.raw) == ("unsubscribe", mids[0], None)  # nothing of the mail itself is kept


def test_a_hard_bounce_puts_the_address_on_the_do_not_mail_list_and_the_next_launch_skips_it(db, listener, staff):
    ids, cid, mids = campaign(db)
    deliver(listener, f"bounce+{unsubscribe.token(mids[0])}@library.test",
            dsn(original_id=f"<campaign-{cid}.patron-{ids[0]}@library.test>", recipient="pat0.main@example.test", action="failed", status="5.1.1"))
    with db.read() as s:
        assert do_not_mail.is_suppressed(s, "pat0.main@example.test") and not do_not_mail.is_suppressed(s, "pat1.main@example.test")
    assert kinds(db) == ["hard_bounce"]
    with db.write() as s:
        draft = drafts.compose(s, actor=staff["manager"], name="Next", segment_id=add_segment(s, branches=["MAIN"]), topic="events",
                               subject="Hi", body="Hello {{ first_name }}", holdout_pct=0)
        plan = drafts.launch(s, actor=staff["manager"], campaign_id=draft.id)
        sent_to = set(s.scalars(select(Message.patron_id).where(Message.campaign_id == draft.id)))
    assert ids[0] not in sent_to and ids[1] in sent_to and plan


def test_three_soft_bounces_in_30_days_count_as_a_dead_address_and_the_report_is_found_by_message_id(db, listener):
    ids, cid, _mids = campaign(db)
    report = dsn(original_id=f"<campaign-{cid}.patron-{ids[1]}@library.test>", recipient="pat1.main@example.test", action="delayed", status="4.2.2")
    for expected in (False, False, True):
        deliver(listener, "postmaster@library.test", report)  # no VERP address: the original's Message-ID names the message
        with db.read() as s:
            assert do_not_mail.is_suppressed(s, "pat1.main@example.test") is expected
    assert kinds(db) == ["soft_bounce"] * 3


def test_a_complaint_unsubscribes_the_patron_from_everything(db, listener):
    ids, cid, mids = campaign(db, n=1)
    with db.write() as s:
        consent.record(s, patron_id=ids[0], channel="sms", topic="newsletter", granted=True, source="test")
    deliver(listener, f"bounce+{unsubscribe.token(mids[0])}@library.test", complaint(original_id=f"<campaign-{cid}.patron-{ids[0]}@library.test>"))
    with db.read() as s:
        assert not any(consent.current(s, ids[0]).values())
        assert {r.source_class for r in consent.history(s, ids[0]) if not r.granted} == {"patron"}
    assert kinds(db) == ["complaint"]


def test_anything_else_is_kept_for_review_and_nothing_crashes(db, listener, app, staff):
    ids, cid, mids = campaign(db, n=1)
    odd = EmailMessage()
    odd["Subject"], odd["From"] = "Out of office", "someone@example.org"
    odd.set_content("I am away until Monday.")
    deliver(listener, "news@library.test", odd)
    deliver(listener, "news@library.test", b"\xff\xfe not a mail at all \x00\r\n")
    deliver(listener, "unsubscribe+999.forged@library.test", odd)
    deliver(listener, "bounce+nothing@library.test", dsn(original_id="<someone-else@example.org>", recipient="x@example.org", action="failed", status="5.0.0"))
    assert kinds(db) == ["unknown"] * 4
    with db.read() as s:
        kept = s.scalars(select(InboundMail).order_by(InboundMail.id)).all()
        assert kept[0].subject == "Out of office" and b"away until Monday" in kept[0].raw
        assert consent.has_consent(s, patron_id=ids[0], channel="email", topic="events")  # a forged token changed nothing
        assert s.get(Patron, ids[0]).email and not do_not_mail.is_suppressed(s, "x@example.org")
    at = app(role="manager", page="pages/sent_mail.py").run()
    assert not at.exception
    assert any("Out of office" in t.value for t in at.text)
    at.button(key=f"inbound-reviewed-{kept[0].id}").click().run()
    with db.read() as s:
        done = s.get(InboundMail, kept[0].id)
    assert done.reviewed_at is not None and done.raw is None
