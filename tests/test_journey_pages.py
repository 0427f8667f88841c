"""The Journeys page: start from a template, build, save a new version, activate; text steps with their length;
a branch step's own rule builder; pause holding what is queued; refusals shown with the step."""

from datetime import date

from sqlalchemy import func, select

from crmcore.models import CurrentConsent, Journey, JourneyVersion, Message, Patron, Segment
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


def _start(at, name: str, start: str):
    at.text_input[0].input(name)
    at.selectbox[0].select(start)
    at.button[0].click().run()
    assert not at.exception and "started" in at.success[0].value, at.exception
    return at


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_a_text_step_is_built_with_its_length_previewed_and_its_test_says_why_not(app, db):
    with db.write() as s:
        s.add(Patron(ils_id="P1", first_name="Rosa", phone="(312) 555-0101", registered_on=date.today()))
    at = _start(app(role="manager", page="pages/journeys.py").run(), "Texts", "From scratch")
    next(r for r in at.radio if r.label == "Channel").set_value("sms").run()
    assert not [t for t in at.text_input if t.label == "Subject"]  # a text has no subject
    next(t for t in at.text_area if t.label == "Message").input("Hi {{ first_name }}, welcome to the library!").run()
    assert any("Length with the longest names on record" in c.value and "1 part of at most 160" in c.value for c in at.caption), [c.value for c in at.caption]
    _button(at, "Save the journey").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with db.read() as s:
        step = s.scalars(select(JourneyVersion)).one().definition["steps"][0]
    assert (step["channel"], step["body"]) == ("sms", "Hi {{ first_name }}, welcome to the library!")
    _button(at, "Preview").click().run()
    assert any(t.value == "Hi Rosa, welcome to the library!\nReply STOP to stop texts." for t in at.text), [t.value for t in at.text]
    _button(at, "Send me a test").click().run()
    assert any("no phone number; add yours on My account" in e.value for e in at.error), [e.value for e in at.error]


def test_a_text_too_long_is_shown_and_refused_with_its_step(app, db):
    at = _start(app(role="manager", page="pages/journeys.py").run(), "Long texts", "From scratch")
    next(r for r in at.radio if r.label == "Channel").set_value("sms").run()
    next(t for t in at.text_area if t.label == "Message").input("Hello from the library. " * 20).run()
    assert any("text parts" in e.value for e in at.error)  # shown while writing
    _button(at, "Save the journey").click().run()
    assert any(e.value.startswith("Step 1 (Send a message): Message: with the longest names") for e in at.error), [e.value for e in at.error]
    with db.read() as s:
        assert s.scalars(select(JourneyVersion)).one().definition["steps"][0]["channel"] == "email"


def test_a_branch_steps_own_rule_is_built_in_the_step_refused_while_half_made(app, db):
    with db.write() as s:
        s.add(Segment(name="Students", rules={"all": [{"field": "patron_type", "op": "in", "value": ["Student"]}]}))
    at = _start(app(role="manager", page="pages/journeys.py").run(), "Welcome", "Welcome")
    assert any("Goes on for patrons where Days since last activity never active" in c.value for c in at.caption)
    _button(at, "Add condition").click().run()  # a condition on the zone, with no zone chosen yet
    assert any("Not complete yet — Condition 2, Zone: choose at least one value" in w.value for w in at.warning), [w.value for w in at.warning]
    _button(at, "Save the journey").click().run()
    assert any(e.value.startswith("Step 5 (Branch on a condition), condition: Condition 2, Zone") for e in at.error), [e.value for e in at.error]
    with db.read() as s:
        assert s.scalars(select(JourneyVersion)).one().definition["steps"][4]["rule"] == {"field": "days_since_activity", "op": "never"}
    fields = [sb for sb in at.selectbox if sb.label == "Field"]
    fields[1].select("days_since_activity").run()
    next(sb for sb in at.selectbox if sb.label == "Operator" and sb.value == "=").select("<=").run()
    next(n for n in at.number_input if n.label == "Days" and n.value == 180).set_value(30).run()
    next(sb for sb in at.selectbox if sb.label == "Match").select("any").run()
    _button(at, "Save the journey").click().run()
    assert not at.error, [e.value for e in at.error]
    with db.read() as s:
        rule = s.scalars(select(JourneyVersion)).one().definition["steps"][4]["rule"]
    assert rule == {"any": [{"field": "days_since_activity", "op": "never"}, {"field": "days_since_activity", "op": "<=", "value": 30}]}
    next(sb for sb in at.selectbox if sb.label == "Or start from a saved segment").select(1).run()
    _button(at, "Use its conditions").click().run()
    _button(at, "Save the journey").click().run()
    with db.read() as s:
        rule = s.scalars(select(JourneyVersion)).one().definition["steps"][4]["rule"]
    assert rule == {"all": [{"field": "patron_type", "op": "in", "value": ["Student"]}]}


