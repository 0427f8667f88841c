"""Organizations, contacts, interactions, duplicates and merging, search, export and KPIs, on both backends."""

from __future__ import annotations

import io
import re
from hashlib import sha1
from datetime import date, datetime, timedelta, timezone

import openpyxl
import pandas as pd
import pytest
from sqlmodel import func, select

from crmcore import exports
from crmcore.models import (
    AuditLog,
    Contact,
    ContactTag,
    InteractionContact,
    InteractionOrganization,
    Organization,
    OrganizationTag,
    Patron,
    Task,
)
from crmcore.outreach import contacts, duplicates, interactions, organizations
from crmcore.outreach.kpis import outreach_kpis

T0 = datetime(2024, 5, 10, 15, 0, tzinfo=timezone.utc)


def org(db, actor, **fields):
    with db.write() as s:
        return organizations.create_organization(s, actor=actor, **fields).id


def contact(db, actor, **fields):
    with db.write() as s:
        return contacts.create_contact(s, actor=actor, **fields).id


def log(db, actor, **fields):
    with db.write() as s:
        return interactions.log_interaction(s, actor=actor, **fields).id


def audit_actions(db, entity_id=None):
    with db.read() as s:
        q = select(AuditLog.action)
        if entity_id is not None:
            q = q.where(AuditLog.entity_id == str(entity_id))
        return list(s.exec(q.order_by(AuditLog.id)))


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"name": "  "}, "name: required"),
        ({"name": "PTA", "email": "not-an-email"}, "email: 'not-an-email' is not a valid email address"),
        ({"name": "PTA", "phone": "12"}, "phone: '12' is not a valid phone number"),
        ({"name": "PTA", "website": "javascript:alert(1)"}, "website: 'javascript:alert(1)' must be a web address"),
        ({"name": "x" * 201}, "name: at most 200 characters"),
    ],
)
def test_bad_organization_input_names_the_field_and_stores_nothing(db, staff, fields, message):
    with pytest.raises(ValueError, match=re.escape(message)), db.write() as s:
        organizations.create_organization(s, actor=staff["outreach"], **fields)
    with db.read() as s:
        assert s.exec(select(func.count()).select_from(Organization)).one() == 0


def test_create_and_edit_an_organization_normalises_tags_and_audits_changed_fields(db, staff):
    oid = org(db, staff["outreach"], name=" Lincoln PTA ", email="PTA@Lincoln.example.org", phone="(202) 555-0143", website="https://pta.example.org", tags=["Schools", " schools", "Parents"])
    with db.write() as s:
        organizations.update_organization(s, actor=staff["manager"], organization_id=oid, sector="education", phone="", tags=["schools"])
    with db.read() as s:
        row = organizations.get_organization(s, actor=staff["outreach"], organization_id=oid)
        detail = s.exec(select(AuditLog.detail).where(AuditLog.action == "organization.update")).one()
    assert row["name"] == "Lincoln PTA" and row["email"] == "PTA@lincoln.example.org" and row["phone"] is None
    assert row["sector"] == "education" and row["tags"] == ["schools"]
    assert sorted(detail["fields"]) == ["phone", "sector", "tags"]
    assert audit_actions(db, oid) == ["organization.create", "organization.update"]


def test_archive_hides_from_lists_and_pickers_but_keeps_the_record(db, staff):
    oid = org(db, staff["outreach"], name="Old Garden Club")
    with db.write() as s:
        organizations.archive_organization(s, actor=staff["outreach"], organization_id=oid)
    with db.read() as s:
        assert organizations.list_organizations(s, actor=staff["outreach"]) == []
        assert oid not in organizations.organization_choices(s, actor=staff["outreach"])
        assert [r["id"] for r in organizations.list_organizations(s, actor=staff["outreach"], include_archived=True)] == [oid]


def test_find_organization_for_upsert_by_email_then_name_and_through_merges(db, staff):
    a = org(db, staff["outreach"], name="Friends  of the Library", email="friends@example.org")
    b = org(db, staff["outreach"], name="Rotary Club")
    with db.read() as s:
        assert organizations.find_organization(s, actor=staff["outreach"], email="FRIENDS@example.org").id == a
        assert organizations.find_organization(s, actor=staff["outreach"], name="friends of the  library").id == a
        assert organizations.find_organization(s, actor=staff["outreach"], name="Nobody") is None
    with db.write() as s:
        duplicates.merge_organizations(s, actor=staff["outreach"], keep_id=a, merge_id=b)
    with db.read() as s:
        assert organizations.find_organization(s, actor=staff["outreach"], name="rotary club").id == a


