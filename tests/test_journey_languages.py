"""Journeys in the patron's language: a send step's words per language (kept in the step, saved as a version like
every edit, copied to the step's campaign as its variants), sent over real SMTP to the patron of that language and the
default words to everyone else; the preview and the test send in the patron's language or the one chosen; words
checked like the step's own, with the step and the language named."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from crmcore.admin import settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.campaigns import sending
from crmcore.journeys import definitions, editing, evaluation
from crmcore.models import Campaign, CurrentConsent, JourneyVersion, MessageVariant, Patron
from tests.campaign_fixtures import _isolated_mail_config, smtp  # noqa: F401
from tests.journey_records import day, moment

SPANISH = ("Bienvenido/a a {{ library_name }}", "Hola {{ first_name }},\n\nle damos la bienvenida a la biblioteca.")


def patrons(db, languages=("es", "de", None)) -> dict[str | None, int]:
    """A patron per language (None: no language on record), registered on day 0, consenting to mail about services."""
    with db.write() as s:
        settings.put(s, actor=CLI_ACTOR, key="library_name", value="Springfield Library")
        settings.put(s, actor=CLI_ACTOR, key="frequency_cap_per_7_days", value=50)
        ids = {}
        for i, language in enumerate(languages):
            p = Patron(ils_id=f"L{i}", first_name=f"Lee{i}", email=f"lee{i}@example.test", language=language, registered_on=day(0))
            s.add(p)
            s.flush()
            s.execute(insert(CurrentConsent).values(patron_id=p.id, channel="email", topic="services", granted=True, updated_at=moment(-30)))
            ids[language] = p.id
    return ids


def spanish_welcome() -> dict:
    definition, code = definitions.with_words(definitions.template("welcome"), index=0, language="Spanish", subject=SPANISH[0], body=SPANISH[1])
    assert code == "es"
    return definition


def test_a_spanish_patron_gets_the_step_in_spanish_and_a_german_one_the_default_words(db, smtp):
    who = patrons(db)
    with db.write() as s:
        jid = editing.create(s, actor=CLI_ACTOR, name="Welcome", template="welcome", holdout_pct=0).id
        editing.activate(s, actor=CLI_ACTOR, journey_id=jid)
    evaluation.evaluate(db, now=moment(0))  # version 1 (no Spanish words) has patrons now
    with db.write() as s:
        version = editing.edit(s, actor=CLI_ACTOR, journey_id=jid, definition=spanish_welcome())
    assert version.number == 2  # words added to an active journey: a new version, as every edit
    with db.write() as s:  # patrons who register later enter version 2
        for i, language in enumerate(("es", "de")):
            p = Patron(ils_id=f"N{i}", first_name=f"New{i}", email=f"new{i}@example.test", language=language, registered_on=day(1))
            s.add(p)
            s.flush()
            s.execute(insert(CurrentConsent).values(patron_id=p.id, channel="email", topic="services", granted=True, updated_at=moment(-30)))
            who[f"new-{language}"] = p.id
    evaluation.evaluate(db, now=moment(1))
    assert sending.send_pending(db) == {"sent": 5}
    subjects = {str(m["To"]).split("<")[-1].rstrip(">"): (m["Subject"], m.get_body(("plain",)).get_content().replace("\r\n", "\n")) for m in smtp.messages}
    with db.read() as s:
        address = {key: s.get(Patron, pid).email for key, pid in who.items()}
        step_campaign = s.scalars(select(Campaign).where(Campaign.journey_version_id == version.id, Campaign.journey_step == 0)).one()
        kept = s.execute(select(MessageVariant.language, MessageVariant.subject).where(MessageVariant.owner == "campaign", MessageVariant.owner_id == step_campaign.id)).all()
    assert kept == [("es", SPANISH[0])]  # the step's words became its campaign's variants
    assert subjects[address["new-es"]][0] == "Bienvenido/a a Springfield Library"
    assert "Hola New0,\n\nle damos la bienvenida a la biblioteca." in subjects[address["new-es"]][1]
    assert subjects[address["new-de"]][0] == "Welcome to Springfield Library"  # no German words: the default
    # Patrons already in version 1 finish on it: the words they entered with, in English.
    assert {subjects[address[key]][0] for key in ("es", "de", None)} == {"Welcome to Springfield Library"}


def test_the_preview_and_the_test_send_speak_the_patrons_language_or_the_one_chosen(db, staff, smtp):
    who = patrons(db)
    step = spanish_welcome()["steps"][0]
    preview = lambda pid, language=None: editing.preview(db, actor=staff["manager"], step=step, patron_id=pid, language=language)  # noqa: E731
    assert preview(who["es"]).subject == "Bienvenido/a a Springfield Library"
    assert "Hola Lee0," in preview(who["es"]).text
    assert preview(who["de"]).subject == "Welcome to Springfield Library"
    assert preview(who[None]).subject == "Welcome to Springfield Library"
    assert preview(who["de"], "es").subject == "Bienvenido/a a Springfield Library"
    assert preview(who["es"], "en").subject == "Welcome to Springfield Library"
    assert editing.send_test(db, actor=staff["manager"], step=step, patron_id=who["es"]) == "manager@library.test"
    assert editing.send_test(db, actor=staff["manager"], step=step, patron_id=who["es"], language="en") == "manager@library.test"
    assert [m["Subject"] for m in smtp.messages] == ["[Test] Bienvenido/a a Springfield Library", "[Test] Welcome to Springfield Library"]


def test_words_in_another_language_are_checked_with_the_step_and_the_language_named(db, staff):
    from tests.survey_records import add_survey

    patrons(db)
    welcome = definitions.template("welcome")
    with pytest.raises(ValueError, match=r"Step 1 \(Send a message\), language: 'klingon!' is not a language code"):
        definitions.with_words(welcome, index=0, language="klingon!", subject="x", body="y")
    with pytest.raises(ValueError, match=r"choose a step that sends a message"):
        definitions.with_words(welcome, index=1, language="es", subject="x", body="y")
    with pytest.raises(ValueError, match=r"Step 1 \(Send a message\), the words in español \(es\): Body, line 1: unexpected end of template"):
        definitions.with_words(welcome, index=0, language="es", subject="Hola", body="Hola {{ first_name ")
    forged = definitions.template("welcome")
    forged["steps"][0]["variants"] = {"Spanish": {"subject": "Hola", "body": "Hola"}}
    with pytest.raises(ValueError, match=r"write the language as its code, es"):
        definitions.validate(forged)
    asks, _ = definitions.with_words(welcome, index=0, language="es", subject="Hola", body="Díganos qué le pareció: {{ survey_link }}")
    with db.write() as s, pytest.raises(ValueError, match=r"Step 1 \(Send a message\), the words in español \(es\): Survey: the message uses"):
        editing.create(s, actor=CLI_ACTOR, name="Asks in Spanish", definition=asks)
    with db.write() as s:
        asks["steps"][0]["survey_id"] = add_survey(s, staff["admin"], name="Welcome survey")
        assert editing.create(s, actor=CLI_ACTOR, name="Asks in Spanish", definition=asks).id
    removed, code = definitions.with_words(asks, index=0, language="es", remove=True)
    assert code == "es" and removed["steps"][0]["variants"] == {} and asks["steps"][0]["variants"] != {}


def test_each_language_of_a_text_step_is_held_to_the_parts_setting(db):
    with db.write() as s:
        settings.put(s, actor=CLI_ACTOR, key="sms_max_segments", value=1)
    texts = definitions.blank()
    texts["steps"][0] = {"kind": "send", "channel": "sms", "topic": "services", "body": "Hi {{ first_name }}, welcome!"}
    short, _ = definitions.with_words(texts, index=0, language="fr", body="Bonjour {{ first_name }}, bienvenue !")
    with db.write() as s:
        jid = editing.create(s, actor=CLI_ACTOR, name="Texts", definition=short).id
    long, _ = definitions.with_words(short, index=0, language="es", body="Hola {{ first_name }}, " + "le damos la bienvenida a la biblioteca. " * 4)
    with db.write() as s, pytest.raises(ValueError, match=r"Step 1 \(Send a message\), the words in español \(es\): Message: with the longest names on record it takes 2 text parts"):
        editing.edit(s, actor=CLI_ACTOR, journey_id=jid, definition=long)
    with db.read() as s:
        assert set(s.scalars(select(JourneyVersion.definition)).one()["steps"][0]["variants"]) == {"fr"}
