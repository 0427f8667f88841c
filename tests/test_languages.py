"""Languages: the patron's preferred language (import, profile, segments), message variants per language through
real SMTP, and the public pages in Spanish and French from the catalogues (which must cover every message id)."""

from __future__ import annotations

import csv
import re
import string

import httpx
import pytest
from babel.messages.extract import extract_from_dir, extract_from_file
from sqlalchemy import select

from crmcore import imports
from crmcore.campaigns import drafts, preference_tokens, segments, sending, unsubscribe
from crmcore.imports import koha_sample, mapping
from crmcore.languages import catalogues, codes, variants
from crmcore.library import patrons as directory
from crmcore.models import Message, MessageVariant, Patron
from crmcore.privacy import rights
from tests.campaign_fixtures import _isolated_mail_config, add_campaign, add_patrons, add_segment, smtp  # noqa: F401
from tests.conftest import ROOT
from tests.web_server import web  # noqa: F401  (fixture)

TRANSLATED = [code for code in catalogues.supported() if code != catalogues.DEFAULT]


def message_ids() -> dict[str, str]:
    """Every text the code marks for translation (Babel's extractor, as pybabel would run it) → where it is."""
    found: dict[str, str] = {}
    for folder in ("crmcore", "pages", "ui"):
        for name, line, msgid, _comments, _context in extract_from_dir(ROOT / folder, keywords=catalogues.KEYWORDS):
            found.setdefault(msgid, f"{folder}/{name}:{line}")
    for name in ("app.py", "server.py"):
        for line, msgid, _comments, _context in extract_from_file("python", ROOT / name, keywords=catalogues.KEYWORDS):
            found.setdefault(msgid, f"{name}:{line}")
    return found


def fields(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conv in string.Formatter().parse(text) if name}


def test_the_pages_speak_english_spanish_and_french():
    assert {"en", "es", "fr"} <= set(catalogues.supported())
    assert catalogues.names()["es"] == "Español" and catalogues.names()["fr"] == "Français"


def test_the_extractor_finds_the_marked_texts():
    found = message_ids()
    assert "Your preferences" in found and "Stop {what} from the library?" in found and preference_tokens.INVALID in found
    assert len(found) >= 30


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_catalogue_covers_every_message_id_with_the_same_fields(code):
    catalogue = catalogues._catalogue(code)
    found = message_ids()
    missing = {msgid: where for msgid, where in found.items() if msgid not in catalogue}
    assert not missing, f"crmcore/locales/{code}/LC_MESSAGES/messages.po lacks: {missing}"
    stale = set(catalogue) - set(found)
    assert not stale, f"crmcore/locales/{code} translates texts the code no longer has: {stale}"
    for msgid, text in catalogue.items():
        assert fields(text) == fields(msgid), f"{code}: {msgid!r} and its translation name different fields"


def test_a_text_without_a_translation_is_english_and_english_is_the_msgid():
    assert catalogues.gettext("es", "Unsubscribe") == "Darse de baja"
    assert catalogues.gettext("es", "Not in any catalogue") == "Not in any catalogue"
    assert catalogues.gettext("de", "Unsubscribe") == catalogues.gettext(None, "Unsubscribe") == "Unsubscribe"


@pytest.mark.parametrize(("header", "expected"), [
    ("es-MX,es;q=0.9,en;q=0.5", "es"), ("de-DE,fr;q=0.7,es;q=0.6", "fr"), ("de", None), ("", None), (None, None),
    ("fr;q=0,es;q=0.1", "es"), ("en-GB,fr;q=0.8", "en"), ("es;q=nonsense,fr", "fr"),
])
def test_accept_language_picks_the_best_language_the_pages_speak(header, expected):
    assert catalogues.negotiate(header) == expected


def test_the_page_language_is_the_choice_then_the_patron_then_the_browser_then_english():
    assert catalogues.choose("fr", "es", "en") == "fr"
    assert catalogues.choose(None, "es", "fr") == "es"
    assert catalogues.choose("xx", "de", "fr") == "fr"
    assert catalogues.choose(None, None, None) == "en"


@pytest.mark.parametrize(("value", "code"), [
    ("es-ES", "es"), ("fr_CA", "fr"), ("EN", "en"), ("en-US", "en"), ("Spanish", "es"), ("Español", "es"), ("français", "fr"),
    ("default", None), ("", None), ("  ", None), ("vi", "vi"),
])
def test_language_codes_are_normalised(value, code):
    assert codes.normalise(value) == code


