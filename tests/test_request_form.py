"""The public request form at /request, over real HTTP to the app's uvicorn server: a request with its reference,
the honeypot, a forged or missing form token, bad input answered with the form again (escaped, nothing lost),
and the rate limit per address."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from crmcore.inbox import references
from crmcore.models import Request, RequestEntry
from tests.campaign_fixtures import _isolated_mail_config  # noqa: F401
from tests.inbox_records import topic_id
from tests.web_server import web  # noqa: F401  (fixture)


def form(base: str) -> dict[str, str]:
    page = httpx.get(f"{base}/request", timeout=10)
    assert page.status_code == 200 and "<script" not in page.text and "Ask the library" in page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text)[1]
    topic = re.search(r'<option value="(\d+)">Account</option>', page.text)[1]
    return {"token": token, "topic": topic, "name": "Ann Asker", "email": "ann@example.org", "message": "My card does not open the e-books.\nCan you help?", "website": ""}


def requests_of(db) -> list[Request]:
    with db.read() as s:
        return list(s.scalars(select(Request).order_by(Request.id)))


def test_the_form_opens_a_request_and_shows_its_reference(db, web):
    with db.write() as s:
        topic_id(s)
    answer = httpx.post(f"{web}/request", data=form(web), timeout=10)
    assert answer.status_code == 200, answer.text
    (request,) = requests_of(db)
    assert references.make(request.id) in answer.text
    assert (request.channel, request.requester_email, request.subject) == ("form", "ann@example.org", "My card does not open the e-books.")
    with db.read() as s:
        assert s.scalars(select(RequestEntry.body).where(RequestEntry.request_id == request.id)).one().endswith("Can you help?")


def test_spam_defences_and_bad_input(db, web):
    with db.write() as s:
        topic_id(s)
    fields = form(web)
    bot = httpx.post(f"{web}/request", data={**fields, "website": "http://spam.example"}, timeout=10)
    assert bot.status_code == 200 and "REQ-" not in bot.text and requests_of(db) == []
    forged = httpx.post(f"{web}/request", data={**fields, "token": fields["token"][:-3] + "abc"}, timeout=10)
    assert forged.status_code == 400 and "could not be checked" in forged.text
    assert "My card does not open the e-books." in forged.text  # what was typed is given back
    bad = httpx.post(f"{web}/request", data={**fields, "email": "<b>not-an-address</b>"}, timeout=10)
    assert bad.status_code == 400 and "not a valid email address" in bad.text and "<b>not-an-address" not in bad.text
    empty = httpx.post(f"{web}/request", data={**fields, "message": "  "}, timeout=10)
    assert empty.status_code == 400 and "say what you need" in empty.text
    assert httpx.post(f"{web}/request", content=b"x" * 40_000, headers={"content-type": "application/x-www-form-urlencoded"}, timeout=10).status_code == 400
    assert requests_of(db) == []
    for _ in range(3):
        assert httpx.post(f"{web}/request", data=fields, timeout=10).status_code == 200
    limited = httpx.post(f"{web}/request", data=fields, timeout=10)
    assert limited.status_code == 400 and "last hour" in limited.text
    assert len(requests_of(db)) == 3