def test_contact_can_link_to_a_patron_by_ils_id_and_refuses_an_unknown_one(db, staff):
    with db.write() as s:
        s.add(Patron(ils_id="P-77", last_name="Okafor"))
    oid = org(db, staff["outreach"], name="YMCA")
    cid = contact(db, staff["outreach"], first_name="Ada", last_name="Okafor", organization_id=oid, patron_ils_id="P-77", email="ada@example.org", tags=["Coach"])
    with db.read() as s:
        row = contacts.get_contact(s, actor=staff["outreach"], contact_id=cid)
        assert contacts.find_contact(s, actor=staff["outreach"], first_name="ada", last_name="OKAFOR", organization_id=oid).id == cid
    assert row["patron_ils_id"] == "P-77" and row["organization_name"] == "YMCA" and row["tags"] == ["coach"]
    with pytest.raises(ValueError, match="patron_ils_id: no patron with ILS id 'P-404'"), db.write() as s:
        contacts.update_contact(s, actor=staff["outreach"], contact_id=cid, patron_ils_id="P-404")
    with pytest.raises(ValueError, match="last_name: required"), db.write() as s:
        contacts.create_contact(s, actor=staff["outreach"], last_name="")


def test_quick_log_creates_organizations_people_and_tags_inline(db, staff):
    iid = log(db, staff["outreach"], kind="event_table", new_organizations=["Farmers Market"], new_contacts=["Maria Lopez", {"last_name": "Chen", "email": "chen@example.org"}],
              tags=["Summer", "markets"], notes="Met the PTA", cards_issued=12, signups=30, follow_up_on=date(2024, 6, 1))
    with db.read() as s:
        row = interactions.search_interactions(s, actor=staff["manager"])[0]
        market = organizations.find_organization(s, actor=staff["outreach"], name="farmers market")
        people = s.exec(select(Contact).order_by(Contact.last_name)).all()
    assert row["id"] == iid and row["type"] == "Event table" and row["logged_by"] == "Outreach Staff"
    assert row["organizations"] == "Farmers Market" and row["people"] == "Chen, Maria Lopez" and row["tags"] == "markets, summer"
    assert (row["cards_issued"], row["signups"], row["follow_up_on"]) == (12, 30, date(2024, 6, 1))
    assert [(p.first_name, p.last_name, p.organization_id) for p in people] == [(None, "Chen", market.id), ("Maria", "Lopez", market.id)]
    assert "interaction.create" in audit_actions(db)


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"kind": "meeting"}, "pick or add at least one organization or person"),
        ({"kind": "lunch", "new_organizations": ["X"]}, "type: 'lunch' is not an interaction type"),
        ({"kind": "meeting", "new_organizations": ["X"], "cards_issued": -1}, "cards_issued: must be a whole number, 0 or more"),
        ({"kind": "meeting", "new_contacts": [{"last_name": "Z", "email": "bad@"}]}, "email: 'bad@' is not a valid email address"),
    ],
)
def test_quick_log_refuses_bad_input_and_stores_nothing(db, staff, fields, message):
    with pytest.raises(ValueError, match=re.escape(message)), db.write() as s:
        interactions.log_interaction(s, actor=staff["outreach"], **fields)
    with db.read() as s:
        assert s.exec(select(func.count()).select_from(Organization)).one() == 0


def test_partnership_interaction_makes_the_organization_a_partner(db, staff):
    oid = org(db, staff["outreach"], name="Food Bank")
    log(db, staff["outreach"], kind="partnership", organization_ids=[oid], occurred_at=T0)
    with db.read() as s:
        o = s.get(Organization, oid)
    assert o.is_partner and o.partner_since == T0.date()


def test_timeline_is_newest_first_with_staff_and_includes_the_organizations_people(db, staff):
    oid = org(db, staff["outreach"], name="Senior Center")
    cid = contact(db, staff["outreach"], first_name="Bo", last_name="Diaz", organization_id=oid)
    first = log(db, staff["outreach"], kind="visit", organization_ids=[oid], occurred_at=T0)
    second = log(db, staff["manager"], kind="phone", contact_ids=[cid], occurred_at=T0 + timedelta(days=3))
    other = log(db, staff["outreach"], kind="email", new_organizations=["Unrelated"], occurred_at=T0 + timedelta(days=5))
    with db.read() as s:
        org_line = interactions.timeline(s, actor=staff["outreach"], organization_id=oid)
        person_line = interactions.timeline(s, actor=staff["outreach"], contact_id=cid)
    assert [(r["id"], r["logged_by"]) for r in org_line] == [(second, "Manager Staff"), (first, "Outreach Staff")]
    assert [r["id"] for r in person_line] == [second] and other not in [r["id"] for r in org_line]


