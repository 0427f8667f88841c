"""Patrons' rights: access exports hold everything and escape it; erasure removes personal data and
consent history, keeps anonymous aggregates and campaign results, and suppresses the address for good."""

import json
from datetime import date

import pytest
from sqlalchemy import func, select

from crmcore.admin.permissions import PermissionDenied
from crmcore.campaigns import do_not_mail
from crmcore.library import consent
from crmcore.models import (
    ActivityEvent,
    ActivityMonthly,
    AuditLog,
    Campaign,
    ConsentRecord,
    Contact,
    CurrentConsent,
    Message,
    Patron,
    Suppression,
)
from crmcore.privacy import rights

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def seed_patron(db, *, email="Ana.Lopez@Example.org", first_name="Ana", last_name="Lopez"):
    """One patron with consent, activity, a rollup, a linked contact and a campaign message."""
    with db.write() as s:
        p = Patron(ils_id="P-1001", first_name=first_name, last_name=last_name, email=email, phone="+15551230000", birth_year=1980, interests="gardening", history_opt_in=True)
        s.add(p)
        s.flush()
        consent.record(s, patron_id=p.id, channel="email", topic="events", granted=True, source="signup form")
        consent.record(s, patron_id=p.id, channel="email", topic="newsletter", granted=False, source="preference page")
        s.add(ActivityEvent(patron_id=p.id, occurred_on=date(2026, 1, 5), kind="checkout", count=2, category="mystery"))
        s.add(ActivityMonthly(patron_id=p.id, month=date(2026, 1, 1), kind="checkout", branch_id=0, count=2))
        s.add(Contact(first_name=first_name, last_name=last_name, email=email, patron_id=p.id))
        c = Campaign(name="Spring events", topic="events", subject_template="Hi", body_template="Hello")
        s.add(c)
        s.flush()
        s.add(Message(campaign_id=c.id, patron_id=p.id, status="sent"))
        return p.id


def test_access_export_holds_everything_about_the_patron_and_is_audited(db, staff):
    pid = seed_patron(db)
    with db.write() as s:
        data = rights.access_export(s, actor=staff["admin"], patron_id=pid)
    assert data["patron"]["email"] == "Ana.Lopez@Example.org" and data["patron"]["interests"] == "gardening"
    assert {(r["topic"], r["granted"]) for r in data["current_consent"]} == {("events", True), ("newsletter", False)}
    assert len(data["consent_history"]) == 2
    assert data["activity"] == [{"date": "2026-01-05", "kind": "checkout", "branch": None, "count": 2, "category": "mystery"}]
    assert data["activity_by_month"][0]["count"] == 2
    assert data["messages"][0]["campaign"] == "Spring events"
    assert data["contact_records"][0]["last_name"] == "Lopez"
    assert json.loads(rights.to_json(data))["patron"]["ils_id"] == "P-1001"
    with db.read() as s:
        assert s.execute(select(AuditLog.actor_name).where(AuditLog.action == "privacy.access", AuditLog.entity_id == str(pid))).scalars().all() == ["admin"]


def test_access_html_escapes_every_value(db, staff):
    pid = seed_patron(db, first_name=XSS, last_name="O'Brien & <b>Sons</b>")
    with db.write() as s:
        page = rights.to_html(rights.access_export(s, actor=staff["admin"], patron_id=pid)).decode()
    assert "<script>" not in page and "<img" not in page and "<b>Sons" not in page
    assert "&lt;script&gt;" in page and "O&#39;Brien &amp; &lt;b&gt;Sons&lt;/b&gt;" in page
    assert "mystery" in page and "Spring events" in page


