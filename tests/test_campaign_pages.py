"""AppTest flows: compose and launch a campaign, the public preference page, the sent-mail page."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import func, select

from crmcore.campaigns import drafts, preference_tokens, sending
from crmcore.library import consent
from crmcore.models import AuditLog, Campaign, ConsentRecord, CurrentConsent, Message
from tests.campaign_fixtures import _isolated_mail_config, add_patrons, add_segment  # noqa: F401


def by_label(widgets, label):
    (found,) = [w for w in widgets if w.label == label]
    return found


def test_compose_a_draft_from_the_page(app, db):
    with db.write() as s:
        add_patrons(s, 3)
        add_segment(s, branches=["MAIN"], name="Main branch")
    at = app(role="manager", page="pages/campaigns.py").run()
    assert not at.exception
    by_label(at.text_input, "Name").input("Autumn <events>")
    by_label(at.text_input, "Subject").input("Hello {{ first_name }}")
    by_label(at.text_area, "Message").input("Dear {{ first_name }},\n\nCome to {{ branch }}.")
    by_label(at.selectbox, "Topic (patrons consent per topic)").select("events")
    by_label(at.button, "Save draft").click()
    at = at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        (campaign,) = s.scalars(select(Campaign)).all()
    assert (campaign.name, campaign.status, campaign.topic, campaign.holdout_pct) == ("Autumn <events>", "draft", "events", 10.0)
    assert any("Draft saved" in m.value for m in at.success)


def test_a_bad_template_is_refused_on_the_page_with_a_clear_message(app, db):
    with db.write() as s:
        add_segment(s, branches=["MAIN"], name="Main branch")
    at = app(role="manager", page="pages/campaigns.py").run()
    by_label(at.text_input, "Name").input("Broken")
    by_label(at.text_input, "Subject").input("Hi")
    by_label(at.text_area, "Message").input("Dear {{ firstname }}")
    by_label(at.button, "Save draft").click()
    at = at.run()
    assert not at.exception
    assert any("'firstname' is undefined" in e.value for e in at.error)
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0


def test_launch_from_the_page_after_the_confirmation(app, db, staff):
    with db.write() as s:
        add_patrons(s, 12)
        add_patrons(s, 2, consented=False, start=50)
        seg = add_segment(s, branches=["MAIN"], name="Main branch")
        cid = drafts.compose(s, actor=staff["manager"], name="Launch me", segment_id=seg, topic="events", subject="Hi", body="Hello {{ first_name }}", holdout_pct=0).id
    at = app(role="manager", page="pages/campaigns.py").run()
    at.selectbox(key="cmp-pick").select(cid)
    at = at.run()
    at.button(key="cmp-launch").click()
    at = at.run()
    assert not at.exception
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0  # the dialog asks first
    at.button(key="cmp-confirm-launch").click()
    at = at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        assert s.scalar(select(func.count()).where(Message.campaign_id == cid, Message.status == "queued")) == 12
        assert s.get(Campaign, cid).launch_summary["excluded"]["no_consent"] == 2
    assert any("12 messages queued" in m.value for m in at.success)
    at.switch_page("pages/dashboard.py").run()
    at.switch_page("pages/campaigns.py").run()
    assert at.selectbox(key="cmp-pick").value == cid  # coming back, the campaign is still open
    assert sending.send_pending(db) == {"sent": 12}
    at.button(key="cmp-refresh").click().run()  # the worker sent them: Refresh shows it
    assert {m.label: m.value for m in at.metric}["Sent"] == "12"
    at = app(role="manager", page="pages/sent_mail.py").run()
    assert not at.exception and len(at.dataframe[0].value) == 12  # the outbox (the next table counts mail that came back)
    at.selectbox(key="sent-open").select_index(1)
    at = at.run()
    assert not at.exception
    with db.read() as s:
        assert s.scalar(select(func.count()).where(AuditLog.action == "outbox.view")) == 1


def test_a_viewer_cannot_open_the_campaigns_page(app):
    at = app(role="outreach", page="pages/campaigns.py").run()
    assert "Campaigns" not in [t.value for t in at.title]


def pref_box(at, channel: str, topic: str):
    """The page's box for channel × topic (its key carries the state shown, so that it starts afresh after a change)."""
    return next(c for c in at.checkbox if c.key.startswith(f"pref-{channel}-{topic}-"))


