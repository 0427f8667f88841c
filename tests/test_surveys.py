"""Surveys in crmcore: questions checked, answers recorded once per patron (a survey_response activity),
NPS and its interval against a hand computation and a property, suppression of small groups, follow-up
tasks in My follow-ups, free text as personal data (audited, exported, erased, purged), the campaign's link."""

from __future__ import annotations

import math
from email import policy
from email.parser import BytesParser
from datetime import date

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crmcore.admin.permissions import PermissionDenied
from crmcore.campaigns import drafts, sending
from crmcore.models import ActivityEvent, AuditLog, Campaign, Patron, Survey, SurveyResponse, SurveyText, Task
from crmcore.outreach import tasks
from crmcore.privacy import retention, rights
from crmcore.surveys import definitions, questions, responses, results, tokens
from tests.campaign_fixtures import _isolated_mail_config, add_patrons, add_segment  # noqa: F401
from tests.survey_records import QUESTIONS, add_survey, answer


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], "at least one question"),
        ([{"type": "stars", "text": "Hi?"}], "no question type 'stars'"),
        ([{"type": "single", "text": "Pick", "choices": ["only one"]}], "Question 1: give at least two choices"),
        ([{"type": "nps", "text": ""}], "Question 1: write the question"),
        ([{"type": "nps", "text": "a"}, {"type": "nps", "text": "b"}], "at most one question"),
    ],
)
def test_a_bad_survey_is_refused_with_a_clear_message_and_nothing_saved(db, staff, bad, message):
    with db.write() as s, pytest.raises(ValueError, match=message):
        definitions.save(s, actor=staff["manager"], name="Broken", questions=bad, follow_up_role="outreach")
    with db.read() as s:
        assert count(s, Survey) == 0


def test_a_survey_needs_someone_to_follow_up(db, staff):
    with db.write() as s, pytest.raises(ValueError, match="Follow-ups go to"):
        definitions.save(s, actor=staff["manager"], name="Nobody", questions=QUESTIONS)
    with db.write() as s, pytest.raises(ValueError, match="viewer role cannot see follow-ups"):
        definitions.save(s, actor=staff["manager"], name="Viewer", questions=QUESTIONS, follow_up_role="viewer")


def test_one_response_per_patron_changed_in_place_with_one_activity(db, staff):
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        sid = add_survey(s, staff["manager"])
    with db.write() as s:
        answer(s, sid, pid, 9, text="Lovely staff", multiple=("Books", "Events"))
    with db.write() as s:
        answer(s, sid, pid, 10, single="East")
    with db.read() as s:
        (response,) = s.scalars(select(SurveyResponse)).all()
        assert (response.nps, response.answers["q2"], "q3" in response.answers) == (10, "East", False)
        assert count(s, SurveyText) == 0  # the second answer left the text empty: the earlier one is gone
        (event,) = s.scalars(select(ActivityEvent).where(ActivityEvent.kind == "survey_response")).all()
        assert event.patron_id == pid and response.activity_event_id == event.id


def test_closed_draft_and_tampered_links_and_posts_without_their_token_change_nothing(db, staff):
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        sid = add_survey(s, staff["manager"])
        other = add_survey(s, staff["manager"], name="Other")
        draft = add_survey(s, staff["manager"], name="Draft", status="draft")
    token = tokens.maker(sid)(pid)
    with db.write() as s, pytest.raises(ValueError, match="did not come from the survey's own page"):
        responses.answer(s, token=token, form_token=None, fields={"q1": ["5"]})
    with db.write() as s, pytest.raises(ValueError, match="another survey"):
        responses.answer(s, token=token, form_token=tokens.form_token(tokens.read(tokens.maker(other)(pid))), fields={"q1": ["5"]})
    with db.write() as s, pytest.raises(ValueError, match="not valid"):
        responses.answer(s, token=token[:-3] + "abc", form_token=tokens.form_token(tokens.read(token)), fields={"q1": ["5"]})
    with db.write() as s, pytest.raises(ValueError, match="not open yet"):
        answer(s, draft, pid, 5)
    with db.write() as s, pytest.raises(ValueError, match="Question 1 .*from 0 to 10"):
        answer(s, sid, pid, 11)
    with db.write() as s:
        definitions.set_status(s, actor=staff["manager"], survey_id=sid, status="closed")
    with db.write() as s, pytest.raises(ValueError, match="closed"):
        answer(s, sid, pid, 5)
    with db.read() as s:
        assert count(s, SurveyResponse) == 0 and count(s, ActivityEvent) == 0


