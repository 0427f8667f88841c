"""The sender against a real SMTP server on loopback: headers, retries, bounces, consent at send time,
crash recovery, the outbox, and two workers at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest
from sqlalchemy import func, select, update

from crmcore.admin import settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.campaigns import do_not_mail, drafts, outbox, preference_tokens, results, sending, unsubscribe
from crmcore.db import Database
from crmcore.library import consent
from crmcore.models import AuditLog, Campaign, Message, Patron, Suppression, utcnow
from crmcore.privacy import rights
from tests.campaign_fixtures import _isolated_mail_config, add_campaign, add_patrons, add_segment, smtp  # noqa: F401


def statuses(db, campaign_id) -> dict[str, int]:
    with db.read() as s:
        return dict(s.execute(select(Message.status, func.count()).where(Message.campaign_id == campaign_id).group_by(Message.status)).all())


def test_a_campaign_goes_out_over_smtp_with_unsubscribe_headers_and_both_parts(db, smtp):
    with db.write() as s:
        ids = add_patrons(s, 3)
        from crmcore.models import Patron

        s.get(Patron, ids[0]).first_name = "<b>Bo & Co</b>"
        cid = add_campaign(s, patron_ids=ids)
    result = sending.send_pending(db)
    assert result == {"sent": 3}
    assert statuses(db, cid) == {"sent": 3}
    assert len(smtp.messages) == 3
    by_id = {str(m["Message-ID"]): m for m in smtp.messages}
    assert set(by_id) == {f"<campaign-{cid}.patron-{pid}@library.test>" for pid in ids}
    first = by_id[f"<campaign-{cid}.patron-{ids[0]}@library.test>"]
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mailto, link = (part.strip().strip("<>") for part in str(first["List-Unsubscribe"]).split(","))
    token = link.rpartition("/unsubscribe/")[2]
    assert link == f"http://127.0.0.1:8501/unsubscribe/{token}" and mailto == f"mailto:unsubscribe+{token}@library.test"
    assert len(f"unsubscribe+{token}") <= 64  # an address's local part holds at most 64 characters
    with db.read() as s:
        mid = s.scalar(select(Message.id).where(Message.campaign_id == cid, Message.patron_id == ids[0]))
    assert unsubscribe.read(token) == mid
    assert smtp.senders[smtp.messages.index(first)] == f"bounce+{token}@library.test"  # VERP: a late bounce names its message
    assert preference_tokens.read(first.get_body(("plain",)).get_content().rpartition("token=")[2].split()[0]) == ids[0]
    text = first.get_body(("plain",)).get_content()
    html = first.get_body(("html",)).get_content()
    assert "Dear <b>Bo & Co</b>," in text
    assert "Dear &lt;b&gt;Bo &amp; Co&lt;/b&gt;," in html and "<b>Bo" not in html
    assert "See you at Main Library." in text
    with db.read() as s:
        assert s.get(Campaign, cid).status == "sent"
        assert s.scalar(select(func.count()).where(Message.campaign_id == cid, Message.sent_at.is_not(None))) == 3


def test_a_4xx_answer_is_retried_later_and_then_sent(db, smtp):
    with db.write() as s:
        ids = add_patrons(s, 2)
        cid = add_campaign(s, patron_ids=ids)
    smtp.replies["pat0.main@example.test"] = "451 4.3.0 Try again later"
    assert sending.send_pending(db) == {"sent": 1, "retry": 1}
    with db.read() as s:
        msg = s.scalars(select(Message).where(Message.patron_id == ids[0])).one()
    assert (msg.status, msg.attempts) == ("queued", 1)
    assert msg.next_attempt_at > utcnow() and "451" in msg.last_error
    assert sending.send_pending(db) == {}  # not due yet
    smtp.replies.clear()
    with db.write() as s:
        s.execute(update(Message).where(Message.id == msg.id).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert sending.send_pending(db) == {"sent": 1}
    assert statuses(db, cid) == {"sent": 2}
    assert smtp.message_ids()[f"<campaign-{cid}.patron-{ids[0]}@library.test>"] == 1


def test_at_ordinary_rates_one_message_is_in_flight_and_fast_rates_mark_a_small_window():
    assert sending.Throttle(per_minute=600).window == 1  # the default rate
    assert sending.Throttle(per_minute=1).window == 1
    assert sending.Throttle(per_minute=3000).window == 5
    assert sending.Throttle(per_minute=100_000).window == sending.WINDOW == 10


def test_a_connection_lost_mid_message_leaves_that_one_unknown_and_gives_the_window_back(db, smtp):
    with db.write() as s:
        ids = add_patrons(s, 12)
        cid = add_campaign(s, patron_ids=ids)
        settings.put(s, actor=CLI_ACTOR, key="send_rate_per_minute", value=100_000)  # a window of 10
    smtp.hang_up_on.add("pat2.main@example.test")
    assert sending.send_pending(db) == {"sent": 2, "unknown": 1}
    assert statuses(db, cid) == {"sent": 2, "unknown": 1, "queued": 9}  # the rest of the window was never tried
    smtp.hang_up_on.clear()
    with db.write() as s:
        s.execute(update(Message).where(Message.status == "queued").values(next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert sending.send_pending(db) == {"sent": 9}
    assert statuses(db, cid) == {"sent": 11, "unknown": 1}
    received = smtp.message_ids()
    assert len(received) == 11 and max(received.values()) == 1
    assert f"<campaign-{cid}.patron-{ids[2]}@library.test>" not in received


def test_a_5xx_fails_and_a_hard_bounce_suppresses_the_address(db, smtp):
    with db.write() as s:
        ids = add_patrons(s, 3)
        cid = add_campaign(s, patron_ids=ids)
    smtp.replies["pat0.main@example.test"] = "550 5.1.1 No such user here"
    smtp.replies["pat1.main@example.test"] = "554 5.7.1 Rejected by policy"
    assert sending.send_pending(db) == {"sent": 1, "failed": 2}
    assert statuses(db, cid) == {"sent": 1, "failed": 2}
    with db.read() as s:
        assert do_not_mail.is_suppressed(s, "PAT0.main@example.test")
        assert not do_not_mail.is_suppressed(s, "pat1.main@example.test")  # a policy block is not a dead address
        assert s.scalar(select(func.count()).select_from(Suppression)) == 1
    # A later campaign skips the suppressed address at send time.
    with db.write() as s:
        add_campaign(s, patron_ids=ids[:1])
    assert sending.send_pending(db) == {"skipped": 1}


def test_an_unsubscribe_mid_campaign_stops_further_messages(db, smtp, monkeypatch):
    with db.write() as s:
        ids = add_patrons(s, 6)
        cid = add_campaign(s, patron_ids=ids)
    monkeypatch.setattr(sending, "MAX_BATCH", 2)
    owner = sending.worker_id()
    claimed = sending.claim(db, owner=owner, limit=2)
    sending.send_batch(db, ids=claimed, owner=owner, throttle=sending.Throttle(per_minute=100_000))
    assert len(smtp.messages) == 2
    from crmcore.campaigns import preferences

    with db.write() as s:
        preferences.unsubscribe_all(s, token=preference_tokens.make(ids[4]))
    assert sending.send_pending(db) == {"sent": 3, "skipped": 1}
    assert statuses(db, cid) == {"sent": 5, "skipped": 1}
    assert f"<campaign-{cid}.patron-{ids[4]}@library.test>" not in smtp.message_ids()


def test_a_message_left_sending_by_a_dead_worker_becomes_unknown_and_is_never_resent(db, smtp):
    with db.write() as s:
        ids = add_patrons(s, 2)
        cid = add_campaign(s, patron_ids=ids)
        s.execute(update(Message).where(Message.patron_id == ids[0]).values(status="sending", lease_owner="dead", lease_expires_at=utcnow() - timedelta(seconds=1)))
    assert sending.send_pending(db) == {"sent": 1, "unknown": 1}
    assert statuses(db, cid) == {"sent": 1, "unknown": 1}
    assert len(smtp.messages) == 1
    with db.read() as s:
        assert "may or may not" in s.scalars(select(Message.last_error).where(Message.patron_id == ids[0])).one()
    assert sending.send_pending(db) == {}


def test_without_smtp_messages_are_written_to_the_outbox(db, staff, tmp_path):
    with db.write() as s:
        ids = add_patrons(s, 2)
        cid = add_campaign(s, patron_ids=ids)
    assert sending.send_pending(db) == {"sent": 2}
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    parsed = BytesParser(policy=policy.default).parse(files[0].open("rb"))
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.get_body(("plain",)) is not None and parsed.get_body(("html",)) is not None
    with db.write() as s:
        listed = outbox.list_messages(s, actor=staff["manager"])
    assert {e.to for e in listed} == {"pat0.main@example.test", "pat1.main@example.test"}
    with db.read() as s:  # 200 addresses at most, but every list of them is in the audit log
        listing = s.scalars(select(AuditLog).where(AuditLog.action == "outbox.list")).one()
    assert (listing.actor_name, listing.detail) == (staff["manager"].username, {"shown": 2})
    with db.write() as s:
        shown = outbox.read(s, actor=staff["manager"], name=listed[0].name)
        assert shown["Message-ID"].startswith(f"<campaign-{cid}.")
        with pytest.raises(LookupError):
            outbox.read(s, actor=staff["manager"], name="../../etc/passwd")


def test_two_workers_at_once_never_send_a_message_twice(db, smtp, monkeypatch):
    with db.write() as s:
        ids = add_patrons(s, 120)
        cid = add_campaign(s, patron_ids=ids)
    monkeypatch.setattr(sending, "MAX_BATCH", 7)
    errors = []

    def work():
        own = Database(db.url)
        try:
            while sending.send_pending(own):
                pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.dispose()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    counts = smtp.message_ids()
    assert len(counts) == 120 and max(counts.values()) == 1
    assert statuses(db, cid) == {"sent": 120}


def test_a_consent_withdrawn_before_the_batch_means_skipped_not_sent(db, smtp):
    with db.write() as s:
        ids = add_patrons(s, 2)
        cid = add_campaign(s, patron_ids=ids)
        consent.record(s, patron_id=ids[1], channel="email", topic="events", granted=False, source="test")
    assert sending.send_pending(db) == {"sent": 1, "skipped": 1}
    assert statuses(db, cid) == {"sent": 1, "skipped": 1}


def test_an_unreachable_server_gives_the_batch_back_untried(db, monkeypatch):
    from tests.campaign_fixtures import free_port

    monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_SMTP_PORT", str(free_port()))  # nothing listens there
    with db.write() as s:
        ids = add_patrons(s, 2)
        cid = add_campaign(s, patron_ids=ids)
    assert sending.send_pending(db) == {}
    with db.read() as s:
        rows = s.scalars(select(Message).where(Message.campaign_id == cid)).all()
    assert {(m.status, m.attempts, m.lease_owner) for m in rows} == {("queued", 0, None)}
    assert all(m.next_attempt_at > utcnow() for m in rows)


def test_a_template_failing_for_one_patron_fails_that_message_with_its_reason_and_the_campaign_goes_on(db, staff, smtp, app):
    body = "Dear {{ first_name }},\n\nYou are number {{ 10 / (first_name|length - 4) }}."
    with db.write() as s:
        ids = add_patrons(s, 3)
        for pid, name in zip(ids, ["Christopher", "Anna", "Bo"]):
            s.get(Patron, pid).first_name = name
        cid = add_campaign(s, patron_ids=ids, body=body)
    assert sending.send_pending(db) == {"sent": 2, "failed": 1}
    assert sending.send_pending(db) == {}  # nothing left in flight: no "unknown" on the next cycle
    assert statuses(db, cid) == {"sent": 2, "failed": 1}
    assert sorted(str(m["To"]) for m in smtp.messages) == ["pat0.main@example.test", "pat2.main@example.test"]
    with db.read() as s:
        failed = s.scalars(select(Message).where(Message.campaign_id == cid, Message.status == "failed")).one()
        assert failed.patron_id == ids[1] and failed.attempts == 0 and failed.lease_owner is None
        assert failed.last_error == "The message could not be filled in for this patron: Body, line 3: division by zero with this patron's details."
        shown = results.results(s, actor=staff["manager"], campaign_id=cid)
        listed = results.failures(s, actor=staff["manager"])
        assert s.get(Campaign, cid).status == "sent"
    assert shown["failed"] == 1 and shown["failure_reasons"] == {failed.last_error: 1}
    assert listed == [{"message": failed.id, "campaign_id": cid, "campaign": "Direct test", "patron": ids[1], "reason": failed.last_error}]
    at = app(role="manager", page="pages/sent_mail.py").run()
    assert not at.exception
    assert any("division by zero" in df.value.to_csv() for df in at.dataframe)


def test_a_refusal_quoting_an_address_is_listed_without_it(db, staff, smtp):
    with db.write() as s:
        ids = add_patrons(s, 1)
        cid = add_campaign(s, patron_ids=ids)
    smtp.replies["pat0.main@example.test"] = "550 5.7.1 <pat0.main@example.test>: relaying denied"
    assert sending.send_pending(db) == {"failed": 1}
    with db.read() as s:
        (row,) = results.failures(s, actor=staff["manager"], campaign_id=cid)
        assert "@" not in row["reason"] and "(address)" in row["reason"] and "relaying denied" in row["reason"]
        assert "@" not in "".join(results.results(s, actor=staff["viewer"], campaign_id=cid)["failure_reasons"])


def test_erasing_a_patron_deletes_their_outbox_files_and_only_theirs(db, staff, tmp_path):
    with db.write() as s:
        ids = add_patrons(s, 12)
        add_campaign(s, patron_ids=ids)
    # Erase a patron whose id starts another's (1 and 10, 11, 12 on a fresh database) when there is one.
    erased = next((p for p in ids if any(str(o).startswith(str(p)) for o in ids if o != p)), ids[0])
    assert sending.send_pending(db) == {"sent": 12}
    with db.write() as s:
        segment_campaign = drafts.compose(s, actor=staff["manager"], name="Test sends", segment_id=add_segment(s, branches=["MAIN"]),
                                          topic="events", subject="Hi", body="Dear {{ first_name }}")
    drafts.send_test(db, actor=staff["manager"], campaign_id=segment_campaign.id, patron_id=erased)
    folder = tmp_path / "outbox"
    assert len(list(folder.glob("*.eml"))) == 13
    with db.write() as s:
        rights.erase(s, actor=staff["admin"], patron_id=erased)
    left = sorted(p.name for p in folder.glob("*.eml"))
    assert len(left) == 11
    assert not [n for n in left if f".patron-{erased}_" in n or f".patron-{erased}." in n]
    kept = "".join(p.read_text() for p in folder.glob("*.eml"))
    assert all((f"pat{i}.main@" in kept) == (pid != erased) for i, pid in enumerate(ids))
    with db.read() as s:
        detail = s.scalars(select(AuditLog.detail).where(AuditLog.action == "privacy.erase")).one()
    assert detail["outbox_files_deleted"] == 2  # the campaign message and the staff test previewing it