@pytest.mark.parametrize("value", ["xx-1", "English and Spanish", "12", "e"])
def test_a_cell_that_names_no_language_is_refused_in_plain_words(value):
    with pytest.raises(ValueError, match="is not a language code"):
        codes.normalise(value)


def test_koha_lang_is_imported_normalised_and_a_bad_cell_rejected_with_its_line(db, staff, tmp_path):
    path = tmp_path / "koha.csv"
    koha_sample.write(path, rows=6)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    for row, lang in zip(rows, ["es-ES", "fr", "default", "Spanish", "", "xx-1"]):
        row["lang"] = lang
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    kind, chosen = mapping.preset("Koha borrowers")
    assert chosen["columns"]["language"] == "lang"
    result = imports.run_import(db, actor=staff["admin"], kind=kind, path=path, mapping=chosen)
    assert [(r.line, r.field) for r in result.rejected] == [(7, "language")]
    assert "'xx-1' is not a language code" in result.rejected[0].reason
    with db.read() as s:
        stored = dict(s.execute(select(Patron.ils_id, Patron.language)).all())
    assert [stored[row["cardnumber"]] for row in rows[:5]] == ["es", "fr", None, "es", None]


def test_the_language_is_a_segment_field_shown_on_the_profile_exported_and_erased(db, staff):
    with db.write() as s:
        ids = add_patrons(s, 3)
        s.get(Patron, ids[0]).language, s.get(Patron, ids[1]).language = "es", "fr"
    with db.read() as s:
        assert segments.count(s, actor=staff["manager"], rules={"field": "language", "op": "in", "value": ["es"]}) == 1
        assert segments.count(s, actor=staff["manager"], rules={"field": "language", "op": "not_in", "value": ["es"]}) == 2
        assert ("es", "español") in segments.choices(s, actor=staff["manager"])["language"]
    with db.write() as s:
        assert directory.profile(s, actor=staff["manager"], patron_id=ids[0])["details"]["Preferred language"] == "español"
        assert rights.access_export(s, actor=staff["admin"], patron_id=ids[0])["patron"]["language"] == "es"
        rights.erase(s, actor=staff["admin"], patron_id=ids[0])
    with db.read() as s:
        assert s.get(Patron, ids[0]).language is None


def draft_with_variants(db, staff) -> tuple[int, dict[str, int]]:
    """A draft to three patrons (Spanish, French, no language) with a Spanish variant; (campaign, patron by language)."""
    with db.write() as s:
        es, fr, none = add_patrons(s, 3)
        s.get(Patron, es).language, s.get(Patron, fr).language = "es", "fr"
        segment = add_segment(s, branches=["MAIN"])
        campaign = drafts.compose(s, actor=staff["manager"], name="Reading club", segment_id=segment, topic="events", subject="Hello {{ first_name }}",
                                  body="Dear {{ first_name }}, join us at {{ branch }}.", holdout_pct=0)
    with db.write() as s:
        variants.save(s, actor=staff["manager"], owner="campaign", owner_id=campaign.id, language="es-ES", subject="Hola {{ first_name }}",
                      body="Estimado/a {{ first_name }}, le esperamos en {{ branch }}.")
    return campaign.id, {"es": es, "fr": fr, "none": none}


def test_the_preview_shows_the_patrons_variant_or_the_chosen_language_else_the_default(db, staff):
    campaign_id, who = draft_with_variants(db, staff)
    with db.read() as s:
        assert variants.variants(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id) == {
            "es": ("Hola {{ first_name }}", "Estimado/a {{ first_name }}, le esperamos en {{ branch }}.")}
    preview = lambda pid, language=None: drafts.preview(db, actor=staff["manager"], campaign_id=campaign_id, patron_id=pid, language=language)  # noqa: E731
    assert preview(who["es"]).subject == "Hola Pat0"
    assert preview(who["fr"]).subject == "Hello Pat1"  # no French words: the default
    assert preview(who["none"]).subject == "Hello Pat2"
    assert preview(who["none"], "es").subject == "Hola Pat2"
    assert preview(who["es"], "en").subject == "Hello Pat0"


