"""Compose, preview, test send, launch (exclusions, frequency cap, holdout), cancel, and results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmcore.admin import settings
from crmcore.campaigns import do_not_mail, drafts, results, sending
from crmcore.library import consent
from crmcore.models import ActivityEvent, AuditLog, Campaign, Message, Patron, StaffUser, utcnow
from tests.campaign_fixtures import _isolated_mail_config, add_patrons, add_segment, smtp  # noqa: F401

BODY = "Dear {{ first_name }},\n\nNew events at {{ branch }}."


def draft(session, actor, segment_id, **kw) -> int:
    values = dict(name="Spring events", segment_id=segment_id, topic="events", subject="Hi {{ first_name }}", body=BODY, holdout_pct=10)
    values.update(kw)
    return drafts.compose(session, actor=actor, **values).id


def test_compose_rejects_bad_templates_with_a_clear_message(db, staff):
    with db.write() as s:
        seg = add_segment(s, branches=["MAIN"])
    cases = {
        "{{ first_nam }}": "Body, line 1: 'first_nam' is undefined. The merge fields are",
        "{% if first_name %}": "Body, line 1:",
        "{{ first_name.__class__.__mro__ }}": "Body, line 1: the template tries something templates may not do",
    }
    for body, message in cases.items():
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")), db.write() as s:
            draft(s, staff["manager"], seg, body=body)
    with pytest.raises(ValueError, match="Topic|topic"), db.write() as s:
        draft(s, staff["manager"], seg, topic="gossip")
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0


def test_preview_renders_for_a_sample_patron_and_test_send_goes_to_the_staff_address(db, staff, smtp):
    with db.write() as s:
        ids = add_patrons(s, 3)
        seg = add_segment(s, branches=["MAIN"])
        cid = draft(s, staff["manager"], seg)
    with db.write() as s:
        sample = drafts.sample_patrons(s, actor=staff["manager"], campaign_id=cid)
        assert [i for i, _ in sample] == ids and "Pat0" in sample[0][1]
        audited = s.scalars(select(AuditLog).where(AuditLog.action == "campaign.sample")).one()
        assert audited.detail == {"campaign": cid, "shown": 3, "patron_ids": ids}
    shown = drafts.preview(db, actor=staff["manager"], campaign_id=cid, patron_id=ids[1])
    assert shown.subject == "Hi Pat1" and "New events at Main Library." in shown.text
    assert drafts.send_test(db, actor=staff["manager"], campaign_id=cid, patron_id=ids[1]) == "manager@library.test"
    with db.read() as s:
        audited = s.scalars(select(AuditLog.action).where(AuditLog.action.like("campaign.%"))).all()
    assert audited.count("campaign.preview") == 2 and "campaign.test_send" in audited  # the test send previews too
    assert [str(m["To"]) for m in smtp.messages] == ["manager@library.test"]
    assert str(smtp.messages[0]["Subject"]) == "[Test] Hi Pat1"
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0  # a test send is not a campaign message
    with db.write() as s:
        s.get(StaffUser, staff["admin"].id).email = None
    with pytest.raises(ValueError, match="no email address"):
        drafts.send_test(db, actor=staff["admin"], campaign_id=cid, patron_id=ids[1])


def test_launch_freezes_the_audience_minus_every_exclusion_and_counts_them(db, staff):
    with db.write() as s:
        ok = add_patrons(s, 40)
        add_patrons(s, 3, consented=False, start=100)
        add_patrons(s, 2, email=False, start=200)
        add_patrons(s, 2, topic="fundraising", start=300)
        bounced = add_patrons(s, 1, start=400)
        do_not_mail.suppress(s, email=s.get(Patron, bounced[0]).email.upper(), reason="hard bounce")
        withdrawn = add_patrons(s, 1, start=500)
        consent.record(s, patron_id=withdrawn[0], channel="email", topic="events", granted=False, source="test")
        add_patrons(s, 5, branch="EAST", start=600)  # not in the segment
        seg = add_segment(s, branches=["MAIN"])
        cid = draft(s, staff["manager"], seg, holdout_pct=25)
    with db.read() as s:
        planned = drafts.plan(s, actor=staff["manager"], campaign_id=cid)
    with db.write() as s:
        summary = drafts.launch(s, actor=staff["manager"], campaign_id=cid)
    assert summary["audience"] == 49 == planned["audience"]
    assert summary["excluded"] == {"no_email": 2, "no_consent": 3 + 2 + 1, "suppressed": 1, "frequency_cap": 0} == planned["excluded"]
    assert summary["holdout"] + summary["recipients"] == 40
    with db.read() as s:
        rows = s.execute(select(Message.patron_id, Message.status, Message.is_holdout).where(Message.campaign_id == cid)).all()
        campaign = s.get(Campaign, cid)
    assert {r.patron_id for r in rows} == set(ok)
    assert {(r.status, r.is_holdout) for r in rows} == {("queued", False), ("holdout", True)}
    assert sum(r.is_holdout for r in rows) == summary["holdout"]
    assert {r.patron_id for r in rows if r.is_holdout} == {p for p in ok if drafts.in_holdout(cid, p, 25)}
    assert campaign.status == "sending" and campaign.launch_summary == summary
    with pytest.raises(ValueError, match="only a draft can be launched"), db.write() as s:
        drafts.launch(s, actor=staff["manager"], campaign_id=cid)


def test_holdout_is_deterministic_and_near_its_share():
    chosen = [p for p in range(1, 20_001) if drafts.in_holdout(7, p, 10)]
    assert chosen == [p for p in range(1, 20_001) if drafts.in_holdout(7, p, 10)]
    assert 1800 < len(chosen) < 2200
    other = {p for p in range(1, 20_001) if drafts.in_holdout(8, p, 10)}
    assert len(other & set(chosen)) < 400  # another campaign holds out other people
    assert not any(drafts.in_holdout(7, p, 0) for p in range(1, 1000))


def test_the_frequency_cap_excludes_patrons_already_mailed_this_week(db, staff):
    with db.write() as s:
        ids = add_patrons(s, 6)
        seg = add_segment(s, branches=["MAIN"])
        settings.put(s, actor=staff["admin"], key="frequency_cap_per_7_days", value=2)
        first = draft(s, staff["manager"], seg, holdout_pct=0)
        second = draft(s, staff["manager"], seg, holdout_pct=0, name="Second")
        third = draft(s, staff["manager"], seg, holdout_pct=0, name="Third")
    with db.write() as s:
        drafts.launch(s, actor=staff["manager"], campaign_id=first)
    with db.write() as s:
        s.execute(Message.__table__.update().where(Message.campaign_id == first, Message.patron_id.in_(ids[:3])).values(status="sent", sent_at=utcnow() - timedelta(days=8)))
    with db.write() as s:
        assert drafts.launch(s, actor=staff["manager"], campaign_id=second)["excluded"]["frequency_cap"] == 0
    with db.write() as s:
        summary = drafts.launch(s, actor=staff["manager"], campaign_id=third)
    # ids[3:] have two messages this week (queued count too); ids[:3] had one of them 8 days ago.
    assert summary["excluded"]["frequency_cap"] == 3 and summary["recipients"] == 3
    with db.read() as s:
        assert set(s.scalars(select(Message.patron_id).where(Message.campaign_id == third))) == set(ids[:3])


def test_schedule_then_cancel_stops_what_is_not_sent(db, staff):
    with db.write() as s:
        add_patrons(s, 10)
        seg = add_segment(s, branches=["MAIN"])
        cid = draft(s, staff["manager"], seg, holdout_pct=0)
    with db.write() as s:
        summary = drafts.launch(s, actor=staff["manager"], campaign_id=cid, scheduled_at=utcnow() + timedelta(days=1))
    assert summary["scheduled_at"] is not None
    assert sending.send_pending(db) == {}  # not due
    with db.read() as s:
        assert s.get(Campaign, cid).status == "scheduled"
    with db.write() as s:
        assert drafts.cancel(s, actor=staff["manager"], campaign_id=cid) == 10
    with db.read() as s:
        assert set(s.scalars(select(Message.status).where(Message.campaign_id == cid))) == {"cancelled"}
        assert s.get(Campaign, cid).status == "cancelled"
    with pytest.raises(ValueError, match="nothing left to cancel"), db.write() as s:
        drafts.cancel(s, actor=staff["manager"], campaign_id=cid)


def test_results_compare_recipients_with_the_holdout(db, staff):
    with db.write() as s:
        add_patrons(s, 60)
        seg = add_segment(s, branches=["MAIN"])
        cid = draft(s, staff["manager"], seg, holdout_pct=30)
    with db.write() as s:
        drafts.launch(s, actor=staff["manager"], campaign_id=cid)
    assert sending.send_pending(db)["sent"] > 0
    today = utcnow().date()
    with db.write() as s:
        rows = s.execute(select(Message.patron_id, Message.is_holdout).where(Message.campaign_id == cid)).all()
        recipients = [r.patron_id for r in rows if not r.is_holdout]
        holdout = [r.patron_id for r in rows if r.is_holdout]
        converts = recipients[: len(recipients) // 2] + holdout[: len(holdout) // 4]
        for pid in converts:
            s.add(ActivityEvent(patron_id=pid, occurred_on=today + timedelta(days=3), kind="checkout"))
        s.add(ActivityEvent(patron_id=recipients[-1], occurred_on=today - timedelta(days=3), kind="checkout"))  # before: no
        s.add(ActivityEvent(patron_id=recipients[-1], occurred_on=today + timedelta(days=31), kind="checkout"))  # after the window
        consent.record(s, patron_id=recipients[0], channel="email", topic="events", granted=False, source="preference page")
    with db.read() as s:
        r = results.results(s, actor=staff["viewer"], campaign_id=cid)
    x1, n1, x0, n0 = len(recipients) // 2, len(recipients), len(holdout) // 4, len(holdout)
    assert (r["sent"], r["holdout"], r["audience"], r["unsubscribed"]) == (n1, n0, 60, 1)
    assert (r["recipients_converted"], r["recipients_n"], r["holdout_converted"], r["holdout_n"]) == (x1, n1, x0, n0)
    assert r["lift"] == pytest.approx(x1 / n1 - x0 / n0)
    assert r["lift_low"] < r["lift"] < r["lift_high"]
    assert not r["window_complete"]
    with db.read() as s:
        (row,) = results.dashboard_rows(s, actor=staff["viewer"])
    assert row["sent"] == n1 and row["unsubscribed"] == "<5"


def test_conversion_by_day_counts_each_patron_once_from_their_first_visit_and_ends_at_the_results_rates(db, staff):
    with db.write() as s:
        add_patrons(s, 40)
        seg = add_segment(s, branches=["MAIN"])
        cid = draft(s, staff["manager"], seg, holdout_pct=25)
    with db.write() as s:
        drafts.launch(s, actor=staff["manager"], campaign_id=cid)
    assert sending.send_pending(db)["sent"] > 0
    with db.write() as s:
        start = results.sent_on(s.get(Campaign, cid))
        rows = s.execute(select(Message.patron_id, Message.is_holdout, Message.status).where(Message.campaign_id == cid)).all()
        recipients = [r.patron_id for r in rows if not r.is_holdout and r.status == "sent"]
        holdout = [r.patron_id for r in rows if r.is_holdout]
        for pid in recipients[:4]:  # day 2, and again on day 5: counted once, on day 2
            s.add(ActivityEvent(patron_id=pid, occurred_on=start + timedelta(days=2), kind="checkout"))
            s.add(ActivityEvent(patron_id=pid, occurred_on=start + timedelta(days=5), kind="renewal"))
        for pid in recipients[4:7] + holdout[:2]:
            s.add(ActivityEvent(patron_id=pid, occurred_on=start + timedelta(days=5), kind="checkout"))
        s.add(ActivityEvent(patron_id=recipients[-1], occurred_on=start, kind="checkout"))  # the sending day itself: not after
    today = start + timedelta(days=40)  # the 30-day window is over
    with db.read() as s:
        by_day = results.conversion_by_day(s, actor=staff["viewer"], campaign_id=cid, today=today)
        r = results.results(s, actor=staff["viewer"], campaign_id=cid, today=today)
        early = results.conversion_by_day(s, actor=staff["viewer"], campaign_id=cid, today=start + timedelta(days=3))
    days = int(r["window_days"])
    got = {(row["group"], row["day"]): row["active"] for row in by_day}
    assert len(by_day) == 2 * days
    assert [got["Recipients", d] for d in (1, 2, 4, 5, days)] == [0, 4, 4, 7, 7]
    assert [got["Holdout", d] for d in (1, 4, 5, days)] == [0, 0, 2, 2]
    last = {row["group"]: row for row in by_day if row["day"] == days}
    assert last["Recipients"]["patrons"] == r["recipients_n"] and last["Recipients"]["conversion %"] == round(100 * r["recipients_rate"], 2)
    assert last["Holdout"]["conversion %"] == round(100 * r["holdout_rate"], 2)
    assert max(row["day"] for row in early) == 3  # days still to come are not drawn as flat lines


def test_newcombe_interval_matches_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80, method 10.
    d, lo, hi = results.newcombe(56, 70, 48, 80)
    assert (round(d, 4), round(lo, 4), round(hi, 4)) == (0.2, 0.0524, 0.3339)


patron_spec = st.tuples(st.booleans(), st.sampled_from(["granted", "withdrawn", "none", "other_topic"]), st.booleans())


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(patron_spec, min_size=1, max_size=12), holdout=st.sampled_from([0, 10, 50]))
def test_no_launched_message_ever_targets_a_patron_without_consent(db, staff, people, holdout):
    with db.write() as s:
        branch = f"B{s.scalar(select(func.count()).select_from(Campaign))}"
        ids = []
        for i, (has_email, state, suppressed) in enumerate(people):
            (pid,) = add_patrons(s, 1, branch=branch, email=has_email, consented=False, start=i)
            if state in ("granted", "withdrawn"):
                consent.record(s, patron_id=pid, channel="email", topic="events", granted=True, source="test")
            if state == "withdrawn":
                consent.record(s, patron_id=pid, channel="email", topic="events", granted=False, source="test")
            if state == "other_topic":
                consent.record(s, patron_id=pid, channel="email", topic="newsletter", granted=True, source="test")
            if suppressed and has_email:
                do_not_mail.suppress(s, email=s.get(Patron, pid).email, reason="hard bounce")
            ids.append(pid)
        seg = add_segment(s, branches=[branch], name=f"Segment {branch}")
        cid = draft(s, staff["manager"], seg, holdout_pct=holdout)
    with db.write() as s:
        drafts.launch(s, actor=staff["manager"], campaign_id=cid)
    with db.read() as s:
        targeted = set(s.scalars(select(Message.patron_id).where(Message.campaign_id == cid)))
    allowed = {pid for pid, (has_email, state, suppressed) in zip(ids, people) if has_email and state == "granted" and not suppressed}
    assert targeted == allowed