def test_anonymous_answers_link_no_patron_and_each_counts(db, staff):
    with db.write() as s:
        sid = add_survey(s, staff["manager"])
        answer(s, sid, None, 10)
        answer(s, sid, None, 2)
    with db.read() as s:
        rows = s.scalars(select(SurveyResponse)).all()
        assert [r.patron_id for r in rows] == [None, None] and count(s, Task) == 0 and count(s, ActivityEvent) == 0


def hand_interval(p: int, a: int, d: int) -> tuple[float, float, float]:
    n = p + a + d
    nps = 100 * (p - d) / n
    var = (p * (1 - (p - d) / n) ** 2 + a * (0 - (p - d) / n) ** 2 + d * (-1 - (p - d) / n) ** 2) / n  # variance of +1/0/-1 scores
    half = 1.959964 * 100 * math.sqrt(var / n)
    return nps, max(-100, nps - half), min(100, nps + half)


def test_nps_and_interval_match_a_hand_computation(db, staff):
    scores = [10, 10, 9, 9, 9, 8, 7, 6, 3, 0]  # 5 promoters, 2 passives, 3 detractors: NPS 20
    with db.write() as s:
        ids = add_patrons(s, len(scores))
        sid = add_survey(s, staff["manager"])
        for pid, score in zip(ids, scores):
            answer(s, sid, pid, score)
    with db.read() as s:
        summary = results.summary(s, actor=staff["viewer"], survey_id=sid)
    nps, low, high = hand_interval(5, 2, 3)
    assert summary["nps"] == pytest.approx(20.0) == pytest.approx(nps)
    assert (summary["low"], summary["high"]) == (pytest.approx(low), pytest.approx(high))
    assert round(low, 1) == -34.0 and round(high, 1) == 74.0  # 20 ± 1.96·100·√(0.76/10) = 20 ± 54.0


@hsettings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 300), st.integers(0, 300), st.integers(0, 300))
def test_the_interval_holds_the_nps_within_bounds_and_narrows_with_more_answers(p, a, d):
    if p + a + d == 0:
        with pytest.raises(ValueError):
            results.interval(p, a, d)
        return
    low, high = results.interval(p, a, d)
    nps, hand_low, hand_high = hand_interval(p, a, d)
    assert -100 <= low <= nps <= high <= 100
    assert (low, high) == (pytest.approx(hand_low, abs=1e-9), pytest.approx(hand_high, abs=1e-9))
    low4, high4 = results.interval(4 * p, 4 * a, 4 * d)  # the same shares from four times the answers
    assert high4 - low4 <= high - low + 1e-9


def test_groups_with_few_answers_are_suppressed_and_one_more_beside_a_lone_one(db, staff):
    with db.write() as s:
        main = add_patrons(s, 8, branch="MAIN")
        east = add_patrons(s, 2, branch="EAST")
        west = add_patrons(s, 6, branch="WEST")
        sid = add_survey(s, staff["manager"])
        for pid in main + east + west:
            answer(s, sid, pid, 10)
    with db.read() as s:
        frame = results.by_group(s, actor=staff["viewer"], survey_id=sid, by="branch").set_index("group")
        spread = results.distributions(s, actor=staff["viewer"], survey_id=sid)
    assert frame.loc["East Library", "responses"] == "<5" and frame.loc["East Library", "nps"] == "<5"
    # East alone could be worked out from the total: the next smallest group (West, 6) is hidden too.
    assert frame.loc["West Library", "responses"] == "<5" and frame.loc["Main Library", "responses"] == 8
    ten = spread[(spread["question"] == QUESTIONS[0]["text"]) & (spread["answer"] == "10")]
    assert ten["answers"].tolist() == [16]


