"""A patron's own choice always wins: imports record consent as an edge and never over the patron's decision,
staff never re-grant a withdrawal, a notice preference is not a marketing opt-in, and the preference page
shows what is true and saves only what it showed. SQLite and PostgreSQL."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import select

from crmcore import imports
from crmcore.campaigns import preference_tokens, preferences
from crmcore.library import consent, patrons
from crmcore.models import Patron
from tests.campaign_fixtures import _isolated_mail_config  # noqa: F401

MAPPING = {"columns": {"ils_id": "card", "last_name": "surname", "email": "mail", "expires_on": "expires", "contact_method": "notice",
                       "consent_email": "news"}}
MARKETING = ("events", "new_materials", "newsletter")


def import_rows(db, actor, tmp_path, rows: list[dict], *, mapping=MAPPING, dry_run=False, name="ils.csv"):
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["card", "surname", "mail", "expires", "notice", "news"])
        writer.writeheader()
        writer.writerows(rows)
    return imports.run_import(db, actor=actor, kind="patrons", path=path, mapping=mapping, dry_run=dry_run)


def row(**changes) -> dict:
    return {"card": "21000001", "surname": "Okafor", "mail": "ngozi@example.org", "expires": "2027-05-01", "notice": "email", "news": "yes", **changes}


def patron_id(db) -> int:
    with db.read() as s:
        return s.scalar(select(Patron.id).where(Patron.ils_id == "21000001"))


def now(db, pid) -> dict:
    with db.read() as s:
        return {pair: on for pair, on in consent.current(s, pid).items()}


def test_an_import_never_regrants_what_the_patron_withdrew_on_the_preference_page(db, staff, tmp_path):
    import_rows(db, staff["admin"], tmp_path, [row()])
    pid = patron_id(db)
    assert all(now(db, pid)[("email", t)] for t in ("services", *MARKETING))
    with db.write() as s:
        preferences.unsubscribe_all(s, token=preference_tokens.make(pid))
    changed_expiry = import_rows(db, staff["admin"], tmp_path, [row(expires="2028-05-01")])  # the row changed, its consent did not
    assert changed_expiry.updated == 1 and not any(now(db, pid).values())
    import_rows(db, staff["admin"], tmp_path, [row(news="no")])
    regrant = import_rows(db, staff["admin"], tmp_path, [row(news="yes")])  # the ILS value itself changed back: still the patron's word
    assert not any(now(db, pid).values())
    assert "3 consent changes in the file were not applied because the patron decided otherwise" in regrant.describe()
    with db.read() as s:
        assert {r.source_class for r in consent.history(s, pid) if r.recorded_at > consent.history(s, pid)[-1].recorded_at} == {"patron"}
    # Only the patron's own new grant lifts it; an import then cannot take that back either.
    with db.write() as s:
        view = preferences.view(s, token=preference_tokens.make(pid))
        preferences.save(s, token=preference_tokens.make(pid), choices={**view.consent, ("email", "events"): True}, shown=view.consent)
    import_rows(db, staff["admin"], tmp_path, [row(news="no")])
    assert now(db, pid)[("email", "events")] is True


def test_an_unchanged_ils_value_does_not_undo_a_staff_withdrawal_but_a_changed_one_does(db, staff, tmp_path):
    import_rows(db, staff["admin"], tmp_path, [row()])
    pid = patron_id(db)
    with db.write() as s:
        assert consent.record(s, patron_id=pid, channel="email", topic="newsletter", granted=False, source="bulk clean-up", by=consent.STAFF)
    import_rows(db, staff["admin"], tmp_path, [row(expires="2029-01-01")])
    assert now(db, pid)[("email", "newsletter")] is False  # an edge, not a level: the ILS said "yes" all along
    import_rows(db, staff["admin"], tmp_path, [row(news="no")])
    import_rows(db, staff["admin"], tmp_path, [row(news="yes")])
    assert now(db, pid)[("email", "newsletter")] is True  # the ILS value changed: that is news


def test_staff_never_regrant_a_patrons_withdrawal_and_a_patrons_request_recorded_by_staff_is_theirs(db, staff, tmp_path):
    import_rows(db, staff["admin"], tmp_path, [row()])
    pid = patron_id(db)
    with db.write() as s:
        patrons.record_patron_request(s, actor=staff["manager"], patron_id=pid, channel="email", topic="events", granted=False, way="phone")
    with db.write() as s:
        assert consent.record(s, patron_id=pid, channel="email", topic="events", granted=True, source="bulk", by=consent.STAFF) is None
        assert consent.record(s, patron_id=pid, channel="email", topic="events", granted=True, source="import", by=consent.IMPORT) is None
    import_rows(db, staff["admin"], tmp_path, [row(news="no")])
    import_rows(db, staff["admin"], tmp_path, [row(news="yes")])
    assert now(db, pid)[("email", "events")] is False and now(db, pid)[("email", "newsletter")] is True
    with db.read() as s:
        request = next(r for r in consent.history(s, pid) if r.topic == "events" and r.source_class == "patron")
    assert request.recorded_by_id == staff["manager"].id and request.source == "patron's request phone, recorded by manager"
    with pytest.raises(ValueError, match="How the patron asked"), db.write() as s:
        patrons.record_patron_request(s, actor=staff["manager"], patron_id=pid, channel="email", topic="events", granted=True, way="telepathy")


def test_a_notice_preference_is_a_channel_for_services_not_a_marketing_opt_in(db, staff, tmp_path):
    notices = {"columns": {"ils_id": "card", "last_name": "surname", "contact_method": "notice"}}
    rows = [row(card="1", notice="email"), row(card="2", notice="print"), row(card="3", notice="none"), row(card="4", notice="carrier pigeon"),
            row(card="5", notice="")]
    dry = import_rows(db, staff["admin"], tmp_path, rows, mapping=notices, dry_run=True)
    text = dry.describe()
    for shown in ("'email' → email (library services only): 1 rows", "'print' → mail (library services only): 1 rows", "'none' → no channel: 1 rows",
                  "'carrier pigeon' → not understood, consent left as it was: 1 rows", "(empty) → nothing stated: 1 rows"):
        assert shown in text
    import_rows(db, staff["admin"], tmp_path, rows, mapping=notices)
    with db.read() as s:
        by_card = {p.ils_id: p for p in s.scalars(select(Patron))}
        granted = {card: {pair for pair, on in consent.current(s, p.id).items() if on} for card, p in by_card.items()}
    assert granted == {"1": {("email", "services")}, "2": {("mail", "services")}, "3": set(), "4": set(), "5": set()}
    assert [by_card[c].preferred_channel for c in "12345"] == ["email", "mail", None, None, None]


def test_the_preference_page_shows_the_truth_after_every_action_and_saves_only_what_it_showed(db, staff, tmp_path, app):
    import_rows(db, staff["admin"], tmp_path, [row()])
    pid = patron_id(db)
    at = app(role="viewer", page="pages/preferences.py")
    at.query_params["token"] = preference_tokens.make(pid)
    at.run()
    assert [c.value for c in at.checkbox if c.label == "Newsletter"][0] is True
    at.button(key="pref-unsubscribe").click().run()
    assert "unsubscribed from everything" in at.success[0].value
    assert not any(c.value for c in at.checkbox)  # the boxes show the withdrawal, not the old ticks
    next(b for b in at.button if b.label == "Save my choices").click().run()
    assert not any(now(db, pid).values())  # saving what it showed grants nothing back
    # Withdrawn elsewhere (one-click) while the page was open with the box ticked: a save leaves it withdrawn.
    with db.write() as s:
        view = preferences.view(s, token=preference_tokens.make(pid))
        preferences.save(s, token=preference_tokens.make(pid), choices={**view.consent, ("email", "events"): True}, shown=view.consent)
        shown_then = preferences.view(s, token=preference_tokens.make(pid)).consent
        consent.record(s, patron_id=pid, channel="email", topic="events", granted=False, source="one-click", by=consent.PATRON)
        assert preferences.save(s, token=preference_tokens.make(pid), choices=shown_then, shown=shown_then) == 0
    assert now(db, pid)[("email", "events")] is False


def test_an_opt_in_kept_as_a_koha_patron_attribute(db, staff, tmp_path):
    path = tmp_path / "koha.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["cardnumber", "surname", "patron_attributes"], ["1", "Ade", "INSTID:9,NEWSLETTER:1"], ["2", "Bo", "NEWSLETTER:0"],
                                 ["3", "Cy", "INSTID:3"]])
    chosen = {"columns": {"ils_id": "cardnumber", "last_name": "surname", "consent_email": "patron_attributes"},
              "attribute_codes": {"consent_email": "newsletter"}, "consent_topics": ["newsletter"]}
    imports.run_import(db, actor=staff["admin"], kind="patrons", path=path, mapping=chosen)
    with db.read() as s:
        by_card = {p.ils_id: consent.current(s, p.id) for p in s.scalars(select(Patron))}
    assert by_card == {"1": {("email", "newsletter"): True}, "2": {}, "3": {}}  # a "no" with nothing to withdraw records nothing
    with pytest.raises(ValueError, match="can hold an opt-in only"):
        imports.run_import(db, actor=staff["admin"], kind="patrons", path=path, mapping={**chosen, "attribute_codes": {"last_name": "X"}})
