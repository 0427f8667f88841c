"""AppTest of the Sign-ups page (Campaigns → Sign-ups) and of a campaign to prospects composed on the Campaigns page."""

from __future__ import annotations

from sqlalchemy import select

from crmcore.models import AuditLog, Campaign, Prospect
from crmcore.signups import prospects, tokens
from tests.campaign_fixtures import _isolated_mail_config  # noqa: F401
from tests.test_dashboard_page import library  # noqa: F401  (fixture)


def add_prospect(db, email: str, *, confirmed: bool) -> None:
    with db.write() as s:
        signup = prospects.clean(s, {"email": email, "name": "Rosa <b>Parks</b>", "topics": ["events"]})
        row = prospects.store(s, signup=signup, client=email)  # a client each: no rate limit here
    if confirmed:
        with db.write() as s:
            prospects.confirm(s, token=tokens.confirm_token(row.id, row.email))


def test_the_sign_ups_page_lists_prospects_audited_with_the_snippet(app, db):
    add_prospect(db, "rosa@example.org", confirmed=True)
    add_prospect(db, "waiting@example.org", confirmed=False)
    at = app(role="manager", page="pages/signups.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (people,) = [d.value for d in at.dataframe if "email" in d.value.columns]
    assert set(people["email"]) == {"rosa@example.org", "waiting@example.org"}
    assert set(people["topics"].dropna()) == {"events"}  # only the confirmed one has consent
    (code,) = [c.value for c in at.code]
    assert '<form method="post" action="http' in code and "/signup" in code and 'name="form_token"' in code and 'name="website"' in code
    tokens.check_form_token(code.split('name="form_token" value="')[1].split('"')[0])  # the snippet's token is accepted
    with db.read() as s:
        assert s.scalars(select(AuditLog.entity).where(AuditLog.action == "pii.view")).all() == ["prospect"]
    at.radio(key="signups-shown").set_value("waiting").run()
    (people,) = [d.value for d in at.dataframe if "email" in d.value.columns]
    assert list(people["email"]) == ["waiting@example.org"]


def test_outreach_staff_cannot_open_the_sign_ups_page(app, db):
    at = app(role="outreach", page="pages/signups.py").run()
    assert not any("rosa" in str(d.value) for d in at.dataframe)
    assert not at.code


def test_a_campaign_to_prospects_is_composed_on_the_campaigns_page(app, db):
    add_prospect(db, "rosa@example.org", confirmed=True)
    at = app(role="manager", page="pages/campaigns.py").run()
    assert not at.exception
    at.text_input(key="cmp-name-new").input("Hello prospects")
    at.radio(key="cmp-audience-new").set_value("prospects")
    at.text_input(key="cmp-subject-new").input("Hello {{ first_name }}")
    at.text_area(key="cmp-body-new").input("Dear {{ first_name }}, welcome.")
    at.selectbox(key="cmp-topic-new").select("events")
    [b for b in at.button if b.label == "Save draft"][0].click()
    at = at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        (campaign,) = s.scalars(select(Campaign)).all()
        assert (campaign.audience, campaign.segment_id) == ("prospects", None)
        assert s.scalar(select(Prospect.email)) == "rosa@example.org"


def test_the_dashboard_counts_sign_ups_per_month_with_small_cells_suppressed(app, db, staff, library):
    from datetime import timedelta

    import streamlit as st

    from crmcore.models import utcnow
    from crmcore.signups import figures

    st.cache_data.clear()
    for i in range(12):
        add_prospect(db, f"reader{i}@example.org", confirmed=i < 6)
    with db.write() as s:  # two sign-ups a month earlier, one confirmed: a small group
        for p in s.scalars(select(Prospect).where(Prospect.email.in_(["reader0@example.org", "reader7@example.org"]))):
            p.created_at = utcnow() - timedelta(days=40)
    with db.read() as s:
        frame = figures.by_month(s, actor=staff["viewer"])
    assert frame[["sign-ups", "confirmed", "confirmed %"]].values.tolist() == [["<5", "<5", "<5"], [10, 5, 50.0]]
    at = app(role="viewer", page="pages/dashboard.py").run()
    assert not at.exception and "Sign-ups" in [s.value for s in at.subheader]
    assert any("sign" in c.value.lower() and c.value.startswith("Summary") for c in at.caption), [c.value for c in at.caption if "ign" in c.value]
    assert "@example.org" not in "".join(d.value.to_csv() for d in at.dataframe)


def test_privacy_requests_find_export_and_erase_a_prospect_by_address(app, db):
    add_prospect(db, "rosa@example.org", confirmed=True)
    at = app(role="admin", page="pages/privacy_requests.py").run()
    at.text_input(key="privacy-prospect-email").input("Rosa@Example.org").run()
    assert not at.exception and at.json[0].value and "rosa@example.org" in at.json[0].value
    at.checkbox(key="privacy-prospect-sure").check().run()
    at.button(key="privacy-prospect-erase").click().run()
    assert not at.exception and any("erased" in s.value for s in at.success)
    with db.read() as s:
        assert s.scalar(select(Prospect)) is None


def test_the_segments_page_counts_prospects_by_topic(app, db):
    add_prospect(db, "rosa@example.org", confirmed=True)
    add_prospect(db, "waiting@example.org", confirmed=False)
    at = app(role="manager", page="pages/segments.py").run()
    at.radio(key="seg-audience").set_value("prospects").run()
    assert not at.exception and not at.error
    (counts,) = [d.value for d in at.dataframe]
    assert dict(zip(counts.iloc[:, 0], counts.iloc[:, 1])) == {"Events": 1, "New materials": 0, "Newsletter": 0, "Fundraising": 0}