def test_the_preference_page_changes_nothing_until_a_button_is_pressed(app, db):
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        consent.record(s, patron_id=pid, channel="email", topic="newsletter", granted=True, source="test")
    token = preference_tokens.make(pid)
    at = app(page="pages/preferences.py", query={"token": token}).run()
    assert not at.exception and not at.error
    assert any("Hello Pat0" in m.value for m in at.markdown)
    assert pref_box(at, "email", "events").value is True
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ConsentRecord)) == 2  # opening changed nothing
    pref_box(at, "email", "fundraising").check()
    pref_box(at, "email", "events").uncheck()
    at.button[0].click()
    at = at.run()
    assert not at.exception
    with db.read() as s:
        assert consent.current(s, pid) == {("email", "events"): False, ("email", "newsletter"): True, ("email", "fundraising"): True}
        records = s.scalars(select(ConsentRecord).where(ConsentRecord.source == "preference page")).all()
        assert {(r.topic, r.granted, r.wording_version) for r in records} == {("events", False, consent.WORDING_VERSION), ("fundraising", True, consent.WORDING_VERSION)}
    at.button(key="pref-unsubscribe").click()
    at = at.run()
    assert not at.exception
    with db.read() as s:
        assert not any(s.scalars(select(CurrentConsent.granted).where(CurrentConsent.patron_id == pid)))
    assert any("unsubscribed from everything" in m.value for m in at.success)


def test_the_preference_page_refuses_tampered_and_foreign_tokens(app, db):
    with db.write() as s:
        a, b = add_patrons(s, 2)
    token = preference_tokens.make(a)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    at = app(page="pages/preferences.py", query={"token": tampered}).run()
    assert not at.exception
    assert [e.value for e in at.error] == [preference_tokens.INVALID]
    assert not at.button  # nothing to press
    # A valid token for A shows and changes only A.
    at = app(page="pages/preferences.py", query={"token": token}).run()
    at.button(key="pref-unsubscribe").click()
    at = at.run()
    with db.read() as s:
        assert not any(consent.current(s, a).values()) and consent.current(s, a)[("email", "events")] is False
        assert consent.current(s, b) == {("email", "events"): True}


def test_the_dashboard_shows_launched_campaigns_with_small_cells_suppressed(app, db, staff):
    from datetime import date, timedelta

    from crmcore.library import activity
    from crmcore.models import ActivityEvent

    with db.write() as s:
        ids = add_patrons(s, 30)
        for pid in ids:
            s.add(ActivityEvent(patron_id=pid, occurred_on=date.today().replace(day=1), kind="checkout"))
        s.flush()
        activity.rebuild_rollups(s)
        seg = add_segment(s, branches=["MAIN"], name="Main branch")
    at = app(role="viewer", page="pages/dashboard.py").run()
    assert not at.exception and "Campaigns" not in [h.value for h in at.subheader]  # none launched yet
    with db.write() as s:
        cid = drafts.compose(s, actor=staff["manager"], name="Dashboard campaign", segment_id=seg, topic="events", subject="Hi", body="Hello", holdout_pct=20).id
    with db.write() as s:
        drafts.launch(s, actor=staff["manager"], campaign_id=cid)
    sending.send_pending(db)
    with db.write() as s:
        consent.record(s, patron_id=ids[0], channel="email", topic="events", granted=False, source="preference page")
        recipients = list(s.scalars(select(Message.patron_id).where(Message.campaign_id == cid, Message.status == "sent")))
        for pid in recipients[:2]:  # two converters: too few to show a rate
            s.add(ActivityEvent(patron_id=pid, occurred_on=date.today() + timedelta(days=1), kind="checkout"))
    st.cache_data.clear()  # what the campaign page does after a launch
    at = app(role="viewer", page="pages/dashboard.py").run()
    assert not at.exception and not at.error
    assert "Campaigns" in [h.value for h in at.subheader]
    (row,) = at.dataframe[-1].value.to_dict("records")
    with db.read() as s:
        sent = s.scalar(select(func.count()).where(Message.campaign_id == cid, Message.status == "sent"))
    assert row["campaign"] == "Dashboard campaign" and row["sent"] == str(sent)
    assert row["unsubscribed"] in ("<5", "0")  # one patron unsubscribed (0 if that patron was held out)
    assert row["conversion recipients %"] == row["lift (points)"] == "–"
    assert any("dl-campaigns-csv" in b.proto.id for b in at.get("download_button"))  # the table, as a CSV


