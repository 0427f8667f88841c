"""Journeys with text-message steps: through a real Kannel and its fake SMSC (tests/kannel.py), never in quiet
hours (an injected clock), consent to texts per topic checked at each send (STOP ends the journey before the
next step), the test text to the staff member's own phone, and the refusals of a text step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from crmcore.admin import auth, settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.campaigns import sending
from crmcore.journeys import definitions, editing, evaluation, results
from crmcore.models import Campaign, CurrentConsent, Journey, JourneyEnrolment, Message, Patron
from crmcore.texts import sending as text_sending, wording
from tests.campaign_fixtures import _isolated_mail_config  # noqa: F401
from tests.journey_records import day, moment
from tests.kannel import SHORT_CODE, kannel, texts_web  # noqa: F401

NUMBERS = ["(312) 555-0101", "+1 312 555 0102", "312.555.0103", "12"]  # the last cannot be a phone's number
E164 = ["+13125550101", "+13125550102", "+13125550103"]
# moment(n) is 06:00 UTC: midnight in Chicago, inside the quiet hours (21 to 8); ten hours later it is 10:00 there.
DAYTIME = timedelta(hours=10)


def text(topic: str, body: str) -> dict:
    return {"kind": "send", "channel": "sms", "topic": topic, "body": body}


def text_journey() -> dict:
    """A welcome by text on day 0, another text on day 7, then a mail on day 14."""
    return {
        "trigger": {"kind": "registered", "days": 0},
        "steps": [
            text("services", "Welcome to {{ library_name }}, {{ first_name }}!"),
            {"kind": "wait", "days": 7},
            text("services", "{{ first_name }}, your card opens e-books too."),
            {"kind": "wait", "days": 7},
            {"kind": "send", "channel": "email", "topic": "services", "subject": "Two weeks in", "body": "Hello {{ first_name }},\n\nsee you soon."},
            {"kind": "end"},
        ],
        "exits": [], "reentry_days": None, "goal": "activity", "goal_days": 30,
    }


def texting_library(db, numbers=NUMBERS) -> list[int]:
    """Patrons registered on day 0 with these phones, consenting to texts and mail about library services."""
    with db.write() as s:
        for key, value in {"time_zone": "America/Chicago", "library_name": "Springfield Library", "frequency_cap_per_7_days": 50, "small_cell_k": 2}.items():
            settings.put(s, actor=CLI_ACTOR, key=key, value=value)
        ids = []
        for i, number in enumerate(numbers):
            p = Patron(ils_id=f"T{i}", first_name=f"Tex{i}", email=f"tex{i}@example.test", phone=number, registered_on=day(0))
            s.add(p)
            s.flush()
            ids.append(p.id)
            for channel in ("sms", "email"):
                s.execute(insert(CurrentConsent).values(patron_id=p.id, channel=channel, topic="services", granted=True, updated_at=moment(-30)))
    return ids


def start(db, definition: dict) -> int:
    with db.write() as s:
        jid = editing.create(s, actor=CLI_ACTOR, name="Welcome by text", definition=definition, holdout_pct=0).id
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    return jid


def statuses(db, step: int) -> dict[int, str]:
    with db.read() as s:
        return dict(s.execute(select(Message.patron_id, Message.status).join(Campaign).where(Campaign.journey_step == step)).all())


def test_a_text_journey_goes_through_kannel_in_daytime_and_stop_ends_it_before_the_next_step(db, staff, kannel, texts_web):
    ids = texting_library(db)
    jid = start(db, text_journey())
    assert evaluation.evaluate(db, now=moment(0))[jid]["messages"] == 4
    assert text_sending.send_pending(db, now=lambda: moment(0)) == {}  # midnight in Chicago: the texts wait
    assert set(statuses(db, 0).values()) == {"queued"} and kannel.received() == []
    assert sending.send_pending(db) == {}  # the mail sender does not take texts
    assert text_sending.send_pending(db, now=lambda: moment(0) + DAYTIME) == {"sent": 3, "skipped": 1}  # "12" cannot be texted
    got = kannel.wait_for(3)
    assert sorted(to for _, to, _ in got) == E164 and {sender for sender, _, _ in got} == {SHORT_CODE}
    assert f"Welcome to Springfield Library, Tex0!\n{wording.STOP_LINE}" in [body for _, _, body in got]
    assert statuses(db, 0) == {ids[0]: "sent", ids[1]: "sent", ids[2]: "sent", ids[3]: "skipped"}

    kannel.start_phones(f"{E164[0]} STOP")  # the first patron answers STOP
    assert "no more texts" in kannel.wait_for(4)[-1][2]
    with db.read() as s:
        assert s.scalar(select(CurrentConsent.granted).where(CurrentConsent.patron_id == ids[0], CurrentConsent.channel == "sms")) is False

    for n in range(1, 15):
        evaluation.evaluate(db, now=moment(n))
        text_sending.send_pending(db, now=lambda: moment(n) + DAYTIME)
        sending.send_pending(db)
    second = [(to, body) for _, to, body in kannel.wait_for(6)[4:]]
    assert sorted(second) == [(E164[1], f"Tex1, your card opens e-books too.\n{wording.STOP_LINE}"), (E164[2], f"Tex2, your card opens e-books too.\n{wording.STOP_LINE}")]
    assert statuses(db, 2) == {ids[1]: "sent", ids[2]: "sent", ids[3]: "skipped"}  # nothing queued for the one who said STOP
    assert statuses(db, 4) == {ids[1]: "sent", ids[2]: "sent", ids[3]: "sent"}  # the mail goes to the three still in the journey
    with db.read() as s:
        left = dict(s.execute(select(JourneyEnrolment.patron_id, JourneyEnrolment.exit_reason).where(JourneyEnrolment.state == "exited")).all())
        r = results.journey_results(s, actor=staff["manager"], journey_id=jid)
    assert left == {ids[0]: "no_consent"}
    sends = [row for row in r["steps"] if "sent" in row]
    assert [(row["channel"], row["sent"], row["not sent"]) for row in sends] == [("Text message", 3, "<2"), ("Text message", 2, "<2"), ("Email", 3, 0)]
    assert r["exited"] == {"Withdrew consent": "<2"}


def test_a_test_text_goes_to_the_staff_members_own_phone_or_says_why_not(db, staff, kannel):
    ids = texting_library(db, numbers=[NUMBERS[0]])
    step = text_journey()["steps"][0]
    with pytest.raises(ValueError, match="no phone number; add yours on My account"):
        editing.send_test(db, actor=staff["manager"], step=step, patron_id=ids[0])
    with db.write() as s, pytest.raises(ValueError, match="Your phone number: '555' is not a valid phone number"):
        auth.set_own_phone(s, actor=staff["manager"], phone="555")
    with db.write() as s:
        assert auth.set_own_phone(s, actor=staff["manager"], phone="(312) 555-0199") == "+13125550199"
    shown = editing.preview(db, actor=staff["manager"], step=step, patron_id=ids[0])
    assert shown.subject == "" and shown.text == f"Welcome to Springfield Library, Tex0!\n{wording.STOP_LINE}"
    assert editing.send_test(db, actor=staff["manager"], step=step, patron_id=ids[0]) == "+13125550199"
    assert kannel.wait_for(1) == [(SHORT_CODE, "+13125550199", f"[Test] {shown.text}")]
    with db.read() as s:
        assert s.scalar(select(Message.id)) is None  # a test is no campaign message


def test_text_steps_are_refused_with_the_step_named_and_the_journey_stays_inactive(db):
    texting_library(db, numbers=[NUMBERS[0]])
    with db.write() as s:
        settings.put(s, actor=CLI_ACTOR, key="sms_max_segments", value=1)
    too_long = text_journey()
    too_long["steps"][2]["body"] = "A long text. " * 12
    with db.write() as s, pytest.raises(ValueError, match=r"Step 3 \(Send a message\): Message: with the longest names on record it takes 2 text parts"):
        editing.create(s, actor=CLI_ACTOR, name="Too long", definition=too_long)
    fax = text_journey()
    fax["steps"][0]["channel"] = "fax"
    with pytest.raises(ValueError, match=r"Step 1 \(Send a message\), channel: choose email or text message"):
        definitions.validate(fax)
    with db.write() as s:
        jid = editing.create(s, actor=CLI_ACTOR, name="Short enough", definition=text_journey()).id
        settings.put(s, actor=CLI_ACTOR, key="library_name", value="The Springfield Public Library and Community Learning Centre of the Valley, serving every town of the county since 1901")
    with db.write() as s, pytest.raises(ValueError, match=r"Step 1 \(Send a message\): Message: .* text parts"):
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)  # the library's longer name makes the text too long
    with db.read() as s:
        assert s.get(Journey, jid).status == "draft"
        assert s.scalar(select(Campaign.id)) is None


def test_a_text_step_sends_the_patrons_language_and_their_own_survey_link_through_kannel(db, staff, kannel):
    """A text step's words in Spanish go to the Spanish patron, the default to the others; {{ survey_link }} in a
    text is each patron's own signed link (as in a mail)."""
    from crmcore.surveys import tokens as survey_tokens
    from tests.survey_records import add_survey

    ids = texting_library(db, numbers=NUMBERS[:2])
    with db.write() as s:
        s.get(Patron, ids[0]).language = "es"
        s.get(Patron, ids[1]).language = "de"
        survey_id = add_survey(s, staff["admin"], name="Welcome survey")
    asks = text_journey()
    asks["steps"][0].update(body="Hi {{ first_name }}, how did we do? {{ survey_link }}", survey_id=survey_id)
    asks, _ = definitions.with_words(asks, index=0, language="es", body="Hola {{ first_name }}, ¿qué tal? {{ survey_link }}")
    start(db, asks)
    evaluation.evaluate(db, now=moment(0))
    assert text_sending.send_pending(db, now=lambda: moment(0) + DAYTIME) == {"sent": 2}
    with db.read() as s:
        base = f"{sending.public_url(s)}/survey/"
    got = {to: body for _, to, body in kannel.wait_for(2)}
    # The Spanish words to the Spanish patron, the default to the German one (no German words); each with their own link.
    for number, pid, words in ((E164[0], ids[0], "Hola Tex0, ¿qué tal?"), (E164[1], ids[1], "Hi Tex1, how did we do?")):
        head, token = got[number].removesuffix(f"\n{wording.STOP_LINE}").split(base)
        assert head == f"{words} " and survey_tokens.read(token) == survey_tokens.Link(survey_id=survey_id, patron_id=pid)
