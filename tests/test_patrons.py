"""The patron directory: search, masking per role, audit of unmasked views, and the page flow."""

import pytest
from sqlalchemy import select

from crmcore.admin.permissions import PermissionDenied
from crmcore.library import consent, patrons
from crmcore.models import AuditLog, Patron


def _audits(db, action):
    with db.read() as s:
        return s.execute(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).scalars().all()


def _someone(db, *, with_contact=True) -> Patron:
    with db.read() as s:
        stmt = select(Patron).where(Patron.phone.is_not(None), Patron.email.is_not(None)) if with_contact else select(Patron)
        return s.execute(stmt.order_by(Patron.id)).scalars().first()


def test_masks():
    assert patrons.mask_name("Jane", "Garcia") == "J••• G•••"
    assert patrons.mask_email("jane.garcia@example.org") == "j•••@example.org"
    assert patrons.mask_phone("+13125550142") == "•••• 0142"
    assert patrons.mask_name(None, None) == "•••" and patrons.mask_email(None) is None


@pytest.mark.parametrize("by", ["ils_id", "name", "email", "phone"])
def test_a_manager_finds_a_patron_by_each_field_and_the_view_is_audited(db, staff, demo, by):
    p = _someone(db)
    query = {"ils_id": p.ils_id, "name": f"{p.first_name} {p.last_name.lower()}", "email": p.email.upper(), "phone": p.phone[2:]}[by]
    with db.write() as s:
        found = patrons.search(s, actor=staff["manager"], by=by, query=query)
    assert p.id in [r["id"] for r in found["rows"]]
    row = next(r for r in found["rows"] if r["id"] == p.id)
    assert (row["Name"], row["Email"], row["Phone"]) == (f"{p.first_name} {p.last_name}", p.email, p.phone)
    (entry,) = _audits(db, "patron.search")
    assert entry.actor_id == staff["manager"].id and p.id in entry.detail["patron_ids"]


def test_a_page_search_reads_in_a_read_transaction_and_audits_the_names_shown_in_its_own(db, staff, demo):
    """search_shown (the directory page's): the same rows as search, the same audit entry, committed; masked rows none."""
    p = _someone(db)
    with db.write() as s:
        expected = patrons.search(s, actor=staff["manager"], by="name", query=p.last_name)
    found = patrons.search_shown(db, actor=staff["manager"], by="name", query=p.last_name)
    assert found == expected and p.id in [r["id"] for r in found["rows"]]
    first, second = _audits(db, "patron.search")
    assert second.actor_id == first.actor_id == staff["manager"].id and second.detail == first.detail
    assert second.detail["patron_ids"] == [r["id"] for r in found["rows"]] and second.detail["by"] == "name"
    masked = patrons.search_shown(db, actor=staff["outreach"], by="ils_id", query=p.ils_id)
    assert [r["id"] for r in masked["rows"]] == [p.id] and len(_audits(db, "patron.search")) == 2


def test_outreach_sees_masked_rows_and_may_not_search_by_personal_data(db, staff, demo):
    p = _someone(db)
    with db.write() as s:
        found = patrons.search(s, actor=staff["outreach"], by="ils_id", query=p.ils_id)
    (row,) = found["rows"]
    assert row["Name"] == patrons.mask_name(p.first_name, p.last_name)
    assert row["Email"] == patrons.mask_email(p.email) and p.email not in str(row)
    assert row["Phone"].endswith(p.phone[-4:]) and p.phone not in str(row)
    for by, query in [("name", p.last_name), ("email", p.email), ("phone", p.phone)]:
        with pytest.raises(PermissionDenied, match="ILS id, zone or branch"), db.write() as s:
            patrons.search(s, actor=staff["outreach"], by=by, query=query)
    assert _audits(db, "patron.search") == []


def test_search_by_zone_and_branch_pages_through_results(db, staff, demo):
    with db.read() as s:
        zone_id = s.execute(select(Patron.zone_id).where(Patron.zone_id.is_not(None))).scalars().first()
        expected = set(s.execute(select(Patron.id).where(Patron.zone_id == zone_id)).scalars())
    seen, offset = [], 0
    while True:
        with db.write() as s:
            page = patrons.search(s, actor=staff["outreach"], zone_id=zone_id, limit=7, offset=offset)
        seen += [r["id"] for r in page["rows"]]
        if not page["more"]:
            break
        offset += 7
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    with db.write() as s:
        both = patrons.search(s, actor=staff["admin"], branch_id=1, zone_id=zone_id, limit=200)["rows"]
    with db.read() as s:
        expected_both = set(s.execute(select(Patron.id).where(Patron.zone_id == zone_id, Patron.branch_id == 1)).scalars())
    assert {r["id"] for r in both} == expected_both


