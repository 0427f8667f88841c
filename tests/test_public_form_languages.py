"""The survey page, the sign-up form (its confirmation email and page) and the request form in Spanish and French,
over real HTTP to the app's uvicorn server: a per-patron survey link speaks the patron's language, otherwise the
browser's (Accept-Language) with a switcher (?lang=), English when neither is spoken; validation errors too."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from crmcore.languages import catalogues
from crmcore.languages.catalogues import Refusal, said
from crmcore.models import Patron, Prospect, Request, Survey, SurveyResponse
from crmcore.surveys import definitions, questions, tokens
from tests.campaign_fixtures import _isolated_mail_config, add_patrons, smtp  # noqa: F401
from tests.inbox_records import topic_id
from tests.survey_records import add_survey
from tests.web_server import web  # noqa: F401  (fixture)


def hidden(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page).group(1)


def test_a_refusal_is_english_as_text_and_translated_with_its_fields_where_shown():
    with pytest.raises(Refusal) as caught:
        questions.read_answers([{"key": "q1", "type": "nps", "text": "¿Nos recomendaría?", "required": True}], {"q1": ["12"]})
    assert str(caught.value) == "Question 1 (¿Nos recomendaría?): choose a number from 0 to 10."
    assert said("es", caught.value) == "Pregunta 1 (¿Nos recomendaría?): elija un número del 0 al 10."
    assert said("fr", caught.value) == "Question 1 (¿Nos recomendaría?) : choisissez un nombre de 0 à 10."
    assert said("fr", ValueError(tokens.INVALID)) == catalogues.gettext("fr", tokens.INVALID) != tokens.INVALID
    assert said("de", caught.value) == str(caught.value)


def test_a_patrons_survey_link_speaks_the_patrons_language_errors_and_thanks_included(db, web, staff):
    with db.write() as s:
        spanish, french = add_patrons(s, 2)
        s.get(Patron, spanish).language, s.get(Patron, french).language = "es", "fr"
        sid = add_survey(s, staff["manager"])
    url = f"{web}/survey/{tokens.maker(sid)(spanish)}"
    page = httpx.get(url, headers={"Accept-Language": "fr"})  # the patron's own language comes before the browser's
    assert page.status_code == 200 and '<html lang="es">' in page.text
    assert "How likely are you to recommend the library?" in page.text  # the survey's own words, as staff wrote them
    for words in ("(obligatoria)", "Nada probable", "Muy probable", "Sí, pónganse en contacto conmigo", "Enviar mis respuestas"):
        assert words in page.text
    assert "Send my answers" not in page.text and "Not at all likely" not in page.text
    path = url.removeprefix(web)  # the link asked for (a link made now may carry a later second)
    assert f'href="{path}?lang=fr" hreflang="fr" lang="fr">Français</a>' in page.text and f'href="{path}?lang=en"' in page.text
    missing = httpx.post(url, data={"form": hidden(page.text, "form"), "lang": hidden(page.text, "lang")})
    assert missing.status_code == 400 and '<html lang="es">' in missing.text
    assert "Pregunta 1 (How likely are you to recommend the library?): responda a esta pregunta, por favor." in missing.text
    sent = httpx.post(url, data={"form": hidden(page.text, "form"), "lang": "es", "q1": "9"})
    assert sent.status_code == 200 and "Gracias: sus respuestas están guardadas." in sent.text and "Guardar mis respuestas" in sent.text
    assert "Ya ha respondido" in sent.text
    chosen = httpx.get(url + "?lang=en")  # the switcher wins over the patron's language
    assert '<html lang="en">' in chosen.text and "Save my answers" in chosen.text
    with db.write() as s:
        definitions.set_status(s, actor=staff["manager"], survey_id=sid, status="closed")
    closed = httpx.get(f"{web}/survey/{tokens.maker(sid)(french)}")
    assert closed.status_code == 400 and '<html lang="fr">' in closed.text and "<h1>Questionnaire</h1>" in closed.text
    assert "Ce questionnaire est clos : merci, les réponses ne sont plus acceptées." in closed.text
    with db.read() as s:
        assert s.scalar(select(SurveyResponse.nps)) == 9


def test_the_anonymous_survey_follows_the_browser_then_falls_back_to_english(db, web, staff):
    with db.write() as s:
        sid = add_survey(s, staff["manager"])
        s.get(Survey, sid).intro = "Tell us <b>honestly</b>."
    url = f"{web}/survey/{tokens.anonymous(sid)}"
    french = httpx.get(url, headers={"Accept-Language": "de-DE,fr;q=0.8,en;q=0.5"})
    assert '<html lang="fr">' in french.text and "Envoyer mes réponses" in french.text and "Pas du tout probable" in french.text
    assert "Tell us &lt;b&gt;honestly&lt;/b&gt;." in french.text  # staff's words stay as written, escaped
    bad = httpx.post(url, data={"form": hidden(french.text, "form"), "lang": "fr", "q1": "12"})
    assert bad.status_code == 400 and "Question 1 (How likely are you to recommend the library?) : choisissez un nombre de 0 à 10." in bad.text
    thanks = httpx.post(url, data={"form": hidden(french.text, "form"), "lang": "fr", "q1": "10"})
    assert thanks.status_code == 200 and "Merci : vos réponses sont enregistrées." in thanks.text and '<html lang="fr">' in thanks.text
    german = httpx.get(url, headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="en">' in german.text and "Send my answers" in german.text
    spanish = httpx.get(url + "?lang=es", headers={"Accept-Language": "fr"})
    assert '<html lang="es">' in spanish.text and "Enviar mis respuestas" in spanish.text
    forged = httpx.post(url, data={"q1": "5"}, headers={"Accept-Language": "es"})
    assert forged.status_code == 400 and "Esta respuesta no procede de la página de la encuesta." in forged.text


def test_the_sign_up_form_its_errors_email_and_confirmation_speak_french(db, smtp, web):
    page = httpx.get(f"{web}/signup", headers={"Accept-Language": "fr-CA,fr;q=0.9"})
    assert page.status_code == 200 and '<html lang="fr">' in page.text and "<h1>Inscrivez-vous aux nouvelles de la bibliothèque</h1>" in page.text
    for words in ("Adresse courriel (obligatoire)", "Sur quoi aimeriez-vous recevoir des nouvelles ?", "Les événements", "Code postal", "M’inscrire"):
        assert words in page.text
    assert 'href="/signup?lang=es" hreflang="es"' in page.text and "<script" not in page.text
    fields = {"form_token": hidden(page.text, "form_token"), "lang": hidden(page.text, "lang"), "topics": ["events", "newsletter"]}
    bad = httpx.post(f"{web}/signup", data={**fields, "email": "pas-une-adresse"})
    assert bad.status_code == 400 and '<html lang="fr">' in bad.text
    assert "Adresse courriel : pas-une-adresse n’est pas une adresse courriel valide." in bad.text and 'value="pas-une-adresse"' in bad.text
    sent = httpx.post(f"{web}/signup", data={**fields, "email": "claire@example.org", "name": "Claire"})
    assert sent.status_code == 200 and "Nous avons envoyé un lien à claire@example.org." in sent.text
    (mail,) = smtp.messages
    assert mail["Subject"].startswith("Merci de confirmer : nouvelles de ")
    text = mail.get_body(("plain",)).get_content()
    assert "Bonjour Claire," in text and "des nouvelles sur les événements et la lettre d’information à cette adresse" in text
    link = re.search(r"(http\S+/signup/confirm/\S+)", text).group(1)
    assert link.endswith("?lang=fr")
    link = re.sub(r"^http://[^/]+", web, link)
    shown = httpx.get(link)  # no Accept-Language at all: the link carries the form's language
    assert '<html lang="fr">' in shown.text and "Recevoir des courriels de la bibliothèque sur les événements et la lettre d’information ?" in shown.text
    assert ">Confirmer</button>" in shown.text
    done = httpx.post(link.split("?")[0], data={"lang": hidden(shown.text, "lang")})
    assert done.status_code == 200 and "<h1>Merci</h1>" in done.text and "Chaque courriel contient un lien pour se désabonner." in done.text
    with db.read() as s:
        assert s.scalar(select(Prospect.confirmed_at)) is not None
    refused = httpx.post(f"{web}/signup", data={"email": "x@example.org"}, headers={"Accept-Language": "es"})
    assert refused.status_code == 400 and "Esta suscripción no procede del formulario de la biblioteca" in refused.text


def test_the_request_form_speaks_spanish_errors_and_reference_included(db, web):
    with db.write() as s:
        topic_id(s)
    page = httpx.get(f"{web}/request", headers={"Accept-Language": "es-MX,es;q=0.9"}, timeout=10)
    assert page.status_code == 200 and '<html lang="es">' in page.text and "<h1>Pregunte a la biblioteca</h1>" in page.text
    for words in ("Su nombre", "Su correo electrónico", "Su mensaje", "Elija…", ">Enviar</button>", ">Account</option>"):
        assert words in page.text
    fields = {"token": hidden(page.text, "token"), "lang": hidden(page.text, "lang"), "name": "Ana", "email": "ana@example.org", "message": "  "}
    empty = httpx.post(f"{web}/request", data=fields, timeout=10)
    assert empty.status_code == 400 and '<html lang="es">' in empty.text and "Su mensaje: díganos qué necesita." in empty.text
    taken = httpx.post(f"{web}/request", data={**fields, "message": "¿Puedo renovar por teléfono?"}, timeout=10)
    assert taken.status_code == 200 and "La biblioteca ha recibido su mensaje." in taken.text
    assert re.search(r"Su referencia es REQ-\S+; figura en el asunto de nuestra respuesta.", taken.text)
    english = httpx.get(f"{web}/request", headers={"Accept-Language": "de"}, timeout=10)
    assert '<html lang="en">' in english.text and "Ask the library anything" in english.text
    with db.read() as s:
        assert s.scalars(select(Request.requester_email)).all() == ["ana@example.org"]


def test_the_sign_ups_page_gives_the_website_snippet_in_the_chosen_language(app, db):
    at = app(role="manager", page="pages/signups.py").run()
    assert not at.exception
    at.selectbox(key="signups-snippet-language").set_value("es").run()
    (code,) = [c.value for c in at.code]
    assert 'lang="es"' in code and 'name="lang" value="es"' in code and "Correo electrónico (obligatorio)" in code and ">Suscribirme</button>" in code
