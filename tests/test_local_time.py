"""The library's time zone (setting "time_zone"): staff see and type times in it; the database keeps UTC."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from sqlmodel import select

import ui
from crmcore.admin import settings
from crmcore.models import AuditLog, Campaign, Interaction
from crmcore.outreach import organizations
from crmcore.privacy import audit
from tests.campaign_fixtures import _isolated_mail_config, add_patrons, add_segment  # noqa: F401
from tests.test_outreach_pages import button, ql

CHICAGO = "America/Chicago"  # UTC-5 in summer (CDT), UTC-6 in winter (CST)


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


@pytest.fixture
def chicago(db, staff):
    with db.write() as s:
        settings.put(s, actor=staff["admin"], key="time_zone", value=CHICAGO)


def test_the_time_zone_must_be_a_real_zone_and_defaults_to_the_environment(db, staff, monkeypatch):
    for bad in ("Mars/Olympus_Mons", "", "CET+1", "/etc/passwd"):
        with pytest.raises(ValueError, match="Time zone: must be a time-zone name"), db.write() as s:
            settings.put(s, actor=staff["admin"], key="time_zone", value=bad)
    with db.write() as s:
        assert settings.put(s, actor=staff["admin"], key="time_zone", value=" Europe/Paris ") == "Europe/Paris"
    with db.read() as s:
        assert settings.library_zone(s).key == "Europe/Paris"
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    assert settings._default_zone() == "Pacific/Auckland"
    monkeypatch.setenv("TZ", "Nowhere/Special")
    assert settings._default_zone() == "UTC"
    monkeypatch.delenv("TZ")
    assert settings._default_zone() == "UTC"


@pytest.mark.parametrize("day, utc_hour, abbreviation", [(date(2026, 7, 1), 14, "CDT"), (date(2026, 1, 15), 15, "CST")])
def test_a_time_typed_in_local_time_is_stored_as_utc_and_shown_back_as_typed(app, db, staff, chicago, day, utc_hour, abbreviation):
    with db.write() as s:
        pta = organizations.create_organization(s, actor=staff["outreach"], name="Lincoln PTA").id
    at = app(role="outreach", page="pages/outreach_log.py").run()
    at.multiselect(key=ql(at, "orgs")).set_value([pta])
    at.text_area(key=ql(at, "notes")).input("Story time at the PTA")
    at.date_input(key=ql(at, "date")).set_value(day)
    at.time_input(key=ql(at, "time")).set_value(time(9, 30))
    button(at, "Log it").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        stored = as_utc(s.exec(select(Interaction)).one().occurred_at)
    assert stored == datetime(day.year, day.month, day.day, utc_hour, 30, tzinfo=timezone.utc)  # 09:30 in Chicago
    typed = f"{day:%Y-%m-%d} 09:30 {abbreviation}"
    listing = app(role="outreach", page="pages/interactions.py").run()
    listing.date_input(key="ix-period").set_value((day - timedelta(days=1), day + timedelta(days=1))).run()
    assert not listing.exception
    assert list(listing.dataframe[0].value["when"]) == [typed]
    orgs = app(role="outreach", page="pages/organizations.py").run()
    orgs.selectbox(key="org-open").select(pta).run()
    assert not orgs.exception
    shown = " ".join(m.value for m in orgs.markdown) + " ".join(c.value for c in orgs.caption)
    assert ui.md(typed) in shown  # the organization's timeline


def test_an_evening_interaction_is_found_on_the_library_day_it_happened(app, db, staff, chicago):
    from crmcore.outreach import interactions

    evening = datetime(2026, 7, 1, 23, 30, tzinfo=timezone.utc) + timedelta(hours=5)  # 23:30 CDT = 04:30 UTC on 2 July
    with db.write() as s:
        interactions.log_interaction(s, actor=staff["outreach"], kind="meeting", new_organizations=["Night Owls"], occurred_at=evening)
    listing = app(role="outreach", page="pages/interactions.py").run()
    listing.date_input(key="ix-period").set_value((date(2026, 7, 1), date(2026, 7, 1))).run()
    assert list(listing.dataframe[0].value["when"]) == ["2026-07-01 23:30 CDT"]
    listing.date_input(key="ix-period").set_value((date(2026, 7, 2), date(2026, 7, 2))).run()
    assert listing.dataframe[0].value.empty


def test_the_audit_log_shows_the_library_time(app, db, staff, chicago):
    with db.write() as s:
        entry = audit.record(s, actor=staff["admin"], action="setting.change", entity="setting", entity_id="small_cell_k")
        entry.at = datetime(2026, 11, 30, 23, 15, tzinfo=timezone.utc)
    at = app(role="admin", page="pages/audit_log.py").run()
    at.date_input(key="audit-dates").set_value((date(2026, 11, 1), date.today())).run()
    frame = at.dataframe[0].value
    assert "2026-11-30 17:15 CST" in list(frame["at"])
    with db.read() as s:  # unchanged underneath
        assert as_utc(s.get(AuditLog, entry.id).at).hour == 23


def test_a_campaign_scheduled_in_local_time_is_stored_as_utc(app, db, staff, chicago):
    from crmcore.campaigns import drafts

    with db.write() as s:
        add_patrons(s, 6)
        seg = add_segment(s, branches=["MAIN"], name="Main branch")
        cid = drafts.compose(s, actor=staff["manager"], name="Later", segment_id=seg, topic="events", subject="Hi", body="Hello", holdout_pct=0).id
    at = app(role="manager", page="pages/campaigns.py").run()
    at.selectbox(key="cmp-pick").select(cid)
    at = at.run()
    at.button(key="cmp-launch").click().run()
    at.radio(key="cmp-when").set_value("Schedule").run()
    day = date.today() + timedelta(days=2)
    at.date_input(key="cmp-day").set_value(day)
    at.time_input(key="cmp-time").set_value(time(8, 0))
    at.button(key="cmp-confirm-launch").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        scheduled = as_utc(s.get(Campaign, cid).scheduled_at)
    from zoneinfo import ZoneInfo

    assert scheduled == datetime.combine(day, time(8, 0), tzinfo=ZoneInfo(CHICAGO)).astimezone(timezone.utc)
    assert scheduled.hour in (13, 14)