def test_search_needs_something_to_search_for(db, staff):
    with pytest.raises(ValueError, match="choose a zone or a branch"), db.write() as s:
        patrons.search(s, actor=staff["manager"], by="name", query="  ")
    with pytest.raises(ValueError, match="phone"), db.write() as s:
        patrons.search(s, actor=staff["manager"], by="phone", query="not a number")


def test_unmasked_profile_is_audited_and_masked_one_is_not(db, staff, demo):
    p = _someone(db)
    with db.write() as s:
        full = patrons.profile(s, actor=staff["manager"], patron_id=p.id)
        masked = patrons.profile(s, actor=staff["outreach"], patron_id=p.id)
    assert full["details"]["Email"] == p.email and full["details"]["Phone"] == p.phone
    assert masked["details"]["Email"] == patrons.mask_email(p.email) and masked["masked"]
    assert p.last_name not in str(masked["details"])
    (entry,) = _audits(db, "patron.view")
    assert entry.actor_id == staff["manager"].id and entry.entity_id == str(p.id)


def test_profile_shows_consent_history_and_activity_from_the_rollups(db, staff, demo):
    with db.read() as s:
        p = s.execute(select(Patron).where(Patron.last_activity_on.is_not(None)).order_by(Patron.last_activity_on.desc())).scalars().first()
    with db.write() as s:
        consent.record(s, patron_id=p.id, channel="sms", topic="events", granted=True, source="front desk")
        record = patrons.profile(s, actor=staff["admin"], patron_id=p.id)
    assert record["consent"]["sms"]["events"] is True
    assert record["consent_history"][0]["Source"] == "front desk"
    assert record["activity"] and sum(v for row in record["activity"] for k, v in row.items() if k != "Month") > 0


def test_profile_of_a_missing_patron_is_a_clear_error(db, staff):
    with pytest.raises(LookupError, match="No patron with id 999"), db.write() as s:
        patrons.profile(s, actor=staff["manager"], patron_id=999)


def _open_profile(at, *, query: str):
    """Search by ILS id, then open the first result's profile."""
    at.text_input[0].input(query)
    at.button[0].click().run()  # Search
    assert not at.exception and not at.error, [e.value for e in at.error]
    next(b for b in at.button if b.label == "Open profile").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def test_page_flow_as_manager_shows_unmasked_data_and_audits(app, db, staff, demo):
    p = _someone(db)
    at = app(role="manager", page="pages/patrons.py").run()
    _open_profile(at, query=p.ils_id)
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
    assert p.email in shown and p.phone in shown
    assert any(f"{p.first_name} {p.last_name}" in h.value.replace("\\", "") for h in at.subheader)
    views = _audits(db, "patron.view")
    assert [(v.actor_id, v.entity_id) for v in views] == [(staff["manager"].id, str(p.id))]
    searches = _audits(db, "patron.search")  # the result list shown (on each run that shows it), in a write of its own
    assert searches and all(s.actor_id == staff["manager"].id and s.detail["patron_ids"] == [p.id] for s in searches)


def test_page_flow_as_outreach_shows_masked_data_and_writes_no_audit(app, db, staff, demo):
    p = _someone(db)
    at = app(role="outreach", page="pages/patrons.py").run()
    assert [o for o in at.selectbox[0].options] == ["ILS id"]
    _open_profile(at, query=p.ils_id)
    shown = " ".join(str(df.value.to_dict()) for df in at.dataframe) + " ".join(h.value for h in at.subheader)
    assert p.email not in shown and p.phone not in shown and p.last_name not in shown
    assert patrons.mask_email(p.email) in shown
    assert _audits(db, "patron.view") == [] and _audits(db, "patron.search") == []


def test_clicking_a_patron_row_opens_their_profile(app, db, staff, demo):
    """Selecting a row of the results (a click in the browser) opens that patron, without the "Open profile" form."""
    with db.read() as s:
        wanted = s.execute(select(Patron).where(Patron.last_name.is_not(None)).order_by(Patron.id)).scalars().first()
    at = app(role="manager", page="pages/patrons.py").run()
    at.selectbox[0].set_value("name")
    at.text_input[0].input(wanted.last_name)
    at.button[0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not at.subheader  # nothing opened yet
    results = at.dataframe[0].value
    row = next(i for i, ils in enumerate(results["ILS id"]) if ils == wanted.ils_id)
    at.session_state["patron-rows-0"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    assert any(f"{wanted.first_name} {wanted.last_name}" in h.value.replace("\\", "") for h in at.subheader)
