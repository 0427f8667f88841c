"""Text messages through a real Kannel (bearerbox, smsbox) and its fake SMSC: campaigns on channel sms,
STOP/START/HELP sent in from a phone, delivery reports, quiet hours with an injected clock, parts and lengths."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from crmcore.admin import settings
from crmcore.library import consent
from crmcore.models import ConsentRecord, CurrentConsent, DoNotText, InboundText, Message, Patron
from crmcore.campaigns import drafts
from crmcore.texts import gateway, keywords, quiet_hours, segments, sending as text_sending, wording
from tests.campaign_fixtures import _isolated_mail_config, add_patrons, add_segment  # noqa: F401
from tests.kannel import SECRET, SHORT_CODE, kannel, texts_web  # noqa: F401

CHICAGO = ZoneInfo("America/Chicago")
DAYTIME = datetime(2030, 1, 15, 16, 0, tzinfo=timezone.utc)  # 10:00 in Chicago
NIGHT = datetime(2030, 1, 16, 3, 30, tzinfo=timezone.utc)  # 21:30 in Chicago
NUMBERS = ["(312) 555-0101", "+1 312 555 0102", "312.555.0103"]
E164 = ["+13125550101", "+13125550102", "+13125550103"]


@pytest.mark.parametrize(
    "text, encoding, units, parts",
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # an extension character takes two
        ("€" * 81, "GSM-7", 162, 2),
        ("Café à Ünïcode? no: ï", "UCS-2", 21, 1),  # ï is not in the GSM alphabet
        ("ç" * 70, "UCS-2", 70, 1),
        ("ç" * 71, "UCS-2", 71, 2),
        ("ç" * 134, "UCS-2", 134, 2),
        ("ç" * 135, "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: two units each
        ("😀" * 36, "UCS-2", 72, 2),
    ],
)
def test_encoding_and_parts(text, encoding, units, parts):
    assert segments.length(text) == segments.Length(encoding=encoding, units=units, parts=parts)


@pytest.mark.parametrize(
    "moment, quiet",
    [(datetime(2030, 1, 15, 2, 59, tzinfo=timezone.utc), False), (datetime(2030, 1, 15, 3, 0, tzinfo=timezone.utc), True),
     (datetime(2030, 1, 15, 13, 59, tzinfo=timezone.utc), True), (datetime(2030, 1, 15, 14, 0, tzinfo=timezone.utc), False)],
)
def test_quiet_hours_in_the_library_zone(moment, quiet):
    assert quiet_hours.is_quiet(moment, zone=CHICAGO, start=21, end=8) is quiet
    opens = quiet_hours.opens_at(moment, zone=CHICAGO, start=21, end=8)
    assert (opens == datetime(2030, 1, 15, 14, 0, tzinfo=timezone.utc)) if quiet else opens == moment


def _library(db, staff, *, numbers=NUMBERS, topic="events") -> tuple[int, list[int]]:
    """Patrons with these phone numbers and text consent, a segment of them, and a draft text campaign."""
    with db.write() as s:
        for key, value in {"time_zone": "America/Chicago", "library_name": "Springfield Library", "sms_help_contact": "call 312-555-0100"}.items():
            settings.put(s, actor=staff["admin"], key=key, value=value)
        ids = add_patrons(s, len(numbers), branch="TXT", consented=False)
        for pid, number in zip(ids, numbers):
            s.get(Patron, pid).phone = number
            consent.record(s, patron_id=pid, channel="sms", topic=topic, granted=True, source="test")
        segment = add_segment(s, branches=["TXT"], name="Texters")
    with db.write() as s:
        campaign = drafts.compose(s, actor=staff["manager"], name="Story time", segment_id=segment, topic=topic, subject="", body="Hi {{ first_name }}, story time at {{ branch }} on Saturday!",
                                  channel="sms", holdout_pct=0)
    return campaign.id, ids


def _launch(db, staff, campaign_id):
    with db.write() as s:
        return drafts.launch(s, actor=staff["manager"], campaign_id=campaign_id)


def test_a_text_campaign_goes_through_kannel_in_daytime_only_and_delivery_reports_come_back(db, staff, kannel, texts_web):
    with db.write() as s:
        settings.put(s, actor=staff["admin"], key="sms_max_segments", value=2)
    campaign_id, ids = _library(db, staff, numbers=[*NUMBERS, "12"])  # the last cannot be a phone's number
    with db.read() as s:
        plan = drafts.plan(s, actor=staff["manager"], campaign_id=campaign_id)
    assert plan["excluded"]["bad_phone"] == 1 and plan["eligible"] == 3 and plan["text_parts_at_most"] == 3
    summary = _launch(db, staff, campaign_id)
    assert summary["excluded"]["bad_phone"] == 1 and summary["recipients"] == 3

    assert text_sending.send_pending(db, now=lambda: NIGHT) == {}  # quiet hours: all still queued
    with db.read() as s:
        assert s.scalar(select(func.count()).where(Message.campaign_id == campaign_id, Message.status == "queued")) == 3
    assert kannel.received() == []

    assert text_sending.send_pending(db, now=lambda: DAYTIME) == {"sent": 3}
    got = kannel.wait_for(3)
    assert sorted(to for _, to, _ in got) == E164 and {sender for sender, _, _ in got} == {SHORT_CODE}
    assert f"Hi Pat0, story time at Txt Library on Saturday!\n{wording.STOP_LINE}" in [text for _, _, text in got]

    def delivered() -> int:
        with db.read() as s:
            return s.scalar(select(func.count()).where(Message.campaign_id == campaign_id, Message.delivery == "delivered"))

    deadline = datetime.now().timestamp() + 20
    while delivered() < 3 and datetime.now().timestamp() < deadline:  # the fake SMSC's reports, through smsbox's dlr-url
        kannel.wait_for(3, timeout=1)
    assert delivered() == 3
    with db.read() as s:
        assert set(s.scalars(select(Message.parts).where(Message.campaign_id == campaign_id))) == {1}
        assert set(s.scalars(select(Message.status).where(Message.campaign_id == campaign_id))) == {"sent"}


def test_stop_from_a_phone_withdraws_every_text_consent_and_the_next_campaign_skips_that_patron(db, staff, kannel, texts_web):
    campaign_id, ids = _library(db, staff)
    with db.write() as s:
        consent.record(s, patron_id=ids[0], channel="sms", topic="newsletter", granted=True, source="test")
        consent.record(s, patron_id=ids[0], channel="email", topic="events", granted=True, source="test")
    kannel.start_phones(f"{E164[0]} stop")
    (reply,) = kannel.wait_for(1)
    assert reply[:2] == (SHORT_CODE, E164[0]) and "no more texts" in reply[2] and "Springfield Library" in reply[2]
    with db.read() as s:
        now = {(c.channel, c.topic): (c.granted, c.source_class) for c in s.scalars(select(CurrentConsent).where(CurrentConsent.patron_id == ids[0]))}
        plan = drafts.plan(s, actor=staff["manager"], campaign_id=campaign_id)
    assert now[("sms", "events")] == now[("sms", "newsletter")] == (False, "patron")
    assert now[("email", "events")] == (True, "staff")  # only texts stop
    assert plan["excluded"]["no_consent"] == 1 and plan["eligible"] == 2

    with db.write() as s:  # an import cannot turn it back on
        assert consent.record(s, patron_id=ids[0], channel="sms", topic="events", granted=True, source="ILS import", by=consent.IMPORT) is None

    kannel.start_phones(f"{E164[0]} START")
    reply = kannel.wait_for(2)[-1]
    assert "texts are on again" in reply[2]
    with db.read() as s:
        granted = set(s.scalars(select(CurrentConsent.topic).where(CurrentConsent.patron_id == ids[0], CurrentConsent.channel == "sms", CurrentConsent.granted.is_(True))))
        sources = list(s.scalars(select(ConsentRecord.source).where(ConsentRecord.patron_id == ids[0], ConsentRecord.channel == "sms").order_by(ConsentRecord.id)))
    assert granted == {"events", "newsletter"}  # what STOP withdrew, no more
    assert sources.count(keywords.STOP_SOURCE) == 2 and sources.count(keywords.START_SOURCE) == 2


def test_help_is_answered_through_kannel_with_the_library_name_and_contact(db, staff, kannel, texts_web):
    _library(db, staff)
    kannel.start_phones("+13125559999 HELP")
    (reply,) = kannel.wait_for(1)
    assert reply == (SHORT_CODE, "+13125559999", "Springfield Library: call 312-555-0100. Reply STOP to stop texts, START to get them again.")
    with db.read() as s:
        assert [(r.keyword, r.outcome) for r in s.scalars(select(InboundText))] == [("help", "Answered with the library's name and contact.")]


def test_inbound_and_reports_need_the_secret_and_a_permanent_failure_stops_texts_to_that_number(db, staff, kannel, texts_web, monkeypatch):
    campaign_id, ids = _library(db, staff)
    _launch(db, staff, campaign_id)
    monkeypatch.delenv("CRM_SMS_URL")  # to the outbox: no report from the fake SMSC comes first
    assert text_sending.send_pending(db, now=lambda: DAYTIME) == {"sent": 3}
    with db.read() as s:
        mid = s.scalar(select(Message.id).where(Message.campaign_id == campaign_id, Message.patron_id == ids[1]))
    assert httpx.post(f"{texts_web}/sms/inbound", params={"secret": "wrong", "from": E164[0]}, content=b"STOP").status_code == 403
    assert httpx.get(f"{texts_web}/sms/dlr", params={"message": mid, "type": 2}).status_code == 403
    assert httpx.get(f"{texts_web}/sms/dlr", params={"secret": SECRET, "message": mid, "type": "x"}).status_code == 400
    answer = httpx.get(f"{texts_web}/sms/dlr", params={"secret": SECRET, "message": mid, "type": 2})
    assert answer.status_code == 200 and "do-not-text" in answer.text
    with db.read() as s:
        assert s.get(Message, mid).delivery == "failed" and s.scalar(select(func.count()).select_from(DoNotText)) == 1
        assert s.scalar(select(func.count()).where(CurrentConsent.patron_id == ids[0], CurrentConsent.granted.is_(True))) == 1  # the wrong secret changed nothing
    with db.write() as s:
        again = drafts.compose(s, actor=staff["manager"], name="Again", segment_id=s.get(drafts.Campaign, campaign_id).segment_id, topic="events", subject="",
                               body="Hello again", channel="sms", holdout_pct=0)
    with db.read() as s:
        plan = drafts.plan(s, actor=staff["manager"], campaign_id=again.id)
    assert plan["excluded"]["do_not_text"] == 1 and plan["eligible"] == 2


def test_what_kannel_refuses_fails_and_a_gateway_that_is_down_keeps_texts_queued(db, staff, kannel, monkeypatch):
    campaign_id, ids = _library(db, staff)
    _launch(db, staff, campaign_id)
    monkeypatch.setenv("CRM_SMS_URL", "http://127.0.0.1:9/cgi-bin/sendsms")  # nothing listens
    assert text_sending.send_pending(db, now=lambda: DAYTIME) == {}
    with db.read() as s:
        rows = s.execute(select(Message.status, Message.attempts, Message.last_error).where(Message.campaign_id == campaign_id)).all()
    assert {(status, attempts) for status, attempts, _ in rows} == {("queued", 0)} and all("cannot be reached" in note for _, _, note in rows)
    monkeypatch.setenv("CRM_SMS_URL", kannel.sendsms_url)
    monkeypatch.setenv("CRM_SMS_PASSWORD", "not-the-password")  # Kannel answers 403: final, not retried
    with db.write() as s:
        s.execute(Message.__table__.update().where(Message.campaign_id == campaign_id).values(next_attempt_at=None))
    assert text_sending.send_pending(db, now=lambda: DAYTIME) == {"failed": 3}
    with db.read() as s:
        assert {m.status for m in s.scalars(select(Message).where(Message.campaign_id == campaign_id))} == {"failed"}
        assert all("403" in m.last_error for m in s.scalars(select(Message).where(Message.campaign_id == campaign_id)))
    assert kannel.received() == []


def test_without_a_gateway_texts_are_written_to_the_outbox(db, staff, monkeypatch, tmp_path):
    monkeypatch.delenv("CRM_SMS_URL", raising=False)
    campaign_id, ids = _library(db, staff)
    _launch(db, staff, campaign_id)
    assert text_sending.send_pending(db, now=lambda: DAYTIME) == {"sent": 3}
    written = sorted(gateway.outbox_directory().glob("*.json"))
    assert [p.name for p in written] == sorted(f"campaign-{campaign_id}.patron-{pid}.json" for pid in ids)
    assert {json.loads(p.read_text())["to"] for p in written} == set(E164)


def test_a_text_too_long_for_the_longest_names_is_refused_while_composing(db, staff):
    campaign_id, ids = _library(db, staff)
    with db.write() as s:
        s.get(Patron, ids[0]).first_name = "Bartholomew-Maximilian"
    with db.read() as s:
        ok = drafts.text_length(s, actor=staff["manager"], body="Hi {{ first_name }}")
        assert ok.encoding == "GSM-7" and ok.units == len(f"Hi Bartholomew-Maximilian\n{wording.STOP_LINE}") and ok.parts == 1
        with pytest.raises(ValueError, match="at most 3"):
            drafts.text_length(s, actor=staff["manager"], body="{{ first_name }} " + "x" * 440)


def test_compose_a_text_campaign_on_the_page_with_its_length_and_see_it_on_sent_mail(app, db, staff, monkeypatch):
    from tests.test_campaign_pages import by_label

    monkeypatch.delenv("CRM_SMS_URL", raising=False)
    with db.write() as s:
        ids = add_patrons(s, 2, branch="TXT", consented=False)
        for pid, number in zip(ids, NUMBERS):
            s.get(Patron, pid).phone = number
            consent.record(s, patron_id=pid, channel="sms", topic="events", granted=True, source="test")
        add_segment(s, branches=["TXT"], name="Texters")
    at = app(role="manager", page="pages/campaigns.py").run()
    by_label(at.radio, "Channel").set_value("sms").run()
    assert [w.label for w in at.text_input if w.label == "Subject"] == []  # a text has no subject
    by_label(at.text_input, "Name").input("Story time")
    by_label(at.text_area, "Message").input("Hi {{ first_name }}, story time on Saturday! 📚")
    by_label(at.button, "Save draft").click()
    at = at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        (campaign,) = s.scalars(select(drafts.Campaign)).all()
    assert (campaign.channel, campaign.subject_template) == ("sms", drafts.TEXT_SUBJECT)
    expected = segments.length(f"Hi Pat0, story time on Saturday! 📚\n{wording.STOP_LINE}")
    assert expected.encoding == "UCS-2" and any(expected.describe() in c.value for c in at.caption)
    with db.write() as s:
        drafts.launch(s, actor=staff["manager"], campaign_id=campaign.id)
    assert text_sending.send_pending(db, now=lambda: DAYTIME) == {"sent": 2}
    at = app(role="manager", page="pages/sent_mail.py").run()
    assert not at.exception
    shown = at.dataframe[-1].value
    assert list(shown["campaign"]) == ["Story time", "Story time"] and set(shown["parts"]) == {1}


def test_erasure_removes_the_patrons_texts_from_the_outbox_and_never_texts_the_number_again(db, staff, monkeypatch):
    from crmcore.privacy import rights

    monkeypatch.delenv("CRM_SMS_URL", raising=False)
    campaign_id, ids = _library(db, staff)
    _launch(db, staff, campaign_id)
    assert text_sending.send_pending(db, now=lambda: DAYTIME) == {"sent": 3}
    with db.write() as s:
        rights.erase(s, actor=staff["admin"], patron_id=ids[0])
    assert sorted(p.name for p in gateway.outbox_directory().glob("*.json")) == sorted(f"campaign-{campaign_id}.patron-{pid}.json" for pid in ids[1:])
    with db.write() as s:
        s.add(Patron(ils_id="NEW-1", first_name="New", phone=NUMBERS[0], branch_id=s.get(Patron, ids[1]).branch_id))
        s.flush()
        new_id = s.scalar(select(Patron.id).where(Patron.ils_id == "NEW-1"))
        consent.record(s, patron_id=new_id, channel="sms", topic="events", granted=True, source="ILS import", by=consent.IMPORT)
    with db.write() as s:
        again = drafts.compose(s, actor=staff["manager"], name="Again", segment_id=s.get(drafts.Campaign, campaign_id).segment_id, topic="events", subject="",
                               body="Hello again", channel="sms", holdout_pct=0)
    with db.read() as s:
        assert drafts.plan(s, actor=staff["manager"], campaign_id=again.id)["excluded"]["do_not_text"] == 1


def test_a_busy_gateway_is_retried_later_and_a_window_of_texts_goes_out_side_by_side(db, staff, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers = {"code": 503}
    seen = []

    class Gateway(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(answers["code"])
            self.end_headers()
            self.wfile.write(b"3: Temporal failure, try again later." if answers["code"] == 503 else b"0: Accepted for delivery")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CRM_SMS_URL", f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/sendsms")
    try:
        campaign_id, ids = _library(db, staff)
        with db.write() as s:
            settings.put(s, actor=staff["admin"], key="text_rate_per_minute", value=60_000)  # a window of 10
            settings.put(s, actor=staff["admin"], key="quiet_hours_end", value=21)  # no quiet hours: the real clock, as retries use
        _launch(db, staff, campaign_id)
        outcome = text_sending.send_pending(db)
        with db.read() as s:
            notes = set(s.scalars(select(Message.last_error).where(Message.campaign_id == campaign_id)))
        assert outcome == {"retry": 3}, notes
        with db.read() as s:
            rows = s.execute(select(Message.status, Message.attempts, Message.next_attempt_at).where(Message.campaign_id == campaign_id)).all()
        assert {(status, attempts) for status, attempts, _ in rows} == {("queued", 1)}
        assert all(at is not None for _, _, at in rows)
        answers["code"] = 202
        with db.write() as s:  # the retry time has come
            s.execute(Message.__table__.update().where(Message.campaign_id == campaign_id).values(next_attempt_at=None))
        assert text_sending.send_pending(db) == {"sent": 3}
        assert len(seen) == 6
    finally:
        server.shutdown()


def test_a_text_campaign_fills_each_patrons_survey_link_and_speaks_their_language_through_kannel(db, staff, kannel):
    from crmcore.campaigns import sending
    from crmcore.languages import variants
    from crmcore.surveys import tokens as survey_tokens
    from tests.survey_records import add_survey

    campaign_id, ids = _library(db, staff, numbers=NUMBERS[:2])
    with db.write() as s:
        survey_id = add_survey(s, staff["admin"], name="Story time survey")
        s.get(Patron, ids[0]).language = "es"
        campaign = s.get(drafts.Campaign, campaign_id)
        segment_id = campaign.segment_id
    with db.write() as s:
        drafts.compose(s, actor=staff["manager"], name="Story time", segment_id=segment_id, topic="events", subject="", body="How was story time? {{ survey_link }}",
                       channel="sms", holdout_pct=0, campaign_id=campaign_id, survey_id=survey_id)
        variants.save(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id, language="es", subject=None, body="¿Qué tal la hora del cuento? Cuéntenos más: {{ survey_link }}")
    with db.read() as s:
        spanish, english = (drafts.text_length(s, actor=staff["manager"], body=f"{words} {{{{ survey_link }}}}").parts
                            for words in ("¿Qué tal la hora del cuento? Cuéntenos más:", "How was story time?"))
        assert spanish > english  # "á" is no GSM-7 character: UCS-2, in more parts
        assert drafts.plan(s, actor=staff["manager"], campaign_id=campaign_id)["text_parts_at_most"] == 2 * spanish  # the longest language counts
        base = f"{sending.public_url(s)}/survey/"
    _launch(db, staff, campaign_id)
    assert text_sending.send_pending(db, now=lambda: DAYTIME) == {"sent": 2}
    got = {to: text for _, to, text in kannel.wait_for(2)}
    for number, pid, words in ((E164[0], ids[0], "¿Qué tal la hora del cuento? Cuéntenos más:"), (E164[1], ids[1], "How was story time?")):
        head, token = got[number].removesuffix(f"\n{wording.STOP_LINE}").split(base)
        assert head == f"{words} " and survey_tokens.read(token) == survey_tokens.Link(survey_id=survey_id, patron_id=pid)  # the patron's own signed link
