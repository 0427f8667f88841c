"""A text campaign's "Send a test to me": to the staff member's own phone number (set on My account), through the
same gateway as campaigns (a real Kannel and its fake SMSC, or the text outbox), not a campaign message; refused
in plain words without a number, for one that cannot be normalised, or when the gateway does not take it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

import ui

from crmcore.admin import auth
from crmcore.campaigns import drafts
from crmcore.models import AuditLog, Message, StaffUser
from crmcore.texts import gateway, wording
from crmcore.texts import sending as text_sending
from tests.campaign_fixtures import _isolated_mail_config  # noqa: F401
from tests.kannel import SHORT_CODE, kannel  # noqa: F401
from tests.test_texts import _library

OWN = "+13125550199"


def test_staff_set_their_own_phone_normalised_and_a_bad_one_is_refused(db, staff):
    for role in ("viewer", "outreach", "manager", "admin"):  # every role, its own number only
        with db.write() as s:
            assert auth.set_own_phone(s, actor=staff[role], phone="(312) 555-0199") == OWN
        with db.read() as s:
            assert auth.own_phone(s, actor=staff[role]) == OWN
    with db.write() as s, pytest.raises(ValueError, match="Your phone number: '12' is not a valid phone number"):
        auth.set_own_phone(s, actor=staff["manager"], phone="12")
    with db.write() as s:
        assert auth.set_own_phone(s, actor=staff["manager"], phone="  ") is None  # blank clears it
    with db.read() as s:
        assert s.get(StaffUser, staff["manager"].id).phone is None and s.get(StaffUser, staff["admin"].id).phone == OWN
        assert s.scalar(select(func.count()).where(AuditLog.action == "staff.phone")) == 5


def test_a_test_text_goes_through_kannel_to_the_staff_members_own_phone_and_is_no_campaign_message(db, staff, kannel):
    campaign_id, ids = _library(db, staff)
    with db.write() as s:
        auth.set_own_phone(s, actor=staff["manager"], phone="312 555 0199")
    assert drafts.send_test(db, actor=staff["manager"], campaign_id=campaign_id, patron_id=ids[0]) == OWN
    (got,) = kannel.wait_for(1)
    assert got == (SHORT_CODE, OWN, f"[Test] Hi Pat0, story time at Txt Library on Saturday!\n{wording.STOP_LINE}")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0  # not counted as a campaign message
        assert s.scalar(select(func.count()).where(AuditLog.action == "campaign.test_send", AuditLog.entity_id == campaign_id)) == 1

    with pytest.raises(ValueError, match="your staff account has no phone number; add yours on My account"):
        drafts.send_test(db, actor=staff["admin"], campaign_id=campaign_id, patron_id=ids[0])
    with db.write() as s:  # kept from before a change of the default region, say: it no longer normalises
        s.get(StaffUser, staff["admin"].id).phone = "555-01"
    with pytest.raises(ValueError, match="your phone number '555-01' cannot be normalised to an international number"):
        drafts.send_test(db, actor=staff["admin"], campaign_id=campaign_id, patron_id=ids[0])
    with pytest.MonkeyPatch.context() as m:
        m.setenv("CRM_SMS_PASSWORD", "not-the-password")  # Kannel refuses (403)
        with pytest.raises(ValueError, match="Test send: the text was not sent: .*403"):
            drafts.send_test(db, actor=staff["manager"], campaign_id=campaign_id, patron_id=ids[0])
    assert len(kannel.received()) == 1
    with db.read() as s:
        assert s.scalar(select(func.count()).where(AuditLog.action == "campaign.test_send")) == 1  # refusals are not sends


def test_on_the_pages_staff_save_their_number_and_test_send_a_text_campaign_to_the_outbox(app, db, staff, monkeypatch):
    monkeypatch.delenv("CRM_SMS_URL", raising=False)
    campaign_id, ids = _library(db, staff)
    at = app(role="manager", page="pages/account.py").run()
    at.text_input(key="account-phone").input("12")
    next(b for b in at.button if b.label == "Save phone number").click().run()
    assert [e.value for e in at.error] == ["Your phone number: '12' is not a valid phone number."]
    at.text_input(key="account-phone").input("(312) 555-0199")
    next(b for b in at.button if b.label == "Save phone number").click().run()
    assert not at.error and any(f"Phone number saved: {OWN}." in m.value for m in at.success)
    assert at.text_input(key="account-phone").value == OWN

    at = app(role="manager", page="pages/campaigns.py").run()
    at.selectbox(key="cmp-pick").set_value(campaign_id).run()
    at.button(key="cmp-test-send").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(f"Test sent to {ui.md(OWN)}." == m.value for m in at.success)
    (written,) = gateway.outbox_directory().glob("test-*.json")
    assert written.name.startswith(f"test-campaign-{campaign_id}.patron-{ids[0]}.")
    assert json.loads(written.read_text()) == {"to": OWN, "text": f"[Test] Hi Pat0, story time at Txt Library on Saturday!\n{wording.STOP_LINE}"}
    assert text_sending.send_pending(db) == {}  # nothing was queued


def test_a_staff_member_without_a_number_is_told_where_to_add_it_on_the_campaigns_page(app, db, staff, monkeypatch):
    monkeypatch.delenv("CRM_SMS_URL", raising=False)
    campaign_id, _ids = _library(db, staff)
    at = app(role="manager", page="pages/campaigns.py").run()
    at.selectbox(key="cmp-pick").set_value(campaign_id).run()
    at.button(key="cmp-test-send").click().run()
    assert not at.exception and [e.value for e in at.error] == [text_sending.NO_OWN_PHONE]
    assert not gateway.outbox_directory().exists() or not list(gateway.outbox_directory().glob("test-*.json"))
