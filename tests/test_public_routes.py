"""The public HTTP routes, over real HTTP to the app's uvicorn server on loopback: one-click unsubscribe (RFC 8058),
its page, calendar feeds, one-use downloads, the health check — and the Streamlit app beside them."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.parser import BytesParser

import httpx
from sqlalchemy import func, select

from crmcore.campaigns import sending, unsubscribe
from crmcore.library import consent
from crmcore.models import ConsentRecord, Message, utcnow
from crmcore.outreach import calendar
from crmcore.privacy import downloads
from tests.campaign_fixtures import _isolated_mail_config, add_campaign, add_patrons  # noqa: F401
from tests.web_server import web  # noqa: F401  (fixture)

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def sent_campaign(db, tmp_path, n: int = 2) -> tuple[list[int], list]:
    """Patrons consenting to events, and the messages the worker wrote to the outbox for them (parsed)."""
    with db.write() as s:
        ids = add_patrons(s, n)
        add_campaign(s, patron_ids=ids)
    assert sending.send_pending(db)["sent"] == n
    mails = [BytesParser(policy=policy.default).parse(f.open("rb")) for f in sorted((tmp_path / "outbox").glob("*.eml"))]
    return ids, sorted(mails, key=lambda m: str(m["To"]))


def https_link(mail) -> str:
    return next(p.strip().strip("<>") for p in str(mail["List-Unsubscribe"]).split(",") if "/unsubscribe/" in p)


def records(db, patron_id: int) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(ConsentRecord).where(ConsentRecord.patron_id == patron_id))


def test_one_click_post_withdraws_the_messages_topic_once_and_answers_200(db, web, tmp_path):
    ids, mails = sent_campaign(db, tmp_path)
    link = https_link(mails[0]).replace("http://127.0.0.1:8501", web)
    before = records(db, ids[0])
    answer = httpx.post(link, data=ONE_CLICK)  # what a mail provider sends when its reader presses Unsubscribe
    assert answer.status_code == 200 and "<html" not in answer.text
    with db.read() as s:
        assert not consent.has_consent(s, patron_id=ids[0], channel="email", topic="events")
        assert consent.has_consent(s, patron_id=ids[1], channel="email", topic="events")  # only that message's patron
        latest = consent.history(s, ids[0])[0]
    assert (latest.source, latest.source_class, latest.granted) == ("one-click", "patron", False)
    assert httpx.post(link, data=ONE_CLICK).status_code == 200  # idempotent: a second press changes nothing
    assert records(db, ids[0]) == before + 1
    other = https_link(mails[1]).replace("http://127.0.0.1:8501", web)
    multipart = httpx.post(other, files={"List-Unsubscribe": (None, "One-Click")})  # some providers post multipart/form-data
    assert multipart.status_code == 200 and multipart.request.headers["content-type"].startswith("multipart/form-data")
    with db.read() as s:
        assert not consent.has_consent(s, patron_id=ids[1], channel="email", topic="events")


def test_get_shows_one_button_and_changes_nothing_and_the_button_confirms(db, web, tmp_path):
    ids, mails = sent_campaign(db, tmp_path, n=1)
    link = https_link(mails[0]).replace("http://127.0.0.1:8501", web)
    before = records(db, ids[0])
    page = httpx.get(link)
    assert page.status_code == 200 and "Stop emails about events from the library?" in page.text and page.text.count("<button") == 1
    assert records(db, ids[0]) == before  # link scanners open links: a GET never changes consent
    pressed = httpx.post(link, data={**ONE_CLICK, "from": "page"})
    assert pressed.status_code == 200 and "You will get no more emails about events" in pressed.text
    with db.read() as s:
        assert not consent.has_consent(s, patron_id=ids[0], channel="email", topic="events")


def test_bad_expired_and_bodiless_requests_get_400_with_a_plain_message_and_change_nothing(db, web, tmp_path):
    ids, mails = sent_campaign(db, tmp_path, n=1)
    link = https_link(mails[0]).replace("http://127.0.0.1:8501", web)
    token = link.rpartition("/")[2]
    before = records(db, ids[0])
    no_body = httpx.post(link)
    assert no_body.status_code == 400 and "List-Unsubscribe=One-Click" in no_body.text
    assert httpx.post(link, data={"List-Unsubscribe": "Something-Else"}).status_code == 400
    forged = token.rpartition(".")[0] + ".000000000000000000000000"
    for bad in (f"{web}/unsubscribe/{forged}", f"{web}/unsubscribe/12345", f"{web}/unsubscribe/x.y"):
        answer = httpx.post(bad, data=ONE_CLICK)
        assert answer.status_code == 400 and "not valid" in answer.text
        assert httpx.get(bad).status_code == 400
    with db.write() as s:
        message = s.get(Message, unsubscribe.read(token))
        message.sent_at = utcnow() - timedelta(days=401)
    expired = httpx.post(link, data=ONE_CLICK)
    assert expired.status_code == 400 and "expired" in expired.text
    assert records(db, ids[0]) == before
    with db.read() as s:
        assert consent.has_consent(s, patron_id=ids[0], channel="email", topic="events")


def test_calendar_feeds_downloads_health_and_the_app_itself(db, web, staff):
    with db.write() as s:
        token = calendar.subscribe(s, actor=staff["outreach"])
        link = downloads.offer(s, actor=staff["admin"], file_name="patron-7.json", content_type="application/json", data=b'{"name": "Rosa"}')
        stale = downloads.offer(s, actor=staff["admin"], file_name="old.csv", content_type="text/csv", data=b"x", now=utcnow() - timedelta(minutes=2))
    feed = httpx.get(f"{web}/calendars/{token}.ics")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar") and b"BEGIN:VCALENDAR" in feed.content
    with db.write() as s:
        calendar.subscribe(s, actor=staff["outreach"], reset=True)
    assert httpx.get(f"{web}/calendars/{token}.ics").status_code == 404  # a reset link stops at once
    first = httpx.get(f"{web}{link}")
    assert first.status_code == 200 and first.content == b'{"name": "Rosa"}'
    assert first.headers["content-disposition"] == 'attachment; filename="patron-7.json"' and first.headers["cache-control"] == "no-store"
    assert httpx.get(f"{web}{link}").status_code == 410  # once only
    assert httpx.get(f"{web}{stale}").status_code == 410  # and within a minute
    assert httpx.get(f"{web}/downloads/made-up").status_code == 410
    assert httpx.get(f"{web}/healthz").text == "ok\n"
    app = httpx.get(f"{web}/")
    assert app.status_code == 200 and "<noscript>" in app.text  # Streamlit's page, from the same server
    assert httpx.get(f"{web}/_stcore/health").status_code == 200
    assert httpx.get(f"{web}/preferences", params={"token": "anything"}).status_code == 200  # the preference page keeps its address