def test_results_by_month_stage_and_age_band(db, staff):
    with db.write() as s:
        ids = add_patrons(s, 5)
        sid = add_survey(s, staff["manager"])
        for pid in ids:
            answer(s, sid, pid, 9)
    with db.read() as s:
        for by in results.GROUPS:
            frame = results.by_group(s, actor=staff["viewer"], survey_id=sid, by=by)
            assert frame["responses"].tolist() == [5], by
        with pytest.raises(ValueError, match="Group by"):
            results.by_group(s, actor=staff["viewer"], survey_id=sid, by="title")


def test_a_detractor_becomes_a_task_in_my_follow_ups_and_its_completion_shows_on_the_response(db, staff):
    with db.write() as s:
        detractor, promoter, asks = add_patrons(s, 3)
        sid = add_survey(s, staff["manager"], staff_id=staff["outreach"].id)
        answer(s, sid, detractor, 3, text="Too noisy")
        answer(s, sid, promoter, 10)
        answer(s, sid, asks, 9, contact="yes")
    with db.read() as s:
        items = tasks.my_followups(s, actor=staff["outreach"])
    titles = sorted(i["title"] for i in items)
    assert titles == ["Survey follow-up: Visit survey (asked to be contacted)", "Survey follow-up: Visit survey (score 3)"]
    note = next(i["notes"] for i in items if "score 3" in i["title"])
    assert f"Patron #{detractor}" in note and "How likely are you to recommend the library?: 3" in note and "Too noisy" not in note
    with db.write() as s:  # changing the answer keeps the one task
        answer(s, sid, detractor, 4)
        tasks.complete(s, actor=staff["outreach"], kind="task", item_id=next(i["id"] for i in items if "score" in i["title"]))
    with db.read() as s:
        assert count(s, Task) == 2
        assert results.summary(s, actor=staff["viewer"], survey_id=sid)["followed_up"] == 1


def test_follow_ups_go_to_the_branch_person_else_the_least_busy_of_the_role(db, staff):
    with db.write() as s:
        (main,) = add_patrons(s, 1, branch="MAIN")
        (east,) = add_patrons(s, 1, branch="EAST")
        east_branch = s.get(Patron, east).branch_id
        survey = definitions.save(s, actor=staff["manager"], name="By branch", questions=QUESTIONS, follow_up_role="manager",
                                  follow_up_by_branch={east_branch: staff["outreach"].id})
        survey.status = "open"
        answer(s, survey.id, main, 0)
        answer(s, survey.id, east, 0)
    with db.read() as s:
        by_patron = {r.patron_id: s.get(Task, r.task_id).assignee_id for r in s.scalars(select(SurveyResponse))}
    assert by_patron == {main: staff["manager"].id, east: staff["outreach"].id}


def test_written_answers_need_personal_data_permission_and_each_view_is_audited(db, staff):
    with db.write() as s:
        a, b = add_patrons(s, 2)
        sid = add_survey(s, staff["manager"])
        answer(s, sid, a, 8, text="The 100% best library")
        answer(s, sid, b, 8, text="Needs more chairs")
    with db.write() as s, pytest.raises(PermissionDenied):
        responses.texts(s, actor=staff["outreach"], survey_id=sid)
    with db.write() as s:
        found = responses.texts(s, actor=staff["manager"], survey_id=sid, search="100%")
    assert [r["answer"] for r in found] == ["The 100% best library"]  # % is a character, not a wildcard
    with db.read() as s:
        (entry,) = s.scalars(select(AuditLog).where(AuditLog.action == "survey.texts_view")).all()
        assert entry.detail["patron_ids"] == [a]


