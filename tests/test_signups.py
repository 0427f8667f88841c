"""Sign-up forms for prospects over real HTTP to the app's uvicorn server: the form, double opt-in by email
(a real SMTP server on loopback), an expired or changed link, the honeypot, the rate limit, a post without
its form token; and what the worker, imports and privacy requests do with prospects."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import httpx
import itsdangerous
import pytest
from sqlalchemy import func, select

from crmcore.campaigns import drafts, results, sending, unsubscribe
from crmcore.db import Database
from crmcore import imports
from crmcore.library import consent
from crmcore.models import Branch, ConsentRecord, Prospect, ProspectConsent, SignupAttempt, Suppression, utcnow
from crmcore.privacy import rights
from crmcore.signups import form, prospects, spam, tokens
from tests.campaign_fixtures import _isolated_mail_config, smtp  # noqa: F401
from tests.web_server import web  # noqa: F401  (fixture)

EMAIL = "rosa.parks@example.org"


def form_token(page: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', page).group(1)


def sign_up(web: str, **fields) -> httpx.Response:
    token = form_token(httpx.get(f"{web}/signup").text)
    return httpx.post(f"{web}/signup", data={"form_token": token, "email": EMAIL, "topics": ["events", "newsletter"], **fields})


def count(db: Database, table) -> int:
    with db.read() as s:
        return s.scalar(select(func.count()).select_from(table))


def granted(db: Database) -> dict[str, bool]:
    with db.read() as s:
        return {row.topic: row.granted for row in s.scalars(select(ProspectConsent))}


def test_double_opt_in_end_to_end_through_smtp(db, smtp, web):
    with db.write() as s:
        s.add(Branch(code="EAST", name="East Branch"))
    page = httpx.get(f"{web}/signup")
    assert page.status_code == 200 and "<script" not in page.text and 'action="/signup"' in page.text and "East Branch" in page.text
    answer = sign_up(web, name="Rosa Parks", branch="EAST", postal_code="48201")
    assert answer.status_code == 200 and "We sent a link to rosa.parks@example.org" in answer.text, answer.text
    assert granted(db) == {}  # nothing is granted before the link is followed
    (mail,) = smtp.messages
    assert mail["To"] == EMAIL and "Please confirm" in mail["Subject"]
    link = re.search(r"(http\S+/signup/confirm/\S+)", mail.get_body(("plain",)).get_content()).group(1)
    link = link.replace("http://127.0.0.1:8501", web)
    shown = httpx.get(link)  # a link scanner's GET changes nothing
    assert shown.status_code == 200 and "about events and newsletter?" in shown.text and shown.text.count("<button") == 1
    assert granted(db) == {}
    confirmed = httpx.post(link)
    assert confirmed.status_code == 200 and "Thank you" in confirmed.text
    assert granted(db) == {"events": True, "newsletter": True}
    assert httpx.post(link).status_code == 200 and count(db, ProspectConsent) == 2  # idempotent
    with db.read() as s:
        prospect = s.scalar(select(Prospect))
        assert (prospect.name, prospect.postal_code, prospect.confirmed_at is not None) == ("Rosa Parks", "48201", True)
        assert s.get(Branch, prospect.branch_id).code == "EAST"
        row = s.get(ProspectConsent, (prospect.id, "events"))
        assert row.source == prospects.SOURCE


def test_a_post_without_its_token_a_filled_honeypot_and_bad_fields_store_nothing(db, web, tmp_path):
    for data in ({"email": EMAIL}, {"email": EMAIL, "form_token": "made-up"}):
        refused = httpx.post(f"{web}/signup", data=data)
        assert refused.status_code == 400 and "did not come from the library" in refused.text and "nothing was saved" in refused.text
    bot = sign_up(web, website="http://spam.example")
    assert bot.status_code == 200 and "Check your email" in bot.text  # a bot learns nothing ...
    bad = sign_up(web, email="not-an-address", name='"><script>alert(1)</script>')
    assert bad.status_code == 400 and "Email address:" in bad.text and 'value="not-an-address"' in bad.text  # the form again, as typed ...
    assert "<script" not in bad.text and "&lt;script&gt;" in bad.text  # ... escaped
    assert count(db, Prospect) == 0 and not (tmp_path / "outbox").exists()  # ... and nothing is kept or sent
    assert httpx.post(f"{web}/signup", content=b"x" * 5000, headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 400


def test_the_rate_limit_per_client_address(db, web, tmp_path):
    for i in range(spam.RATE_LIMIT):
        assert sign_up(web, email=f"reader{i}@example.org").status_code == 200
    refused = sign_up(web, email="one.more@example.org")
    assert refused.status_code == 429 and "Too many sign-ups" in refused.text
    assert count(db, Prospect) == spam.RATE_LIMIT and len(list((tmp_path / "outbox").glob("*.eml"))) == spam.RATE_LIMIT


def test_an_expired_or_changed_confirmation_link_is_refused_and_grants_nothing(db, web, monkeypatch):
    assert sign_up(web).status_code == 200
    with db.read() as s:
        prospect = s.scalar(select(Prospect))
    good = tokens.confirm_token(prospect.id, prospect.email)
    with monkeypatch.context() as m:
        m.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 8 * 24 * 3600)
        old = tokens.confirm_token(prospect.id, prospect.email)
    for token, words in ((old, "expired"), (good[:-3] + "abc", "not valid"), (tokens.confirm_token(prospect.id, "someone@else.org"), "not valid")):
        assert words in httpx.get(f"{web}/signup/confirm/{token}").text
        answer = httpx.post(f"{web}/signup/confirm/{token}")
        assert answer.status_code == 400 and words in answer.text
    assert granted(db) == {}


# --- without the server ---------------------------------------------------------------------------


def submit(db: Database, email: str = EMAIL, **fields) -> Prospect:
    form.submit(db, fields={"form_token": tokens.form_token(), "email": email, **fields}, client="10.0.0.1")
    with db.read() as s:
        return s.scalar(select(Prospect).where(Prospect.email == email.lower()))


def confirm(db: Database, prospect: Prospect) -> None:
    with db.write() as s:
        prospects.confirm(s, token=tokens.confirm_token(prospect.id, prospect.email))


def test_the_snippet_form_token_lasts_and_the_page_token_does_not(monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: int(time.time()) - 2 * 24 * 3600)
        page, website = tokens.form_token(tokens.PAGE), tokens.form_token(tokens.SNIPPET)
    with pytest.raises(ValueError, match="out of date"):
        tokens.check_form_token(page)
    tokens.check_form_token(website)


def test_unconfirmed_sign_ups_are_deleted_after_seven_days(db):
    kept, stale = submit(db, "kept@example.org"), submit(db, "stale@example.org", topics="events")
    confirm(db, kept)
    assert "0 unconfirmed and 0 withdrawn deleted" in prospects.purge(db, now=utcnow() + timedelta(days=6))
    with db.write() as s:
        s.add(SignupAttempt(client_hash="x", at=utcnow()))
    assert "1 unconfirmed and 0 withdrawn deleted" in prospects.purge(db, now=utcnow() + timedelta(days=7, minutes=1))
    with db.read() as s:
        assert s.scalars(select(Prospect.email)).all() == ["kept@example.org"]
        assert s.scalar(select(func.count()).select_from(SignupAttempt)) == 0
    assert stale.id
    with db.write() as s:  # every topic withdrawn: deleted a month later, nothing left to send
        prospects.withdraw_everything(s, prospect_id=kept.id, source="one-click")
    prospects.purge(db, now=utcnow() + timedelta(days=29))
    assert count(db, Prospect) == 1
    assert "1 withdrawn deleted" in prospects.purge(db, now=utcnow() + timedelta(days=31))
    assert count(db, Prospect) == 0


def test_a_patron_import_links_the_prospect_and_carries_consent_over_source_kept(db, staff, tmp_path):
    prospect = submit(db, "Ada@Example.org", topics=["events", "fundraising"])
    confirm(db, prospect)
    with db.write() as s:
        prospects.withdraw(s, prospect_id=prospect.id, topic="fundraising", source="one-click")
    csv = tmp_path / "patrons.csv"
    csv.write_text("cardnumber,surname,firstname,email\n2100001,Lovelace,Ada,ada@example.org\n2100002,Turing,Alan,alan@example.org\n")
    columns = {"ils_id": "cardnumber", "first_name": "firstname", "last_name": "surname", "email": "email"}
    run = imports.run_import(db, actor=staff["admin"], kind="patrons", path=csv, mapping={"columns": columns})
    assert any("1 sign-ups linked" in note for note in run.notes), run.notes
    with db.read() as s:
        linked = s.get(Prospect, prospect.id)
        assert linked.patron_id is not None
        assert consent.has_consent(s, patron_id=linked.patron_id, channel="email", topic="events")
        assert not consent.has_consent(s, patron_id=linked.patron_id, channel="email", topic="fundraising")
        sources = {(r.topic, r.granted, r.source_class) for r in consent.history(s, linked.patron_id)}
        assert ("events", True, "patron") in sources and ("fundraising", False, "patron") in sources
        kept = [r.source for r in consent.history(s, linked.patron_id) if r.source_class == "patron"]
        assert {t.split(",")[0] for t in kept} == {"sign-up form", "one-click"} and all("before their card" in t for t in kept)
    with db.write() as s:  # the patron's access export shows the sign-up; their erasure deletes it
        assert rights.access_export(s, actor=staff["admin"], patron_id=linked.patron_id)["sign_ups"][0]["email"] == "ada@example.org"
        assert rights.erase(s, actor=staff["admin"], patron_id=linked.patron_id)["sign_ups_deleted"] == 1
    assert count(db, Prospect) == 0 and count(db, ProspectConsent) == 0


def test_access_export_and_erasure_by_email_address(db, staff):
    prospect = submit(db, name="Rosa Parks", topics="events")
    confirm(db, prospect)
    with db.write() as s:
        data = prospects.access(s, actor=staff["admin"], email="ROSA.PARKS@example.org ")
        assert data["sign_up"]["name"] == "Rosa Parks" and data["consent"][0]["topic"] == "events"
        assert prospects.erase(s, actor=staff["admin"], email=EMAIL)
        assert prospects.access(s, actor=staff["admin"], email=EMAIL) is None
    assert count(db, Prospect) == 0 and count(db, ProspectConsent) == 0 and count(db, Suppression) == 1
    # The address is never mailed again: a new sign-up with it keeps nothing.
    assert submit(db) is None
    assert count(db, ConsentRecord) == 0


def test_a_campaign_to_prospects_goes_to_those_who_confirmed_its_topic_and_unsubscribe_works(db, staff, smtp):
    yes = submit(db, "yes@example.org", name="Rosa Parks", topics=["events"])
    confirm(db, yes)
    confirm(db, submit(db, "other.topic@example.org", topics=["fundraising"]))
    submit(db, "never.confirmed@example.org", topics=["events"])
    smtp.messages.clear()  # the confirmation emails
    manager = staff["manager"]
    with db.write() as s:
        assert prospects.count_audience(s, actor=manager, topic="events") == 1
        campaign = drafts.compose(s, actor=manager, name="Story time", segment_id=None, audience=drafts.PROSPECTS, topic="events",
                                  subject="Hello {{ first_name }}", body="Dear {{ first_name }}, story time is back.", holdout_pct=0)
        plan = drafts.plan(s, actor=manager, campaign_id=campaign.id)
        assert (plan["audience"], plan["eligible"], plan["excluded"]["no_consent"]) == (2, 1, 1)
        summary = drafts.launch(s, actor=manager, campaign_id=campaign.id)
    assert summary["recipients"] == 1
    assert sending.send_pending(db)["sent"] == 1
    (mail,) = smtp.messages
    assert mail["To"] == "yes@example.org" and mail["Subject"] == "Hello Rosa" and ".prospect-" in mail["Message-ID"]
    link = next(p.strip().strip("<>") for p in str(mail["List-Unsubscribe"]).split(",") if "/unsubscribe/" in p)
    assert link in mail.get_body(("plain",)).get_content()  # the prospect's "change what you receive" link
    with db.write() as s:
        found, was = unsubscribe.withdraw(s, token=link.rpartition("/")[2], source="one-click")
    assert (found.prospect_id, was) == (yes.id, True)
    assert granted(db) == {"events": False, "fundraising": True}
    with db.read() as s:
        shown = results.results(s, actor=manager, campaign_id=campaign.id)
        assert (shown["sent"], shown["unsubscribed"]) == (1, 1)
        assert [row for row in results.dashboard_rows(s, actor=manager) if row]
    with db.write() as s:
        again = drafts.compose(s, actor=manager, name="Again", segment_id=None, audience=drafts.PROSPECTS, topic="events", subject="Hi", body="Hello")
        assert drafts.plan(s, actor=manager, campaign_id=again.id)["eligible"] == 0
