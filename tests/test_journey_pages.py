"""The Journeys page: start from a template, build, save a new version, activate; refusals shown."""

from sqlalchemy import func, select

from crmcore.models import Journey, JourneyVersion
from tests.campaign_fixtures import _isolated_mail_config  # noqa: F401


def test_start_build_save_and_activate_a_journey(app, db):
    at = app(role="manager", page="pages/journeys.py").run()
    assert not at.exception
    at.text_input[0].input("Card reminders")
    at.selectbox[0].select("Card renewal")
    at.button[0].click().run()
    assert not at.exception and "started" in at.success[0].value
    with db.read() as s:
        journey = s.scalars(select(Journey)).one()
        assert journey.status == "draft" and journey.template == "card_renewal"
    wait = next(n for n in at.number_input if n.label == "Days to wait")
    wait.set_value(20).run()
    next(b for b in at.button if b.label == "Save the journey").click().run()
    assert not at.exception, at.exception
    with db.read() as s:
        v = s.scalars(select(JourneyVersion)).one()
        assert v.definition["steps"][1]["days"] == 20
    next(b for b in at.button if b.label == "Activate").click().run()
    assert not at.exception
    with db.read() as s:
        assert s.scalars(select(Journey)).one().status == "active"
    next(b for b in at.button if b.label == "Pause").click().run()
    with db.read() as s:
        assert s.scalars(select(Journey)).one().status == "paused"


def test_a_broken_message_is_refused_with_its_step(app, db):
    at = app(role="manager", page="pages/journeys.py").run()
    at.text_input[0].input("Welcome")
    at.button[0].click().run()
    subject = next(t for t in at.text_input if t.label == "Subject")
    subject.input("Hi {{ first_name ").run()
    next(b for b in at.button if b.label == "Save the journey").click().run()
    assert any("Step 1" in e.value for e in at.error), [e.value for e in at.error]
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(JourneyVersion)) == 1
        assert s.scalars(select(Journey)).one().status == "draft"
