"""The public survey page over real HTTP to the app's uvicorn server: answered, edited, closed; a post without its
form token or for another survey refused; the anonymous link rate-limited; plain escaped HTML without script."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select

from crmcore.models import Survey, SurveyResponse, SurveyText, Task
from crmcore.surveys import definitions, tokens
from tests.campaign_fixtures import _isolated_mail_config, add_patrons  # noqa: F401
from tests.survey_records import add_survey
from tests.web_server import web  # noqa: F401  (fixture)


def form_token(page: str) -> str:
    return re.search(r'name="form" value="([^"]+)"', page).group(1)


def test_a_patron_answers_changes_the_answer_and_the_closed_survey_refuses(db, web, staff):
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        sid = add_survey(s, staff["manager"], staff_id=staff["outreach"].id)
        s.get(Survey, sid).intro = "Tell us <b>honestly</b>."
    url = f"{web}/survey/{tokens.maker(sid)(pid)}"
    page = httpx.get(url)
    assert page.status_code == 200 and "<script" not in page.text and 'name="viewport"' in page.text
    assert "Tell us &lt;b&gt;honestly&lt;/b&gt;." in page.text and 'type="radio" name="q1" value="10"' in page.text
    sent = httpx.post(url, data={"form": form_token(page.text), "q1": "4", "q3": ["Books", "Events"], "q5": "Too <loud>", "q6": "yes"})
    assert sent.status_code == 200 and "Thank you: your answers are saved." in sent.text
    assert 'value="4" checked' in sent.text and "Too &lt;loud&gt;" in sent.text  # the page shows the answers, to change
    edited = httpx.post(url, data={"form": form_token(sent.text), "q1": "9", "q3": "Books"})
    assert edited.status_code == 200
    with db.read() as s:
        (response,) = s.scalars(select(SurveyResponse)).all()
        assert (response.nps, response.answers["q3"], response.contact_ok) == (9, ["Books"], None)
        assert s.scalar(select(func.count()).select_from(SurveyText)) == 0
        assert s.get(Task, response.task_id).assignee_id == staff["outreach"].id  # the first answer (4) asked for it
    with db.write() as s:
        definitions.set_status(s, actor=staff["manager"], survey_id=sid, status="closed")
    closed = httpx.post(url, data={"form": form_token(sent.text), "q1": "0"})
    assert closed.status_code == 400 and "closed" in closed.text
    assert httpx.get(url).status_code == 400
    with db.read() as s:
        assert s.scalar(select(SurveyResponse.nps)) == 9


def test_posts_without_their_token_or_for_another_survey_or_bad_answers_change_nothing(db, web, staff):
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        sid = add_survey(s, staff["manager"])
        other = add_survey(s, staff["manager"], name="Other survey")
    url = f"{web}/survey/{tokens.maker(sid)(pid)}"
    other_page = httpx.get(f"{web}/survey/{tokens.maker(other)(pid)}").text
    for data, message in [
        ({"q1": "5"}, "did not come from the survey&#x27;s own page"),
        ({"form": form_token(other_page), "q1": "5"}, "another survey"),
        ({"form": form_token(httpx.get(url).text), "q1": "12"}, "choose a number from 0 to 10"),
    ]:
        answer = httpx.post(url, data=data)
        assert answer.status_code == 400 and message in answer.text, answer.text
    assert httpx.get(f"{web}/survey/not-a-token").status_code == 400
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_the_anonymous_link_takes_answers_from_anyone_and_is_rate_limited(db, web, staff):
    with db.write() as s:
        sid = add_survey(s, staff["manager"])
    url = f"{web}/survey/{tokens.anonymous(sid)}"
    codes = []
    for _ in range(11):
        codes.append(httpx.post(url, data={"form": form_token(httpx.get(url).text), "q1": "10"}).status_code)
    assert codes == [200] * 10 + [429]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(SurveyResponse).where(SurveyResponse.patron_id.is_(None))) == 10
