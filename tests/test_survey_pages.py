"""AppTest flows of the Surveys page (build, open, results, written answers) and My follow-ups showing a detractor."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select

from crmcore.models import AuditLog, Survey
from tests.campaign_fixtures import _isolated_mail_config, add_patrons  # noqa: F401
from tests.survey_records import add_survey, answer
from tests.test_campaign_pages import by_label


def test_build_a_survey_and_open_it_from_the_page(app, db, staff):
    at = app(role="manager", page="pages/surveys.py").run()
    assert not at.exception
    by_label(at.text_input, "Name").input("After the story hour")
    by_label(at.button, "Save draft").click()
    at = at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        (survey,) = s.scalars(select(Survey)).all()
    assert [q["type"] for q in survey.questions] == ["nps", "text", "contact"] and survey.status == "draft"
    assert survey.follow_up_role == "outreach"
    by_label(at.button, "Open to answers").click()
    at = at.run()
    assert not at.exception
    with db.read() as s:
        assert s.get(Survey, survey.id).status == "open"


def test_a_survey_without_a_name_is_refused_on_the_page(app, db):
    at = app(role="manager", page="pages/surveys.py").run()
    by_label(at.button, "Save draft").click()
    at = at.run()
    assert not at.exception and any("Name: give the survey a name" in e.value for e in at.error)
    with db.read() as s:
        assert s.scalars(select(Survey)).all() == []


def test_results_show_the_nps_groups_suppressed_and_written_answers_audited(app, db, staff):
    with db.write() as s:
        ids = add_patrons(s, 6)
        (east,) = add_patrons(s, 1, branch="EAST")
        sid = add_survey(s, staff["manager"])
        for pid in ids:
            answer(s, sid, pid, 10)
        answer(s, sid, east, 2, text="Too far from the bus")
    at = app(role="manager", page="pages/surveys.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["NPS"] == f"{100 * (6 - 1) / 7:+.0f}" and metrics["Answers"] == "7"
    groups = at.dataframe[0].value
    assert isinstance(groups, pd.DataFrame)
    shown = dict(zip(groups.iloc[:, 0], groups["Answers" if "Answers" in groups else groups.columns[1]]))
    assert shown == {"East Library": "<5", "Main Library": "<5"}  # East alone is small; Main hidden beside it
    assert any(c.value.startswith("Summary:") for c in at.caption)
    by_label(at.button, "Show written answers").click()
    at = at.run()
    assert not at.exception
    assert any("Too far from the bus" in df.value.to_csv() for df in at.dataframe)
    with db.read() as s:
        assert s.scalars(select(AuditLog).where(AuditLog.action == "survey.texts_view")).first() is not None


def test_a_detractors_task_appears_in_my_follow_ups(app, db, staff):
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        sid = add_survey(s, staff["manager"], staff_id=staff["outreach"].id)
        answer(s, sid, pid, 1)
    at = app(role="outreach", page="pages/followups.py").run()
    assert not at.exception
    shown = [m.value.replace("\\", "") for m in at.markdown]  # without ui.md's escapes
    assert any("Survey follow-up: Visit survey (score 1)" in m for m in shown)
    assert any(f"Patron #{pid}" in t.value for t in at.text)