def test_erasure_removes_personal_data_and_consent_keeps_aggregates(db, staff):
    pid = seed_patron(db)
    with db.write() as s:
        result = rights.erase(s, actor=staff["admin"], patron_id=pid)
    assert result == {
        "consent_records_deleted": 2, "email_suppressed": True, "contacts_unlinked": 1, "survey_answers_unlinked": 0, "requests_deleted": 0, "sign_ups_deleted": 0,
    }
    with db.read() as s:
        p = s.get(Patron, pid)
        assert (p.first_name, p.last_name, p.email, p.phone, p.birth_year, p.interests) == (None,) * 6
        assert p.ils_id.startswith("erased-") and p.ils_id != "P-1001" and p.erased_at is not None and not p.history_opt_in
        assert s.execute(select(func.count()).select_from(ConsentRecord).where(ConsentRecord.patron_id == pid)).scalar() == 0
        assert s.execute(select(func.count()).select_from(CurrentConsent).where(CurrentConsent.patron_id == pid)).scalar() == 0
        # Anonymous aggregates stay attached to the anonymised row; what was read does not.
        assert s.execute(select(ActivityMonthly.count).where(ActivityMonthly.patron_id == pid)).scalar() == 2
        assert s.execute(select(ActivityEvent.category).where(ActivityEvent.patron_id == pid)).scalar() is None
        # Campaign results still count the message.
        assert s.execute(select(func.count()).select_from(Message).where(Message.patron_id == pid, Message.status == "sent")).scalar() == 1
        assert s.execute(select(Contact.patron_id)).scalar() is None
        # The address is kept only as a hash, and any spelling of it is suppressed.
        assert s.execute(select(Suppression.email_hash)).scalars().all() == [do_not_mail.email_hash("ana.lopez@example.org")]
        assert do_not_mail.is_suppressed(s, "  ANA.LOPEZ@example.ORG ") and not do_not_mail.is_suppressed(s, "someone@example.org")
        entry = s.execute(select(AuditLog).where(AuditLog.action == "privacy.erase")).scalar_one()
        assert entry.entity_id == str(pid) and "Lopez" not in json.dumps(entry.detail)


def test_erasing_twice_is_refused_and_unknown_patron_is_a_clear_error(db, staff):
    pid = seed_patron(db)
    with db.write() as s:
        rights.erase(s, actor=staff["admin"], patron_id=pid)
    with pytest.raises(ValueError, match="already erased"), db.write() as s:
        rights.erase(s, actor=staff["admin"], patron_id=pid)
    with pytest.raises(LookupError, match="No patron with id 999"), db.write() as s:
        rights.access_export(s, actor=staff["admin"], patron_id=999)


@pytest.mark.parametrize("role", ["manager", "outreach", "viewer"])
def test_only_privacy_officers_may_export_or_erase(db, staff, role):
    pid = seed_patron(db)
    for call in (rights.access_export, rights.erase):
        with pytest.raises(PermissionDenied), db.write() as s:
            call(s, actor=staff[role], patron_id=pid)
    with db.read() as s:
        assert s.get(Patron, pid).email is not None


def test_find_patrons_by_ils_id_email_or_last_name_is_audited(db, staff):
    pid = seed_patron(db)
    with db.write() as s:
        assert [p["id"] for p in rights.find_patrons(s, actor=staff["admin"], query="P-1001")] == [pid]
        assert [p["id"] for p in rights.find_patrons(s, actor=staff["admin"], query="ana.lopez@example.org")] == [pid]
        assert [p["id"] for p in rights.find_patrons(s, actor=staff["admin"], query="lop")] == [pid]
        assert rights.find_patrons(s, actor=staff["admin"], query="nobody") == []
    with db.read() as s:
        assert s.execute(select(func.count()).select_from(AuditLog).where(AuditLog.action == "pii.view")).scalar() == 3


def test_opt_in_by_default_a_new_patron_has_no_consent_and_no_history_opt_in(db):
    with db.write() as s:
        p = Patron(ils_id="NEW-1", email="new@example.org")
        s.add(p)
        s.flush()
        pid = p.id
    with db.read() as s:
        assert s.get(Patron, pid).history_opt_in is False
        assert consent.current(s, pid) == {}
        assert not any(consent.has_consent(s, patron_id=pid, channel="email", topic=t) for t in consent.TOPICS)


def test_opt_in_by_default_through_the_import_path(db, monkeypatch, tmp_path):
    from crmcore import cli

    monkeypatch.setenv("DATABASE_URL", db.url)
    source = tmp_path / "patrons.csv"
    source.write_text("cardnumber,firstname,surname,email\nIMP-1,Kim,Ng,kim.ng@example.org\n")
    mapping = tmp_path / "mapping.json"
    mapping.write_text('{"columns": {"ils_id": "cardnumber", "first_name": "firstname", "last_name": "surname", "email": "email"}}')
    assert cli.main(["import", "patrons", str(source), "--mapping", str(mapping)]) == 0
    with db.read() as s:
        patron = s.execute(select(Patron).where(Patron.ils_id == "IMP-1")).scalar_one()
        assert patron.email == "kim.ng@example.org" and patron.history_opt_in is False
        assert consent.current(s, patron.id) == {}
        assert s.execute(select(func.count()).select_from(ConsentRecord)).scalar() == 0