def test_search_filters_by_date_type_tag_staff_organization_and_text(db, staff):
    a = org(db, staff["outreach"], name="School A")
    b = org(db, staff["outreach"], name="School B")
    i1 = log(db, staff["outreach"], kind="meeting", organization_ids=[a], tags=["schools"], notes="Budget talk", occurred_at=T0)
    i2 = log(db, staff["manager"], kind="presentation", organization_ids=[b], tags=["teens"], occurred_at=T0 + timedelta(days=10))
    i3 = log(db, staff["outreach"], kind="meeting", organization_ids=[a, b], occurred_at=T0 + timedelta(days=40))

    def ids(**filters):
        with db.read() as s:
            return [r["id"] for r in interactions.search_interactions(s, actor=staff["outreach"], **filters)]

    assert ids() == [i3, i2, i1]
    assert ids(date_from=T0.date(), date_to=T0.date() + timedelta(days=10)) == [i2, i1]
    assert ids(kinds=["meeting"]) == [i3, i1]
    assert ids(tags=["Teens"]) == [i2]
    assert ids(staff_ids=[staff["manager"].id]) == [i2]
    assert ids(organization_ids=[b]) == [i3, i2]
    assert ids(text="budget") == [i1]
    assert ids(text="100%_") == []


def test_edit_interaction_changes_links_and_audits(db, staff):
    a = org(db, staff["outreach"], name="Museum")
    iid = log(db, staff["outreach"], kind="visit", organization_ids=[a])
    b = org(db, staff["outreach"], name="Zoo")
    with db.write() as s:
        interactions.update_interaction(s, actor=staff["manager"], interaction_id=iid, kind="meeting", organization_ids=[b], signups=4, notes="rescheduled")
    with db.read() as s:
        row = interactions.search_interactions(s, actor=staff["outreach"])[0]
        detail = s.exec(select(AuditLog.detail).where(AuditLog.action == "interaction.update")).one()
    assert (row["type"], row["organizations"], row["signups"], row["notes"]) == ("Meeting", "Zoo", 4, "rescheduled")
    assert set(detail["fields"]) == {"kind", "signups", "notes", "organizations"}
    with pytest.raises(ValueError, match="needs at least one organization or person"), db.write() as s:
        interactions.update_interaction(s, actor=staff["manager"], interaction_id=iid, organization_ids=[])


def test_possible_duplicates_need_an_email_a_like_name_or_a_phone_with_a_like_name_strongest_first(db, staff):
    a = org(db, staff["outreach"], name="The Lincoln Elementary PTA")
    b = org(db, staff["outreach"], name="Lincoln Elementary P.T.A.")
    c = org(db, staff["outreach"], name="Rotary", email="info@rotary.example.org")
    d = org(db, staff["outreach"], name="Rotary Club of Springfield", email="INFO@rotary.example.org")
    org(db, staff["outreach"], name="Garden Club", phone="202-555-0101")  # a switchboard shared by unrelated groups
    org(db, staff["outreach"], name="Community Gardeners", phone="+1 202 555 0101")
    g = org(db, staff["outreach"], name="Northside Boys and Girls Club", phone="202-555-0199")
    h = org(db, staff["outreach"], name="Northside Boys & Girls Club of America", phone="+1 202 555 0199")
    org(db, staff["outreach"], name="Chess Club")
    with db.read() as s:
        found = duplicates.organization_duplicates(s, actor=staff["outreach"])
        similar = duplicates.similar_organizations(s, actor=staff["outreach"], name="lincoln elementary pta")
        by_phone = duplicates.similar_organizations(s, actor=staff["outreach"], name="Garden Club Annex", phone="202 555 0101")
    pairs = [(p["keep_id"], p["other_id"], p["reason"]) for p in found]
    assert pairs == [(c, d, "same email"), (g, h, "same phone, similar name"), (a, b, "similar name")]
    assert [p["strength"] for p in found] == sorted((p["strength"] for p in found), reverse=True)
    assert {r["id"] for r in similar} == {a, b}
    assert by_phone == []