def test_a_variant_is_checked_like_the_message_and_only_a_drafts_words_change(db, staff):
    campaign_id, _who = draft_with_variants(db, staff)
    with db.write() as s, pytest.raises(ValueError, match="Language: 'klingon!' is not a language code"):
        variants.save(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id, language="klingon!", subject="x", body="y")
    with db.write() as s, pytest.raises(ValueError, match="Subject"):
        variants.save(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id, language="fr", subject="", body="Bonjour")
    with db.write() as s, pytest.raises(ValueError, match="no_such_field|no merge field|not a merge field|does not exist|undefined"):
        variants.save(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id, language="fr", subject="Bonjour", body="{{ no_such_field }}")
    with db.write() as s:
        drafts.launch(s, actor=staff["manager"], campaign_id=campaign_id)
    with db.write() as s, pytest.raises(ValueError, match="only a draft's words can be changed"):
        variants.save(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id, language="fr", subject="Bonjour", body="Bonjour")
    with db.write() as s, pytest.raises(ValueError, match="only a draft's words can be changed"):
        variants.remove(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id, language="es")


def test_removing_a_variant_gives_its_patrons_the_default_words(db, staff):
    campaign_id, who = draft_with_variants(db, staff)
    with db.write() as s:
        assert variants.remove(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id, language="es") is True
        assert variants.remove(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id, language="es") is False
    assert drafts.preview(db, actor=staff["manager"], campaign_id=campaign_id, patron_id=who["es"]).subject == "Hello Pat0"


def test_a_campaign_with_a_spanish_variant_sends_spanish_to_the_spanish_patron_over_smtp(db, staff, smtp):
    campaign_id, who = draft_with_variants(db, staff)
    with db.write() as s:
        assert drafts.launch(s, actor=staff["manager"], campaign_id=campaign_id)["recipients"] == 3
    assert sending.send_pending(db) == {"sent": 3}
    by_to = {str(m["To"]).split("<")[-1].rstrip(">"): m for m in smtp.messages}
    with db.read() as s:
        address = {key: s.get(Patron, pid).email for key, pid in who.items()}
    spanish = by_to[address["es"]]
    assert spanish["Subject"] == "Hola Pat0"
    assert "Estimado/a Pat0, le esperamos en Main Library." in spanish.get_body(("plain",)).get_content()
    assert "le esperamos" in spanish.get_body(("html",)).get_content()
    for key in ("fr", "none"):  # no French words: the default, in English
        assert by_to[address[key]]["Subject"].startswith("Hello ")
        assert "join us at Main Library" in by_to[address[key]].get_body(("plain",)).get_content()


def test_a_broken_variant_fails_only_its_patrons_message_with_the_reason(db, staff, smtp):
    with db.write() as s:
        es, en = add_patrons(s, 2)
        s.get(Patron, es).language = "es"
        campaign_id = add_campaign(s, patron_ids=[es, en])
        s.add(MessageVariant(owner="campaign", owner_id=campaign_id, language="es", subject="Hola", body="{{ first_name | no_such_filter }}"))
    assert sending.send_pending(db) == {"sent": 1, "failed": 1}
    with db.read() as s:
        failed = s.scalars(select(Message).where(Message.campaign_id == campaign_id, Message.status == "failed")).one()
    assert failed.patron_id == es and "could not be filled in" in failed.last_error


def test_the_preference_page_speaks_the_patrons_language_and_the_one_chosen(app, db):
    with db.write() as s:
        (es,) = add_patrons(s, 1)
        s.get(Patron, es).language = "es"
    at = app(page="pages/preferences.py", query={"token": preference_tokens.make(es)}).run()
    assert not at.exception and not at.error
    assert at.title[0].value == "Sus preferencias"
    assert any("Hola Pat0, elija lo que la biblioteca puede enviarle." in m.value for m in at.markdown)
    assert at.button(key="pref-unsubscribe").label == "Darse de baja de todo"
    assert at.radio(key="pref-lang").value == "es"
    at.radio(key="pref-lang").set_value("fr").run()  # the switcher
    assert at.query_params["lang"] == ["fr"] or at.query_params["lang"] == "fr"
    at.run()
    assert at.title[0].value == "Vos préférences"
    assert [s.value for s in at.subheader][:2] == ["Courriel", "SMS"]
    at.button(key="pref-unsubscribe").click().run()
    assert "Vous êtes désabonné de tout" in at.success[0].value