def test_written_answers_are_in_the_access_export_and_go_with_erasure_and_retention(db, staff):
    with db.write() as s:
        a, b = add_patrons(s, 2)
        sid = add_survey(s, staff["manager"])
        answer(s, sid, a, 6, text="Call me about the noise")
        answer(s, sid, b, 9, text="Old words")
        s.execute(SurveyText.__table__.update().where(SurveyText.response_id == s.scalars(select(SurveyResponse.id).where(SurveyResponse.patron_id == b)).one())
                  .values(written_on=date(2000, 1, 1)))
    with db.write() as s:
        data = rights.access_export(s, actor=staff["admin"], patron_id=a)
    assert "Call me about the noise" in data["survey_answers"][0]["answers"] and "Call me about the noise" in rights.to_html(data).decode()
    with db.write() as s:
        rights.erase(s, actor=staff["admin"], patron_id=a)
        assert s.scalars(select(AuditLog.detail).where(AuditLog.action == "privacy.erase")).one()["survey_answers_unlinked"] == 1
    assert retention.run(db)["survey_texts_deleted"] == 1
    with db.read() as s:
        assert count(s, SurveyText) == 0
        assert s.scalar(select(func.count()).select_from(SurveyResponse).where(SurveyResponse.patron_id.is_(None))) == 1
        assert results.summary(s, actor=staff["viewer"], survey_id=sid)["nps_answers"] == 2  # the scores stay, anonymous


def test_a_campaign_naming_a_survey_sends_each_patron_their_own_link(db, staff, tmp_path):
    with db.write() as s:
        ids = add_patrons(s, 2)
        seg = add_segment(s, branches=["MAIN"])
        sid = add_survey(s, staff["manager"], status="draft")
        with pytest.raises(ValueError, match="choose the survey it opens"):
            drafts.compose(s, actor=staff["manager"], name="Ask", segment_id=seg, topic="events", subject="Tell us", body="Answer: {{ survey_link }}")
        cid = drafts.compose(s, actor=staff["manager"], name="Ask", segment_id=seg, topic="events", subject="Tell us", body="Answer: {{ survey_link }}",
                             holdout_pct=0, survey_id=sid).id
    with db.write() as s, pytest.raises(ValueError, match="open it on the Surveys page"):
        drafts.launch(s, actor=staff["manager"], campaign_id=cid)
    with db.write() as s:
        definitions.set_status(s, actor=staff["manager"], survey_id=sid, status="open")
        drafts.launch(s, actor=staff["manager"], campaign_id=cid)
    assert sending.send_pending(db)["sent"] == 2
    mails = [BytesParser(policy=policy.default).parse(f.open("rb")) for f in sorted((tmp_path / "outbox").glob("*.eml"))]
    bodies = [m.get_body(("plain",)).get_content() for m in mails]
    links = sorted({line.split("Answer: ")[1].split()[0] for body in bodies for line in body.splitlines() if "Answer: http" in line})
    assert len(links) == 2
    assert sorted(tokens.read(link.rsplit("/", 1)[1]).patron_id for link in links) == sorted(ids)
    with db.write() as s:
        answer(s, sid, ids[0], 10)
    with db.read() as s:
        summary = results.summary(s, actor=staff["viewer"], survey_id=sid)
        assert s.get(Campaign, cid).survey_id == sid
    assert (summary["sent"], summary["answered_after_message"], summary["response_rate"]) == (2, 1, 0.5)


def test_answers_are_read_as_the_questions_say(db):
    checked = questions.checked(QUESTIONS)
    answers, texts = questions.read_answers(checked, {"q1": ["7"], "q2": ["Main"], "q3": ["Events", "Books"], "q4": ["5"], "q5": [" hi "], "q6": ["no"]})
    assert answers == {"q1": 7, "q2": "Main", "q3": ["Books", "Events"], "q4": 5, "q6": False} and texts == {"q5": "hi"}
    with pytest.raises(ValueError, match="Question 1 .*please answer"):
        questions.read_answers(checked, {})
    with pytest.raises(ValueError, match="Question 2 .*choose one of the choices"):
        questions.read_answers(checked, {"q1": ["7"], "q2": ["West"]})