def test_contact_duplicates(db, staff):
    a = contact(db, staff["outreach"], first_name="Jon", last_name="Smith", email="js@example.org")
    b = contact(db, staff["outreach"], first_name="John", last_name="Smith")
    c = contact(db, staff["outreach"], first_name="Ann", last_name="Lee", email="JS@example.org")
    contact(db, staff["outreach"], first_name="Bo", last_name="Park", phone="202-555-0101")  # the same office line
    contact(db, staff["outreach"], first_name="Di", last_name="Okafor", phone="202-555-0101")
    with db.read() as s:
        pairs = {(p["keep_id"], p["other_id"]): p["reason"] for p in duplicates.contact_duplicates(s, actor=staff["outreach"])}
    assert pairs == {(a, b): "similar name", (a, c): "same email"}


def test_a_pair_marked_not_a_duplicate_is_never_suggested_again_and_pages_hold_twenty(db, staff):
    ids = [org(db, staff["outreach"], name=f"Club {sha1(str(n).encode()).hexdigest()[:10]}", email=f"club{n // 2}@example.org") for n in range(50)]  # 25 pairs by email
    with db.read() as s:
        first = duplicates.suggestions(s, actor=staff["outreach"], kind="organization", page=1)
        last = duplicates.suggestions(s, actor=staff["outreach"], kind="organization", page=9)  # past the end: the last page
    assert (first["total"], first["pages"], len(first["pairs"]), last["page"], len(last["pairs"])) == (25, 2, 20, 2, 5)
    assert {(p["keep_id"], p["other_id"]) for p in first["pairs"] + last["pairs"]} == {(ids[n], ids[n + 1]) for n in range(0, 50, 2)}
    with db.write() as s:
        duplicates.not_a_duplicate(s, actor=staff["outreach"], kind="organization", first_id=ids[1], second_id=ids[0])
        duplicates.not_a_duplicate(s, actor=staff["outreach"], kind="organization", first_id=ids[0], second_id=ids[1])  # twice is once
    with db.read() as s:
        after = duplicates.suggestions(s, actor=staff["outreach"], kind="organization")
        logged = s.exec(select(AuditLog).where(AuditLog.action == "organization.not_duplicate")).all()
    assert after["total"] == 24 and (ids[0], ids[1]) not in {(p["keep_id"], p["other_id"]) for p in after["pairs"]}
    assert [(e.entity_id, e.detail) for e in logged] == [(str(ids[0]), {"other": ids[1]})]
    with pytest.raises(ValueError, match="pick two different ones"), db.write() as s:
        duplicates.not_a_duplicate(s, actor=staff["outreach"], kind="organization", first_id=ids[2], second_id=ids[2])
    with pytest.raises(ValueError, match="organization or contact"), db.read() as s:
        duplicates.suggestions(s, actor=staff["outreach"], kind="patron")


def test_merge_organizations_keeps_every_interaction_contact_tag_and_task(db, staff):
    keep = org(db, staff["outreach"], name="Lincoln PTA", tags=["schools"])
    dup = org(db, staff["outreach"], name="Lincoln P.T.A.", email="pta@example.org", tags=["parents", "schools"], is_partner=True)
    cid = contact(db, staff["outreach"], last_name="Park", organization_id=dup)
    both = log(db, staff["outreach"], kind="meeting", organization_ids=[keep, dup])
    only_dup = [log(db, staff["outreach"], kind="visit", organization_ids=[dup]) for _ in range(3)]
    with db.write() as s:
        s.add(Task(title="Call back", organization_id=dup, assignee_id=staff["outreach"].id))
    with db.write() as s:
        duplicates.merge_organizations(s, actor=staff["outreach"], keep_id=keep, merge_id=dup)
    with db.read() as s:
        linked = set(s.exec(select(InteractionOrganization.interaction_id).where(InteractionOrganization.organization_id == keep)))
        gone = s.exec(select(func.count()).select_from(InteractionOrganization).where(InteractionOrganization.organization_id == dup)).one()
        tags = set(s.exec(select(OrganizationTag.tag_id).where(OrganizationTag.organization_id == keep)))
        kept, merged = s.get(Organization, keep), s.get(Organization, dup)
        moved_contact, task = s.get(Contact, cid), s.exec(select(Task)).one()
        detail = s.exec(select(AuditLog.detail).where(AuditLog.action == "organization.merge")).one()
    assert linked == {both, *only_dup} and gone == 0 and len(tags) == 2
    assert kept.email == "pta@example.org" and kept.is_partner
    assert merged.archived and merged.merged_into_id == keep
    assert moved_contact.organization_id == keep and task.organization_id == keep
    assert detail == {"merged": dup, "interactions_moved": 3, "filled": ["email"]}
    with pytest.raises(ValueError, match="already merged"), db.write() as s:
        duplicates.merge_organizations(s, actor=staff["outreach"], keep_id=keep, merge_id=dup)