def test_the_preference_page_says_a_bad_link_in_french_when_asked(app):
    at = app(page="pages/preferences.py", query={"token": "tampered", "lang": "fr"}).run()
    assert not at.exception
    assert [e.value for e in at.error] == [catalogues.gettext("fr", preference_tokens.INVALID)]
    assert at.error[0].value.startswith("Ce lien n’est pas valide")


def unsubscribe_link(db, tmp_path, language: str | None) -> tuple[int, str]:
    with db.write() as s:
        (pid,) = add_patrons(s, 1)
        s.get(Patron, pid).language = language
        campaign_id = add_campaign(s, patron_ids=[pid])
    assert sending.send_pending(db)["sent"] == 1
    with db.read() as s:
        mid = s.scalar(select(Message.id).where(Message.campaign_id == campaign_id))
    return pid, f"/unsubscribe/{unsubscribe.token(mid)}"


def test_the_unsubscribe_page_speaks_spanish_to_a_spanish_patron_and_confirms_in_spanish(db, web, tmp_path):
    _pid, path = unsubscribe_link(db, tmp_path, "es")
    page = httpx.get(web + path)
    assert page.status_code == 200 and '<html lang="es">' in page.text
    assert "<h1>Darse de baja</h1>" in page.text and "¿Dejar de recibir los correos electrónicos sobre eventos de la biblioteca?" in page.text
    assert f'href="{path}?lang=fr" hreflang="fr" lang="fr">Français</a>' in page.text  # the switcher: plain links
    assert f'href="{path}?lang=en"' in page.text and "<script" not in page.text
    done = httpx.post(web + path, data=dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)))
    assert done.status_code == 200 and '<html lang="es">' in done.text
    assert "Ya no recibirá los correos electrónicos sobre eventos de la biblioteca." in done.text


def test_the_unsubscribe_page_follows_the_browser_then_the_switcher(db, web, tmp_path):
    _pid, path = unsubscribe_link(db, tmp_path, None)
    french = httpx.get(web + path, headers={"Accept-Language": "de-DE,fr;q=0.8"})
    assert '<html lang="fr">' in french.text and "Ne plus recevoir les courriels concernant les événements de la bibliothèque ?" in french.text
    english = httpx.get(web + path + "?lang=en", headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in english.text and "Stop emails about events from the library?" in english.text
    spanish = httpx.get(web + path + "?lang=es")
    assert "<h1>Darse de baja</h1>" in spanish.text
    broken = httpx.get(web + "/unsubscribe/1.forged", headers={"Accept-Language": "fr"})
    assert broken.status_code == 400 and catalogues.gettext("fr", preference_tokens.INVALID).replace("’", "&#x27;") in broken.text.replace("’", "&#x27;")


def test_staff_add_french_words_and_preview_in_french_on_the_campaigns_page(app, db, staff):
    campaign_id, who = draft_with_variants(db, staff)
    at = app(role="manager", page="pages/campaigns.py").run()
    at.selectbox(key="cmp-pick").set_value(campaign_id).run()
    assert not at.exception
    tag = f"campaign-{campaign_id}"
    assert at.selectbox(key=f"var-lang-{tag}").value == "es"  # the language written already comes first
    assert at.text_input(key=f"var-subject-{tag}-es").value == "Hola {{ first_name }}"
    at.selectbox(key=f"var-lang-{tag}").set_value("fr").run()
    at.text_input(key=f"var-subject-{tag}-fr").input("Bonjour {{ first_name }}")
    at.text_area(key=f"var-body-{tag}-fr").input("Chère lectrice, cher lecteur {{ first_name }}, à bientôt à {{ branch }}.")
    next(b for b in at.button if b.label == "Save these words").click().run()
    assert not at.exception and not at.error
    assert any("Saved the words in Français" in m.value for m in at.success)
    with db.read() as s:
        assert set(variants.variants(s, actor=staff["manager"], owner="campaign", owner_id=campaign_id)) == {"es", "fr"}
    assert drafts.preview(db, actor=staff["manager"], campaign_id=campaign_id, patron_id=who["fr"]).subject == "Bonjour Pat1"
    at.selectbox(key="cmp-preview-language").set_value("fr").run()
    assert not at.exception
    assert any(t.value == "Subject: Bonjour Pat0" for t in at.text)  # the first sample patron, in the chosen language
