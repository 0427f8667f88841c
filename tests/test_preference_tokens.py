"""Signed preference links: tampering, expiry, one patron's link never reaches another, the key file."""

from __future__ import annotations

import stat

import pytest

from crmcore.admin import config
from crmcore.campaigns import preference_tokens, preferences
from crmcore.library import consent
from tests.campaign_fixtures import _isolated_mail_config, add_patrons  # noqa: F401


def test_a_token_names_its_patron_and_nothing_else():
    token = preference_tokens.make(42)
    assert preference_tokens.read(token) == 42
    for bad in ("", None, token[:-1], token.replace(".", "!", 1), "x" + token, preference_tokens.make(43)[:20] + token[20:]):
        with pytest.raises(ValueError, match="not valid"):
            preference_tokens.read(bad)


def test_an_expired_token_says_so(monkeypatch):
    token = preference_tokens.make(7)
    with pytest.raises(ValueError, match="expired"):
        preference_tokens.read(token, max_age=-1)


def test_a_token_signed_with_another_key_is_refused(monkeypatch):
    token = preference_tokens.make(7)
    monkeypatch.setenv("CRM_SECRET_KEY", "another key")
    with pytest.raises(ValueError, match="not valid"):
        preference_tokens.read(token)


def test_the_key_is_generated_once_into_a_private_file(monkeypatch, tmp_path):
    monkeypatch.delenv("CRM_SECRET_KEY")
    monkeypatch.setattr(config, "DATA_DIR", tmp_path)
    token = preference_tokens.make(5)
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_text()) > 40
    first = key_file.read_text()
    assert preference_tokens.read(token) == 5 and key_file.read_text() == first


def test_a_link_for_patron_a_only_ever_changes_patron_a(db):
    with db.write() as s:
        a, b = add_patrons(s, 2)
    with db.write() as s:
        assert preferences.unsubscribe_all(s, token=preference_tokens.make(a)) == 1
        assert preferences.save(s, token=preference_tokens.make(a), choices={("sms", "events"): True}, shown={}) == 1
    with db.read() as s:
        mine = consent.current(s, a)  # "everything" is every channel × topic, withdrawn by the patron; then one grant back
        assert {pair for pair, on in mine.items() if on} == {("sms", "events")} and len(mine) == len(consent.CHANNELS) * len(consent.TOPICS)
        assert consent.current(s, b) == {("email", "events"): True}
        shown = preferences.view(s, token=preference_tokens.make(b))
    assert shown.first_name == "Pat1" and shown.consent[("email", "events")] and not shown.consent[("sms", "events")]
    with pytest.raises(ValueError, match="Unknown topic"), db.write() as s:
        preferences.save(s, token=preference_tokens.make(a), choices={("email", "gossip"): True}, shown={})