def test_merge_contacts_keeps_interactions_and_tags(db, staff):
    keep = contact(db, staff["outreach"], first_name="Jon", last_name="Smith")
    dup = contact(db, staff["outreach"], first_name="John", last_name="Smith", phone="202-555-0188", tags=["coach"])
    i1 = log(db, staff["outreach"], kind="phone", contact_ids=[dup])
    i2 = log(db, staff["outreach"], kind="phone", contact_ids=[keep, dup])
    with db.write() as s:
        duplicates.merge_contacts(s, actor=staff["manager"], keep_id=keep, merge_id=dup)
    with db.read() as s:
        linked = set(s.exec(select(InteractionContact.interaction_id).where(InteractionContact.contact_id == keep)))
        tags = list(s.exec(select(ContactTag.tag_id).where(ContactTag.contact_id == keep)))
        kept = s.get(Contact, keep)
        timeline = interactions.timeline(s, actor=staff["outreach"], contact_id=keep)
    assert linked == {i1, i2} and len(tags) == 1 and kept.phone == "+12025550188"
    assert [r["id"] for r in timeline] == [i2, i1]


def test_export_neutralises_formula_cells_in_csv_and_xlsx(db, staff):
    log(db, staff["outreach"], kind="meeting", new_organizations=["=HYPERLINK(\"http://evil\",\"x\")"], notes="+1 call", outcome="@SUM(A1)", tags=["-x"])
    with db.read() as s:
        frame = interactions.export_frame(interactions.search_interactions(s, actor=staff["outreach"]))
    csv = pd.read_csv(io.BytesIO(exports.to_csv(frame)), encoding="utf-8-sig", dtype=str)
    assert csv.loc[0, "organizations"].startswith("'=HYPERLINK") and csv.loc[0, "notes"] == "'+1 call"
    assert csv.loc[0, "outcome"] == "'@SUM(A1)" and csv.loc[0, "tags"] == "'-x"
    sheet = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(frame))).active
    header = [c.value for c in sheet[1]]
    cells = dict(zip(header, [c for c in sheet[2]]))
    assert cells["organizations"].value.startswith("'=HYPERLINK") and cells["organizations"].data_type == "s"
    assert cells["notes"].value == "'+1 call"


def test_kpis_count_interactions_organizations_partners_overdue_and_cards(db, staff):
    a = org(db, staff["outreach"], name="Library Friends")
    b = org(db, staff["outreach"], name="Scouts")
    log(db, staff["outreach"], kind="event_table", organization_ids=[a, b], occurred_at=T0, cards_issued=10, signups=4, follow_up_on=date(2024, 5, 20))
    log(db, staff["manager"], kind="event_table", organization_ids=[a], occurred_at=T0 + timedelta(days=25), cards_issued=5)
    log(db, staff["manager"], kind="partnership", organization_ids=[b], occurred_at=T0 + timedelta(days=26))
    log(db, staff["outreach"], kind="meeting", organization_ids=[b], occurred_at=T0 - timedelta(days=60))
    with db.read() as s:
        kpis = outreach_kpis(s, actor=staff["outreach"], date_from=date(2024, 5, 1), date_to=date(2024, 6, 30), today=date(2024, 6, 1))
        viewer = outreach_kpis(s, actor=staff["viewer"], date_from=date(2024, 5, 1), date_to=date(2024, 6, 30), today=date(2024, 6, 1))
    assert (kpis["interactions"], kpis["organizations_touched"], kpis["new_partners"]) == (3, 2, 1)
    assert (kpis["overdue_follow_ups"], kpis["cards_issued"], kpis["signups"]) == (1, 15, 4)
    assert kpis["by_month_type"].values.tolist() == [["2024-05", "Event table", 1], ["2024-06", "Event table", 1], ["2024-06", "Partnership", 1]]
    assert kpis["by_month_staff"].values.tolist() == [["2024-05", "Outreach Staff", 1], ["2024-06", "Manager Staff", 2]]
    assert viewer["by_month_staff"] is None and viewer["interactions"] == 3
    with pytest.raises(ValueError, match="date range"), db.read() as s:
        outreach_kpis(s, actor=staff["viewer"], date_from=date(2024, 6, 1), date_to=date(2024, 5, 1))
