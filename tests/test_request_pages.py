"""The Requests page under AppTest: the queue and its filters, a thread opened (audited), take, note, reply
(into the outbox), close with a task; a phone request logged; topics for admins; My follow-ups and Outreach
KPIs showing requests. Requester text is shown escaped."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.parser import BytesParser

from sqlalchemy import func, select

from crmcore.inbox import canned, references, tickets
from crmcore.models import AuditLog, Request, RequestEntry, RequestTopic, Task, utcnow
from tests.campaign_fixtures import _isolated_mail_config  # noqa: F401
from tests.inbox_records import request_id, topic_id


def button(at, label):
    return next(b for b in at.button if b.label == label)


def texts(at) -> str:
    return " ".join([t.value for t in at.text] + [m.value for m in at.markdown] + [c.value for c in at.caption])


def test_queue_thread_take_note_reply_and_close(app, db, staff, tmp_path):
    with db.write() as s:
        rid = request_id(s, email="ann@example.org")
        other = request_id(s, email="bob@example.org")
        s.get(Request, other).subject = "<script>alert(1)</script> **bold**"
        canned.save_reply(s, actor=staff["outreach"], name="Card renewed", body="Your card is renewed; try the e-books again.")
    at = app(role="outreach", page="pages/requests.py").run()
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == 2
    at.selectbox(key="req-owner").select("nobody").run()
    assert len(at.dataframe[0].value) == 2
    at.selectbox(key="req-open").set_value(rid).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "The e-book site says my card is invalid." in texts(at)
    button(at, "Take it").click().run()
    with db.read() as s:
        assert s.get(Request, rid).owner_id == staff["outreach"].id and s.get(Request, rid).status == "open"
    at.text_area(key="req-note-text").input("Checked the vendor's status page.")
    button(at, "Add note").click().run()
    at.selectbox(key="req-canned").set_value(next(iter(canned_ids(db)))).run()
    assert at.text_area(key="req-reply-text").value.startswith("Your card is renewed")
    button(at, "Send reply").click().run()
    assert not at.error, [e.value for e in at.error]
    (sent,) = list((tmp_path / "outbox").glob("*.eml"))
    mail = BytesParser(policy=policy.default).parse(sent.open("rb"))
    assert references.make(rid) in str(mail["Subject"]) and str(mail["To"]) == "ann@example.org"
    at.radio(key="req-close-log").set_value("task")
    at.text_input(key="req-close-task").input("Check again next week")
    button(at, "Close the request").click().run()
    assert not at.error, [e.value for e in at.error]
    with db.read() as s:
        assert [e for e in s.scalars(select(RequestEntry.kind).where(RequestEntry.request_id == rid).order_by(RequestEntry.id))] == ["incoming", "note", "reply"]
        assert s.get(Request, rid).status == "done"
        assert s.scalar(select(Task.title).where(Task.assignee_id == staff["outreach"].id)) == "Check again next week"
        assert s.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "request.view")) >= 1
    at.selectbox(key="req-open").set_value(other).run()
    assert "<script>alert(1)</script>" not in " ".join(m.value for m in at.markdown)  # escaped for markdown


def canned_ids(db) -> list[int]:
    from crmcore.models import CannedReply

    with db.read() as s:
        return list(s.scalars(select(CannedReply.id)))


def test_log_a_phone_request_and_bad_input_shows_an_error(app, db, staff):
    with db.write() as s:
        topic = topic_id(s)
    at = app(role="manager", page="pages/requests.py").run()
    button(at, "Log the request").click().run()
    assert at.error and "say what was asked" in at.error[0].value
    at.text_input(key="req-log-name").input("Ms Ortiz")
    at.selectbox(key="req-log-topic").set_value(topic)
    at.text_area(key="req-log-body").input("Would like a class visit in May")
    button(at, "Log the request").click().run()
    assert not at.error, [e.value for e in at.error]
    with db.read() as s:
        (req,) = s.scalars(select(Request)).all()
        assert (req.channel, req.requester_name, req.owner_id) == ("phone", "Ms Ortiz", staff["manager"].id)


def test_admins_edit_topics_and_others_do_not_see_them(app, db, staff):
    at = app(role="manager", page="pages/requests.py").run()
    assert not any(e.label == "Topics and response targets" for e in at.expander)
    at = app(role="admin", page="pages/requests.py").run()
    at.text_input(key="req-topic-name-None").input("Class visits")
    at.number_input(key="req-topic-hours-None").set_value(96)
    button(at, "Save the topic").click().run()
    assert not at.error, [e.value for e in at.error]
    with db.read() as s:
        assert s.scalar(select(RequestTopic.target_hours).where(RequestTopic.name == "Class visits")) == 96


def test_an_overdue_request_is_in_my_followups_and_requests_in_the_kpis(app, db, staff):
    with db.write() as s:
        rid = tickets.open_request(s, channel="email", subject="Locked out", body="Help", requester_email="ann@example.org",
                                   topic_id=topic_id(s), now=utcnow() - timedelta(days=3))
        tickets.assign(s, actor=staff["outreach"], request_id=rid.id, owner_id=staff["outreach"].id)
    at = app(role="outreach", page="pages/followups.py").run()
    assert not at.exception
    assert any("Locked out" in m.value for m in at.markdown)
    assert any("requests" in str(link.proto) and str(rid.id) in str(link.proto) for link in at.get("page_link"))
    at = app(role="viewer", page="pages/outreach_kpis.py").run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Requests"] == "<5"  # one request: a small cell
    assert any("okpi-requests-topic-csv" in b.proto.id for b in at.get("download_button"))
    assert any(c.value.replace("\\", "").startswith("Summary:") and "request" in c.value for c in at.caption)
    at = app(role="manager", page="pages/dashboard.py").run()
    assert not at.exception
    if "Requests from patrons and partners" in [h.value for h in at.subheader]:  # the request falls in the dashboard's period
        assert any("dash-requests-topic-csv" in b.proto.id for b in at.get("download_button"))