def test_a_paused_journey_says_how_many_messages_it_holds(app, db, staff):
    from crmcore.journeys import editing, evaluation
    from tests.journey_records import moment

    with db.write() as s:
        for i in range(3):
            p = Patron(ils_id=f"W{i}", first_name="W", email=f"w{i}@example.test", registered_on=moment(0).date())
            s.add(p)
            s.flush()
            s.add(CurrentConsent(patron_id=p.id, channel="email", topic="services", granted=True))
        jid = editing.create(s, actor=staff["manager"], name="Welcome", template="welcome", holdout_pct=0).id
        editing.activate(s, actor=staff["manager"], journey_id=jid)
    evaluation.evaluate(db, now=moment(0))
    at = app(role="manager", page="pages/journeys.py").run()
    # The list and the results: patrons in the journey, in each step, what each send step did (small cells as "<5").
    assert at.dataframe[0].value.loc[0, "in the journey now"] == 3
    assert any(m.value.startswith("Entered: <5 · in the journey: <5") for m in at.markdown), [m.value for m in at.markdown]
    by_step = next(d.value for d in at.dataframe if "waiting here" in d.value.columns).set_index("step")
    assert by_step.loc["Step 1 (Send a message)", "to send"] == "<5" and by_step.loc["Step 3 (Send a message)", "waiting here"] == "<5"
    _button(at, "Pause").click().run()
    assert any("3 messages already queued are held until the journey is resumed" in c.value for c in at.caption), [c.value for c in at.caption]
    _button(at, "Resume").click().run()
    with db.read() as s:
        assert set(s.scalars(select(Message.status))) == {"queued"}


def test_removing_a_step_keeps_every_other_step_as_it_was(app, db):
    from crmcore.journeys import definitions

    at = _start(app(role="manager", page="pages/journeys.py").run(), "Welcome", "Welcome")
    [b for b in at.button if b.label == "Remove this step"][2].click().run()  # the day-7 message
    _button(at, "Save the journey").click().run()
    assert not at.error, [e.value for e in at.error]
    expected = definitions.template("welcome")["steps"]
    del expected[2]
    expected[3]["rule"] = {"all": [expected[3]["rule"]]}  # as the rule builder keeps it: a group at the root
    for step in expected:
        if step["kind"] == "send":
            step["survey_id"] = None
    with db.read() as s:
        assert s.scalars(select(JourneyVersion)).one().definition["steps"] == expected


def test_words_in_spanish_are_added_to_a_step_in_the_builder_and_previewed_for_a_spanish_patron(app, db):
    from crmcore.journeys import editing, evaluation
    from crmcore.admin.auth import CLI_ACTOR

    with db.write() as s:
        rosa = Patron(ils_id="ES1", first_name="Rosa", email="rosa@example.test", language="es", registered_on=date.today())
        s.add(rosa)
        s.flush()
        s.add(CurrentConsent(patron_id=rosa.id, channel="email", topic="services", granted=True))
    at = _start(app(role="manager", page="pages/journeys.py").run(), "Welcome", "Welcome")
    tag = next(sb.key for sb in at.selectbox if sb.key and sb.key.startswith("var-lang-"))  # step 1's words in other languages
    at.selectbox(key=tag).set_value("es").run()
    suffix = tag.removeprefix("var-lang-")
    at.text_input(key=f"var-subject-{suffix}-es").input("Bienvenida a {{ library_name }}")
    at.text_area(key=f"var-body-{suffix}-es").input("Hola {{ first_name }}, le esperamos en la biblioteca.")
    next(b for b in at.button if b.label == "Save these words").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Saved the words in Español. Saved as version 1." in m.value for m in at.success), [m.value for m in at.success]
    with db.read() as s:
        step = s.scalars(select(JourneyVersion)).one().definition["steps"][0]
    assert step["variants"] == {"es": {"subject": "Bienvenida a {{ library_name }}", "body": "Hola {{ first_name }}, le esperamos en la biblioteca."}}
    assert any(e.label == "In other languages (1)" for e in at.expander)
    _button(at, "Preview").click().run()  # the sample patron is Spanish: her words
    assert [t.value for t in at.text][0] == "Bienvenida a The library" and at.text[1].value.startswith("Hola Rosa, le esperamos en la biblioteca.")
    next(sb for sb in at.selectbox if sb.label == "Language" and "pl" in (sb.key or "")).set_value("en").run()
    _button(at, "Preview").click().run()
    assert any(t.value.startswith("Hello Rosa,") for t in at.text), [t.value for t in at.text]

    with db.write() as s:  # once patrons have entered, removing the words makes a new version
        jid = s.scalars(select(Journey.id)).one()
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    assert evaluation.evaluate(db)[jid]["entered"] == 1
    at = app(role="manager", page="pages/journeys.py").run()
    tag = next(sb.key for sb in at.selectbox if sb.key and sb.key.startswith("var-lang-"))
    at.selectbox(key=tag).set_value("es").run()
    next(b for b in at.button if b.label == "Remove this language").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Removed the words in Español" in m.value and "version 2" in m.value for m in at.success), [m.value for m in at.success]
    with db.read() as s:
        versions = {v.number: v.definition["steps"][0].get("variants") for v in s.scalars(select(JourneyVersion))}
    assert versions == {1: step["variants"], 2: {}}


def test_activating_a_journey_whose_segment_was_deleted_is_refused_on_the_page_and_it_stays_a_draft(app, db, staff):
    from crmcore.journeys import definitions, editing

    with db.write() as s:
        seg = Segment(name="Lapsed", rules={"all": [{"field": "days_since_activity", "op": ">=", "value": 180}]})
        s.add(seg)
        s.flush()
        on_segment = definitions.template("we_miss_you")
        on_segment["trigger"] = {"kind": "segment", "segment_id": seg.id}
        editing.create(s, actor=staff["manager"], name="On a segment", definition=on_segment)
    with db.write() as s:
        s.delete(s.get(Segment, seg.id))
    at = app(role="manager", page="pages/journeys.py").run()
    _button(at, "Activate").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Trigger: the segment this journey starts from has been deleted; choose another."]
    with db.read() as s:
        assert s.scalars(select(Journey)).one().status == "draft"