def test_campaign_results_chart_conversion_by_day_with_its_summary_table_and_csv(app, db, staff):
    from datetime import timedelta

    from crmcore.campaigns import results
    from crmcore.models import ActivityEvent

    with db.write() as s:
        add_patrons(s, 20)
        seg = add_segment(s, branches=["MAIN"], name="Main branch")
        cid = drafts.compose(s, actor=staff["manager"], name="Charted", segment_id=seg, topic="events", subject="Hi", body="Hello", holdout_pct=25).id
    with db.write() as s:
        drafts.launch(s, actor=staff["manager"], campaign_id=cid)
    sending.send_pending(db)
    with db.write() as s:
        campaign = s.get(Campaign, cid)
        campaign.launched_at -= timedelta(days=10)  # sent ten days ago
        if campaign.scheduled_at:
            campaign.scheduled_at -= timedelta(days=10)
        start = results.sent_on(campaign)
        recipients = list(s.scalars(select(Message.patron_id).where(Message.campaign_id == cid, Message.status == "sent")))
        for pid in recipients[:3]:
            s.add(ActivityEvent(patron_id=pid, occurred_on=start + timedelta(days=2), kind="checkout"))
    at = app(role="manager", page="pages/campaigns.py").run()
    at.selectbox(key="cmp-pick").select(cid)
    at = at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (chart,) = at.get("vega_lite_chart")
    assert "Conversion by day since sending" in chart.proto.spec
    summary = next(c.value for c in at.caption if c.value.startswith("By day 10 of"))
    pct = round(100 * 3 / len(recipients), 1)
    assert f"recipients {pct:.1f} %" in summary and "holdout 0.0 %" in summary
    table = next(d.value for d in at.dataframe if "conversion %" in d.value.columns)
    assert len(table) == 20 and set(table["group"]) == {"Recipients", "Holdout"}
    assert any("cmp-by-day-csv" in b.proto.id for b in at.get("download_button"))


def test_merge_fields_are_inserted_by_buttons_keeping_what_was_typed(app, db):
    with db.write() as s:
        add_segment(s, branches=["MAIN"], name="Main branch")
    at = app(role="manager", page="pages/campaigns.py").run()
    by_label(at.text_input, "Name").input("Fields")
    by_label(at.text_input, "Subject").input("News from")
    by_label(at.text_area, "Message").input("Dear {{ first_name }},\n\nSee you at")
    by_label(at.selectbox, "Merge field").select("branch")
    by_label(at.button, "Insert in message").click()
    at = at.run()
    assert not at.exception and not at.error
    assert by_label(at.text_area, "Message").value == "Dear {{ first_name }},\n\nSee you at {{ branch }}"
    by_label(at.button, "Insert in subject").click()
    at = at.run()
    assert by_label(at.text_input, "Subject").value == "News from {{ branch }}"
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0  # inserting saves nothing
    by_label(at.button, "Save draft").click()
    at = at.run()
    assert not at.exception and not at.error
    with db.read() as s:
        (campaign,) = s.scalars(select(Campaign)).all()
    assert (campaign.subject_template, campaign.body_template) == ("News from {{ branch }}", "Dear {{ first_name }},\n\nSee you at {{ branch }}")


def test_the_preview_shows_the_html_part_in_a_sandboxed_frame_and_the_text_part(app, db, staff):
    import base64

    with db.write() as s:
        add_patrons(s, 2)
        seg = add_segment(s, branches=["MAIN"], name="Main branch")
        cid = drafts.compose(s, actor=staff["manager"], name="Look", segment_id=seg, topic="events", subject="Hi {{ first_name }}", body="Dear {{ first_name }},\n\n<script>alert(1)</script> at {{ branch }}", holdout_pct=0).id
    at = app(role="manager", page="pages/campaigns.py").run()
    at.selectbox(key="cmp-pick").select(cid)
    at = at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (frame,) = [e for e in at.get("iframe") if e.proto.src.startswith("data:")]  # not the drafts' helper frames
    src = frame.proto.src
    assert src.startswith("data:text/html;charset=utf-8;base64,")
    document = base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
    assert "Content-Security-Policy" in document and "default-src 'none'" in document
    assert "<p>Dear Pat0,</p>" in document and "&lt;script&gt;" in document and "<script>" not in document
    assert any("Dear Pat0," in t.value and "Change what you receive" in t.value for t in at.text)
