"""Journeys: 120 simulated days with an injected clock against a hand-computed schedule; versions; holdout;
consent; the frequency cap shared with campaigns; refusals that keep a journey inactive."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from sqlalchemy import delete, func, insert, select, update

from crmcore.admin import settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.campaigns import sending
from crmcore.campaigns.drafts import in_holdout
from crmcore.journeys import definitions, editing, evaluation, results
from crmcore.models import Campaign, CurrentConsent, Journey, JourneyEnrolment, JourneyVersion, Message, Patron, Segment
from tests.campaign_fixtures import _isolated_mail_config  # noqa: F401
from tests.journey_records import EXPECTED, apply_events, build_library, day, moment, start_templates


def sent_schedule(db, journeys: dict[str, int], ids: dict[str, int]) -> dict[str, list[tuple[str, int]]]:
    by_journey = {v: k for k, v in journeys.items()}
    names = {v: k for k, v in ids.items()}
    got = defaultdict(list)
    with db.read() as s:
        rows = s.execute(
            select(Message.patron_id, JourneyVersion.journey_id, Message.created_at, Message.status)
            .join(Campaign, Campaign.id == Message.campaign_id).join(JourneyVersion, JourneyVersion.id == Campaign.journey_version_id)
            .where(Message.status == "sent").order_by(Message.created_at, JourneyVersion.journey_id)
        ).all()
    for pid, jid, created, _ in rows:
        got[names[pid]].append((by_journey[jid], (created.date() - day(0)).days))
    return {name: sorted(got.get(name, [])) for name in ids}


def test_120_days_of_the_five_templates_send_the_hand_computed_schedule(db, staff):
    ids = build_library(db)
    journeys = start_templates(db)
    for n in range(120):
        apply_events(db, ids, n)
        evaluation.evaluate(db, now=moment(n))
        sending.send_pending(db)
    expected = {name: sorted((j, d) for j, d in sched if not in_holdout(journeys[j], ids[name], 10.0)) for name, sched in EXPECTED.items()}
    assert sent_schedule(db, journeys, ids) == expected
    with db.read() as s:
        # Nobody entered a journey twice in a round, no step twice, and the holdout got nothing sent.
        assert s.scalar(select(func.count()).select_from(Message).where(Message.is_holdout.is_(True), Message.status != "holdout")) == 0
        reasons = dict(s.execute(select(JourneyEnrolment.patron_id, JourneyEnrolment.exit_reason).where(JourneyEnrolment.state == "exited")).all())
    assert reasons == {ids["D"]: "became_active", ids["F"]: "renewed", ids["J"]: "no_consent"}
    # Running a day again changes nothing: enrolment and steps happen once.
    with db.read() as s:
        before = s.scalar(select(func.count()).select_from(Message)), s.scalar(select(func.count()).select_from(JourneyEnrolment))
    evaluation.evaluate(db, now=moment(119))
    with db.read() as s:
        assert (s.scalar(select(func.count()).select_from(Message)), s.scalar(select(func.count()).select_from(JourneyEnrolment))) == before
        r = results.journey_results(s, actor=staff["manager"], journey_id=journeys["welcome"])
    assert {row["step"] for row in r["steps"]} >= {"Step 1 (Send a message)", "Step 5 (Branch on a condition)"}


def add_many(db, n: int, *, topic: str = "services", registered: int = 0) -> list[int]:
    with db.write() as s:
        s.execute(insert(Patron), [{"ils_id": f"M{i}", "first_name": f"M{i}", "email": f"m{i}@example.test", "registered_on": day(registered)} for i in range(n)])
        pids = list(s.scalars(select(Patron.id).where(Patron.ils_id.like("M%"))))
        s.execute(insert(CurrentConsent), [{"patron_id": p, "channel": "email", "topic": topic, "granted": True, "updated_at": moment(-30)} for p in pids])
        settings.put(s, actor=CLI_ACTOR, key="frequency_cap_per_7_days", value=50)
    return pids


def welcome(db, *, holdout_pct: float = 10.0) -> int:
    with db.write() as s:
        jid = editing.create(s, actor=CLI_ACTOR, name="Welcome", template="welcome", holdout_pct=holdout_pct).id
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    return jid


def test_the_holdout_enters_but_is_sent_nothing(db):
    pids = add_many(db, 200)
    jid = welcome(db, holdout_pct=30.0)
    for n in range(0, 40):
        evaluation.evaluate(db, now=moment(n))
        sending.send_pending(db)
    with db.read() as s:
        held = set(s.scalars(select(JourneyEnrolment.patron_id).where(JourneyEnrolment.is_holdout.is_(True))))
        sent_to = set(s.scalars(select(Message.patron_id).where(Message.status == "sent")))
        assert s.scalar(select(func.count()).select_from(JourneyEnrolment)) == 200
    assert held == {p for p in pids if in_holdout(jid, p, 30.0)} and 30 < len(held) < 90
    assert held.isdisjoint(sent_to) and sent_to == set(pids) - held


def test_editing_an_active_journey_makes_a_version_and_patrons_finish_on_theirs(db):
    add_many(db, 20)
    jid = welcome(db, holdout_pct=0)
    evaluation.evaluate(db, now=moment(0))
    changed = definitions.template("welcome")
    changed["steps"][2]["subject"] = "Version two"
    with db.write() as s:
        version = editing.edit(s, actor=CLI_ACTOR, journey_id=jid, definition=changed)
    assert version.number == 2
    with db.write() as s:
        s.execute(insert(Patron).values(ils_id="LATE", first_name="Late", email="late@example.test", registered_on=day(7)))
        late = s.scalar(select(Patron.id).where(Patron.ils_id == "LATE"))
        s.execute(insert(CurrentConsent).values(patron_id=late, channel="email", topic="services", granted=True, updated_at=moment(-1)))
    for n in range(1, 15):
        evaluation.evaluate(db, now=moment(n))
    with db.read() as s:
        subjects = dict(s.execute(select(Message.patron_id, Campaign.subject_template).join(Campaign).where(Campaign.journey_step == 2)).all())
    assert subjects[late] == "Version two" and sum(1 for v in subjects.values() if v == "What your card opens") == 20


def test_consent_withdrawn_mid_journey_stops_the_next_steps(db):
    from crmcore.library import consent

    pids = add_many(db, 10)
    welcome(db, holdout_pct=0)
    evaluation.evaluate(db, now=moment(0))
    sending.send_pending(db)
    with db.write() as s:
        consent.record(s, patron_id=pids[0], channel="email", topic="services", granted=False, source="one-click", by=consent.PATRON, at=moment(1))
    for n in range(1, 40):
        evaluation.evaluate(db, now=moment(n))
        sending.send_pending(db)
    with db.read() as s:
        assert s.scalar(select(func.count()).where(Message.patron_id == pids[0], Message.status == "sent")) == 1
        assert s.scalar(select(func.count()).where(Message.patron_id == pids[1], Message.status == "sent")) == 3
        assert s.scalar(select(JourneyEnrolment.exit_reason).where(JourneyEnrolment.patron_id == pids[0])) == "no_consent"


def test_a_send_step_lets_go_of_patrons_it_cannot_mail_and_mails_the_rest(db):
    from crmcore.campaigns import do_not_mail

    pids = add_many(db, 6)
    with db.write() as s:
        s.execute(update(Patron).where(Patron.id == pids[0]).values(email=None))
        s.execute(update(Patron).where(Patron.id == pids[1]).values(email=""))
        address = s.scalar(select(Patron.email).where(Patron.id == pids[2]))
        do_not_mail.suppress(s, email=f"  {address.upper()} ", reason="hard_bounce")  # kept as the hash of the trimmed, lower-cased address
        s.execute(delete(CurrentConsent).where(CurrentConsent.patron_id == pids[3]))
    welcome(db, holdout_pct=0)
    evaluation.evaluate(db, now=moment(0))
    with db.read() as s:
        left = dict(s.execute(select(JourneyEnrolment.patron_id, JourneyEnrolment.exit_reason).where(JourneyEnrolment.state == "exited")).all())
        queued = set(s.scalars(select(Message.patron_id).where(Message.status == "queued")))
    assert left == {pids[0]: "no_consent", pids[1]: "no_consent", pids[2]: "no_consent"}  # pids[3] never entered: no consent
    assert queued == {pids[4], pids[5]}


def test_the_weekly_cap_is_shared_with_campaigns(db):
    pids = add_many(db, 5)
    with db.write() as s:
        settings.put(s, actor=CLI_ACTOR, key="frequency_cap_per_7_days", value=1)
        other = Campaign(name="Earlier campaign", topic="services", subject_template="Hi", body_template="Hello", status="sent", launched_at=moment(0))
        s.add(other)
        s.flush()
        s.execute(insert(Message).values(campaign_id=other.id, patron_id=pids[0], status="sent", sent_at=moment(0), created_at=moment(0)))
    welcome(db, holdout_pct=0)
    evaluation.evaluate(db, now=moment(0))
    with db.read() as s:
        waiting = s.scalar(select(JourneyEnrolment.due_on).where(JourneyEnrolment.patron_id == pids[0]))
        assert waiting == day(1)
        assert s.scalar(select(func.count()).where(Message.campaign_id != other.id)) == 4


def test_refused_journeys_stay_inactive(db):
    bad_template = definitions.template("welcome")
    bad_template["steps"][0]["body"] = "Hello {{ first_name "
    unreachable = definitions.template("first_use")
    unreachable["steps"].append(definitions.template("first_use")["steps"][0])
    with db.write() as s, pytest.raises(ValueError, match="Step 1"):
        editing.create(s, actor=CLI_ACTOR, name="Broken", definition=bad_template)
    with db.write() as s, pytest.raises(ValueError, match="Step 3 .*no patron can reach"):
        editing.create(s, actor=CLI_ACTOR, name="Unreachable", definition=unreachable)
    with db.write() as s:
        seg = Segment(name="Lapsed", rules={"all": [{"field": "days_since_activity", "op": ">=", "value": 180}]})
        s.add(seg)
        s.flush()
        on_segment = definitions.template("we_miss_you")
        on_segment["trigger"] = {"kind": "segment", "segment_id": seg.id}
        jid = editing.create(s, actor=CLI_ACTOR, name="On a segment", definition=on_segment).id
        s.delete(seg)
    with db.write() as s, pytest.raises(ValueError, match="segment .* deleted"):
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    with db.read() as s:
        assert s.get(Journey, jid).status == "draft"
        assert s.scalar(select(func.count()).select_from(Journey)) == 1


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(grants=st.lists(st.booleans(), min_size=12, max_size=12), withdraw_day=st.lists(st.integers(0, 40), min_size=12, max_size=12))
def test_no_journey_message_goes_to_a_patron_without_consent(sqlite_db, grants, withdraw_day):
    from crmcore.library import consent
    from sqlalchemy import delete

    db = sqlite_db
    with db.write() as s:
        for table in (Message, Campaign, JourneyEnrolment, JourneyVersion, Journey, CurrentConsent):
            s.execute(delete(table))
        from crmcore.models import ConsentRecord
        s.execute(delete(ConsentRecord))
        s.execute(delete(Patron))
        settings.put(s, actor=CLI_ACTOR, key="frequency_cap_per_7_days", value=50)
        for i, granted in enumerate(grants):
            p = Patron(ils_id=f"H{i}", first_name="H", email=f"h{i}@example.test", registered_on=day(0))
            s.add(p)
            s.flush()
            if granted:
                consent.record(s, patron_id=p.id, channel="email", topic="services", granted=True, source="form", by=consent.PATRON, at=moment(-1))
    welcome(db, holdout_pct=0)
    with db.read() as s:
        pids = list(s.scalars(select(Patron.id).order_by(Patron.id)))
    for n in range(0, 41):
        with db.write() as s:
            for pid, w in zip(pids, withdraw_day):
                if w == n:
                    consent.record(s, patron_id=pid, channel="email", topic="services", granted=False, source="preferences", by=consent.PATRON, at=moment(n))
        evaluation.evaluate(db, now=moment(n))
        sending.send_pending(db)
    with db.read() as s:
        sent = s.execute(select(Message.patron_id, Message.created_at).where(Message.status == "sent")).all()
    for pid, created in sent:
        i = pids.index(pid)
        assert grants[i] and (created.date() - day(0)).days < withdraw_day[i]


def test_access_export_lists_journeys_and_erasure_ends_them(db, staff):
    from crmcore.privacy import rights

    pids = add_many(db, 3)
    welcome(db, holdout_pct=0)
    evaluation.evaluate(db, now=moment(0))
    with db.write() as s:
        data = rights.access_export(s, actor=staff["admin"], patron_id=pids[0])
        assert [(r["journey"], r["state"]) for r in data["journeys"]] == [("Welcome", "active")]
        rights.erase(s, actor=staff["admin"], patron_id=pids[0])
    evaluation.evaluate(db, now=moment(7))
    with db.read() as s:
        assert s.scalar(select(JourneyEnrolment.exit_reason).where(JourneyEnrolment.patron_id == pids[0])) == "erased"
        assert s.scalar(select(func.count()).where(Message.patron_id == pids[0])) == 1  # only day 0's, nothing after


def test_event_triggers_run_after_an_import_and_first_activity_enters(db):
    from crmcore.models import ImportRun

    with db.write() as s:
        s.execute(insert(Patron).values(ils_id="FA", first_name="First", email="fa@example.test", first_activity_on=day(3), last_activity_on=day(3)))
        pid = s.scalar(select(Patron.id).where(Patron.ils_id == "FA"))
        s.execute(insert(CurrentConsent).values(patron_id=pid, channel="email", topic="events", granted=True, updated_at=moment(-1)))
        first_use = definitions.template("after_event")
        first_use["trigger"] = {"kind": "first_activity", "days": 0}
        jid = editing.create(s, actor=CLI_ACTOR, name="First activity", definition=first_use, holdout_pct=0).id
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    assert evaluation.after_imports(db, now=moment(3)) == {}  # no import yet: nothing to do
    with db.write() as s:
        s.add(ImportRun(kind="activity", file_name="day.csv", file_hash="x", status="done", finished_at=moment(3)))
    assert evaluation.after_imports(db, now=moment(3))[jid]["entered"] == 1
    assert evaluation.after_imports(db, now=moment(3)) == {}  # the same import is not looked at twice
    with db.read() as s:
        assert s.scalar(select(func.count()).where(Message.patron_id == pid, Message.status == "queued")) == 1


def test_a_journey_step_sends_its_surveys_link_and_refuses_one_without_an_open_survey(db, staff, tmp_path):
    """A send step naming a survey gives each patron their own {{ survey_link }}; a step using the link without
    a survey, or with one not open, keeps the journey inactive with the step named."""
    from tests.survey_records import add_survey

    pids = add_many(db, 3)
    asks = definitions.template("welcome")
    asks["steps"][0]["body"] = "Hello {{ first_name }}, tell us how we did: {{ survey_link }}"
    with db.write() as s, pytest.raises(ValueError, match=r"Step 1 \(Send a message\): Survey: the message uses"):
        editing.create(s, actor=CLI_ACTOR, name="Welcome and ask", definition=asks)
    with db.write() as s:
        asks["steps"][0]["survey_id"] = add_survey(s, staff["admin"], name="Draft survey", status="draft")
        jid = editing.create(s, actor=CLI_ACTOR, name="Welcome and ask", definition=asks).id
    with db.write() as s, pytest.raises(ValueError, match=r"Step 1 \(Send a message\): Survey: 'Draft survey' is draft"):
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    with db.write() as s:
        asks["steps"][0]["survey_id"] = add_survey(s, staff["admin"], name="Welcome survey")
        editing.edit(s, actor=CLI_ACTOR, journey_id=jid, definition=asks)
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    evaluation.evaluate(db, now=moment(0))
    sending.send_pending(db)
    with db.read() as s:
        step = s.scalars(select(Campaign).where(Campaign.journey_version_id.is_not(None), Campaign.journey_step == 0)).one()
        sent = s.scalar(select(func.count()).select_from(Message).where(Message.campaign_id == step.id, Message.status == "sent"))
    assert step.survey_id == asks["steps"][0]["survey_id"] and sent == sum(not in_holdout(jid, p, 10.0) for p in pids)
    mails = [p.read_text() for p in (tmp_path / "outbox").glob("*.eml")]
    assert len(mails) == sent and all("/survey/" in mail for mail in mails)


def test_pausing_holds_what_is_queued_and_resuming_releases_it_still_at_most_once(db, staff):
    from datetime import timedelta

    from crmcore.library import consent
    from crmcore.models import utcnow

    pids = add_many(db, 10)
    jid = welcome(db, holdout_pct=0)
    evaluation.evaluate(db, now=moment(0))  # ten welcomes queued
    with db.write() as s:  # one is going out right now (a worker marked it "sending")
        s.execute(Message.__table__.update().where(Message.patron_id == pids[0]).values(status="sending", lease_owner="busy", lease_expires_at=utcnow() + timedelta(hours=1)))
    claimed = sending.claim(db, owner="slow", limit=3)  # a worker has claimed three and not yet marked them
    with db.write() as s:
        editing.pause(s, actor=staff["manager"], journey_id=jid)
        consent.record(s, patron_id=pids[1], channel="email", topic="services", granted=False, source="preferences", by=consent.PATRON, at=moment(1))

    def by_status() -> dict[str, int]:
        with db.read() as s:
            return dict(s.execute(select(Message.status, func.count()).group_by(Message.status)).all())

    assert by_status() == {"sending": 1, "held": 9}
    assert sum(sending.send_batch(db, ids=claimed, owner="slow", throttle=sending.Throttle(per_minute=6000)).values()) == 0
    assert sending.send_pending(db) == {} and evaluation.evaluate(db, now=moment(7)) == {}  # nothing goes out, nobody moves on
    with db.read() as s:
        assert editing.held_messages(s, actor=staff["manager"], journey_id=jid) == 9
        assert results.journey_results(s, actor=staff["manager"], journey_id=jid)["steps"][0]["to send"] == 10  # held ones and the one going out
        assert set(s.scalars(select(JourneyEnrolment.step))) == {2}
    assert by_status() == {"sending": 1, "held": 9}

    with db.write() as s:
        editing.resume(s, actor=staff["manager"], journey_id=jid)
    assert sending.send_pending(db) == {"sent": 8, "skipped": 1}  # consent is checked at send: the one who withdrew gets nothing
    assert by_status() == {"sending": 1, "sent": 8, "skipped": 1}  # the one mid-send is left to its worker, never sent again
    evaluation.evaluate(db, now=moment(7))
    with db.read() as s:
        second = set(s.scalars(select(Message.patron_id).join(Campaign).where(Campaign.journey_step == 2)))
    assert second == set(pids) - {pids[1]}


def test_held_messages_released_on_resume_keep_to_the_weekly_cap_shared_with_campaigns(db, staff):
    """Patrons who had their cap's worth of campaign messages while the journey was paused are sent no more on
    resume: their held message waits (held) until the 7 days allow it, and the daily evaluation releases it then."""
    from datetime import timedelta

    from crmcore.models import utcnow

    pids = add_many(db, 4)
    jid = welcome(db, holdout_pct=0)
    evaluation.evaluate(db, now=moment(0))  # four welcomes queued
    with db.write() as s:
        settings.put(s, actor=CLI_ACTOR, key="frequency_cap_per_7_days", value=2)
        editing.pause(s, actor=staff["manager"], journey_id=jid)
    now = utcnow()
    with db.write() as s:  # while paused: two campaign messages to the first patron (the cap), one to the second
        others = [Campaign(name=f"Meanwhile {h}", topic="services", subject_template="Hi", body_template="Hello", status="sent", launched_at=now) for h in (1, 2)]
        s.add_all(others)
        s.flush()
        s.execute(insert(Message), [{"campaign_id": others[h - 1].id, "patron_id": p, "status": "sent", "sent_at": now - timedelta(hours=h), "created_at": now - timedelta(hours=h)}
                                    for p, h in ((pids[0], 2), (pids[0], 1), (pids[1], 1))])
    with db.write() as s:
        editing.resume(s, actor=staff["manager"], journey_id=jid)
    with db.read() as s:
        step = s.scalars(select(Campaign.id).where(Campaign.journey_step == 0)).one()
        welcomes = lambda: dict(s.execute(select(Message.patron_id, Message.status).where(Message.campaign_id == step)).all())  # noqa: E731
        assert welcomes() == {pids[0]: "held", pids[1]: "queued", pids[2]: "queued", pids[3]: "queued"}
        assert editing.held_messages(s, actor=staff["manager"], journey_id=jid) == 1
    assert sending.send_pending(db) == {"sent": 3}
    assert evaluation.evaluate(db, now=now + timedelta(days=1))[jid].get("released") is None  # still at the cap: still held
    with db.read() as s:
        assert welcomes()[pids[0]] == "held"
    assert evaluation.evaluate(db, now=now + timedelta(days=7, hours=1))[jid]["released"] == 1  # the two have left the 7 days
    with db.read() as s:
        assert welcomes()[pids[0]] == "queued" and editing.held_messages(s, actor=staff["manager"], journey_id=jid) == 0


def test_a_journey_paused_by_the_worker_holds_its_messages_too(db):
    pids = add_many(db, 3)
    with db.write() as s:
        seg = Segment(name="Everyone", rules={"all": []})
        s.add(seg)
        s.flush()
        on_segment = definitions.template("we_miss_you")
        on_segment["trigger"] = {"kind": "segment", "segment_id": seg.id}
        on_segment["steps"][0]["topic"] = "services"
        jid = editing.create(s, actor=CLI_ACTOR, name="On a segment", definition=on_segment, holdout_pct=0).id
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    evaluation.evaluate(db, now=moment(0))
    with db.write() as s:
        s.delete(s.get(Segment, seg.id))
    assert "deleted" in evaluation.evaluate(db, now=moment(1))[jid]["paused"]
    with db.read() as s:
        assert s.get(Journey, jid).status == "paused"
        assert set(s.scalars(select(Message.status))) == {"held"} and s.scalar(select(func.count()).select_from(Message)) == len(pids)


BRANCH_RULE = {"any": [{"field": "branch", "op": "in", "value": ["EAST"]},
                       {"all": [{"field": "patron_type", "op": "in", "value": ["Student"]}, {"field": "days_since_activity", "op": "<=", "value": 30}]}]}


def branch_journey(rule: dict) -> dict:
    def mail(subject: str) -> dict:
        return {"kind": "send", "channel": "email", "topic": "services", "subject": subject, "body": "Hello {{ first_name }}"}

    return {"trigger": {"kind": "registered", "days": 0},
            "steps": [mail("Welcome"), {"kind": "wait", "days": 10}, {"kind": "branch", "rule": rule, "otherwise": 5},
                      mail("Thanks for using your card"), {"kind": "end"}, mail("Come and see us"), {"kind": "end"}],
            "exits": [], "reentry_days": None, "goal": "activity", "goal_days": 30}


def test_a_branch_on_an_embedded_rule_sends_the_hand_computed_schedule(db):
    from crmcore.models import Branch

    with db.write() as s:
        east, west = Branch(code="EAST", name="East"), Branch(code="WEST", name="West")
        s.add_all([east, west])
        s.flush()
        people = {  # name: (branch, patron type, last activity day); who matches the rule on day 10
            "A": (east, "Adult", None),       # East: matches
            "B": (west, "Student", None),     # a student active on day 5 (5 days before the branch): matches
            "C": (west, "Student", -40),      # a student last active 50 days before: does not
            "D": (west, "Adult", 5),          # active, but not a student: does not
            "E": (west, "Student", None),     # a student never active: does not
        }
        ids = {}
        for name, (branch, kind, active) in people.items():
            p = Patron(ils_id=f"BR-{name}", first_name=name, email=f"{name}@example.test", branch_id=branch.id, patron_type=kind, registered_on=day(0),
                       last_activity_on=None if active is None else day(active))
            s.add(p)
            s.flush()
            ids[name] = p.id
            s.execute(insert(CurrentConsent).values(patron_id=p.id, channel="email", topic="services", granted=True, updated_at=moment(-30)))
        jid = editing.create(s, actor=CLI_ACTOR, name="Branching", definition=branch_journey(BRANCH_RULE), holdout_pct=0).id
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    for n in range(0, 20):
        if n == 5:
            with db.write() as s:
                s.execute(Patron.__table__.update().where(Patron.id == ids["B"]).values(last_activity_on=day(5)))
        evaluation.evaluate(db, now=moment(n))
        sending.send_pending(db)
    with db.read() as s:
        rows = s.execute(select(Message.patron_id, Campaign.subject_template, Message.created_at).join(Campaign).where(Message.status == "sent")).all()
    got = defaultdict(list)
    for pid, subject, created in rows:
        got[pid].append(((created.date() - day(0)).days, subject))
    thanks, come = [(0, "Welcome"), (10, "Thanks for using your card")], [(0, "Welcome"), (10, "Come and see us")]
    assert {name: sorted(got[pid]) for name, pid in ids.items()} == {"A": thanks, "B": thanks, "C": come, "D": come, "E": come}


def test_an_invalid_branch_rule_is_refused_with_its_step_and_the_journey_stays_inactive(db):
    from sqlalchemy import update

    half_made = branch_journey({"any": [{"field": "branch", "op": "in", "value": []}]})
    with db.write() as s, pytest.raises(ValueError, match=r"Step 3 \(Branch on a condition\), condition: Condition 1, Home branch: choose at least one value"):
        editing.create(s, actor=CLI_ACTOR, name="Half made", definition=half_made)
    with db.write() as s:
        jid = editing.create(s, actor=CLI_ACTOR, name="Branching", definition=branch_journey(BRANCH_RULE)).id
    unknown = branch_journey({"all": [{"field": "shoe_size", "op": ">", "value": 40}]})
    with db.write() as s, pytest.raises(ValueError, match=r"Step 3 \(Branch on a condition\), condition: Condition 1, field: unknown field 'shoe_size'"):
        editing.edit(s, actor=CLI_ACTOR, journey_id=jid, definition=unknown)
    with db.write() as s:  # a definition that got into the database some other way is refused at activation
        s.execute(update(JourneyVersion).where(JourneyVersion.journey_id == jid).values(definition=half_made))
    with db.write() as s, pytest.raises(ValueError, match=r"Step 3 \(Branch on a condition\), condition:"):
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    with db.read() as s:
        assert s.get(Journey, jid).status == "draft" and s.scalar(select(func.count()).select_from(JourneyVersion)) == 1


def test_results_count_conversion_of_recipients_against_the_holdout_with_the_lift_and_small_cells_suppressed(db, staff):
    from crmcore.campaigns.results import newcombe
    from crmcore.models import ActivityEvent

    pids = add_many(db, 300)
    jid = welcome(db, holdout_pct=30.0)
    evaluation.evaluate(db, now=moment(0))
    assert sending.send_pending(db)["sent"] == sum(not in_holdout(jid, p, 30.0) for p in pids)
    active = {p for p in pids if p % 3 == 0 or (p % 5 == 0 and not in_holdout(jid, p, 30.0))}  # recipients come back more often
    with db.write() as s:
        s.execute(insert(ActivityEvent), [{"patron_id": p, "occurred_on": day(5), "kind": "checkout"} for p in active])
        s.execute(insert(ActivityEvent), [{"patron_id": p, "occurred_on": day(45), "kind": "checkout"} for p in pids if p % 7 == 0])  # after the 30 days: no goal
    recipients = [p for p in pids if not in_holdout(jid, p, 30.0)]
    holdout = [p for p in pids if in_holdout(jid, p, 30.0)]
    x1, x0 = sum(p in active for p in recipients), sum(p in active for p in holdout)
    with db.read() as s:
        r = results.journey_results(s, actor=staff["manager"], journey_id=jid)
    assert (r["entered"], r["recipients"], r["holdout"]) == (300, len(recipients), len(holdout))
    assert r["recipients_rate"] == x1 / len(recipients) and r["holdout_rate"] == x0 / len(holdout)
    assert (r["lift"], r["lift_low"], r["lift_high"]) == pytest.approx(newcombe(x1, len(recipients), x0, len(holdout)))
    assert r["lift_low"] < r["lift"] < r["lift_high"] and r["lift"] > 0
    first = r["steps"][0]
    assert (first["sent"], first["held out"], r["steps"][2]["waiting here"]) == (len(recipients), len(holdout), 300)  # all wait at the day-7 step
    with db.write() as s:
        settings.put(s, actor=CLI_ACTOR, key="small_cell_k", value=len(holdout) + 1)
    with db.read() as s:
        small = results.journey_results(s, actor=staff["manager"], journey_id=jid)
    assert small["holdout"] == f"<{len(holdout) + 1}" and small["lift"] is None and small["recipients_rate"] is None
