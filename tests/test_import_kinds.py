"""Activity, event attendance (LibCal), zones with shapes and organizations/contacts imports."""

import json
from datetime import date
from pathlib import Path

from sqlmodel import func, select

from crmcore import imports
from crmcore.imports import mapping
from crmcore.models import ActivityEvent, ActivityMonthly, Contact, Organization, Patron, ProgramEvent, Zone

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
ACTIVITY = {"columns": {"patron": "patron_barcode", "occurred_on": "date", "kind": "type", "branch": "branch", "count": "count", "category": "genre"}}


def run(db, actor, kind, path, chosen, **kw):
    return imports.run_import(db, actor=actor, kind=kind, path=path, mapping=chosen, **kw)


def with_patrons(db, actor):
    imports.run_import(db, actor=actor, kind="patrons", path=SAMPLES / "koha_borrowers.csv", mapping=mapping.preset("Koha borrowers")[1])


def test_activity_lands_once_rolls_up_and_keeps_genres_only_with_history_opt_in(db, staff):
    with_patrons(db, staff["admin"])
    with db.write() as s:
        opted = s.exec(select(Patron).where(Patron.ils_id == "2000000001")).one()
        opted.history_opt_in = True
        s.add(opted)
    result = run(db, staff["admin"], "activity", SAMPLES / "activity.csv", ACTIVITY)
    assert (result.new, len(result.rejected)) == (12, 0)
    with db.read() as s:
        events = s.exec(select(ActivityEvent)).all()
        assert {e.kind for e in events} == {"checkout", "renewal", "digital_loan", "visit"}
        assert {e.patron_id for e in events if e.category} == {opted.id}  # genre only with opt-in
        assert all(e.ext_key is not None for e in events)
        monthly = s.exec(select(func.sum(ActivityMonthly.count))).one()
        assert monthly == sum(e.count for e in events)  # rollups rebuilt by the import
        assert s.get(Patron, opted.id).last_activity_on is not None
    again = run(db, staff["admin"], "activity", SAMPLES / "activity.csv", ACTIVITY)
    assert (again.new, again.unchanged) == (0, 12)
    with db.read() as s:
        assert s.exec(select(func.count()).select_from(ActivityEvent)).one() == 12
        assert s.exec(select(func.sum(ActivityMonthly.count))).one() == monthly


def test_titles_and_item_barcodes_cannot_be_mapped_and_are_not_stored(sqlite_db, tmp_path):
    from crmcore.admin.auth import CLI_ACTOR

    with_patrons(sqlite_db, CLI_ACTOR)
    run(sqlite_db, CLI_ACTOR, "activity", SAMPLES / "activity.csv", ACTIVITY)
    assert not {"title", "item", "barcode"} & {f.split("_")[0] for f in mapping.FIELDS["activity"]}
    sqlite_db.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("crm.db*"))
    assert b"Some Book Title" not in raw and b"3900000" not in raw


def test_activity_for_unknown_patrons_and_future_dates_is_rejected_with_lines(db, staff, tmp_path):
    with_patrons(db, staff["admin"])
    path = tmp_path / "act.csv"
    path.write_text("who\twhen\n2000000001\t2025-01-03\nNOBODY\t2025-01-03\n2000000002\t2999-01-01\n2000000002\t03/01/2025\n", encoding="utf-8")
    result = run(db, staff["admin"], "activity", path, {"columns": {"patron": "who", "occurred_on": "when"}, "date_order": "dmy", "default_kind": "visit"})
    assert result.new == 2
    assert sorted((r.line, r.field) for r in result.rejected) == [(3, "patron"), (4, "occurred_on")]
    with db.read() as s:
        assert sorted(s.exec(select(ActivityEvent.occurred_on))) == [date(2025, 1, 3), date(2025, 1, 3)]


def test_libcal_events_preset(db, staff):
    kind, chosen = mapping.preset("LibCal events")
    result = run(db, staff["admin"], kind, SAMPLES / "libcal_events.csv", chosen)
    assert (result.new, len(result.rejected)) == (4, 0)
    with db.read() as s:
        talk = s.exec(select(ProgramEvent).where(ProgramEvent.event_id == "10234504")).one()
    assert (talk.held_on, talk.attendance_in_person, talk.attendance_online, talk.registrations) == (date(2025, 3, 12), 61, 48, 75)
    assert run(db, staff["admin"], kind, SAMPLES / "libcal_events.csv", chosen).unchanged == 4


def test_zones_with_census_figures_and_shapes(db, staff):
    chosen = {"columns": {"code": "zip", "name": "name", "population": "population", "households": "households", "median_income": "median_income"},
              "census_columns": ["pct_under_18"]}
    result = run(db, staff["admin"], "zones", SAMPLES / "zones.csv", chosen, geojson=SAMPLES / "zones.geojson")
    assert result.new == 4 and "4 zones got a shape" in result.describe()
    with db.read() as s:
        zone = s.exec(select(Zone).where(Zone.code == "62703")).one()
    assert (zone.name, zone.population, zone.census) == ("Southside", 18876, {"pct_under_18": 27.2})
    shape = json.loads(zone.geojson)
    assert shape["id"] == "62703" and shape["geometry"]["type"] == "Polygon"
    assert run(db, staff["admin"], "zones", SAMPLES / "zones.csv", chosen).unchanged == 4


def test_organizations_and_contacts_through_outreach(db, staff):
    chosen = {"columns": {"name": "Organization", "sector": "Sector", "email": "Email", "phone": "Phone", "website": "Website", "is_partner": "Partner",
                          "tags": "Tags", "contact_first_name": "Contact first name", "contact_last_name": "Contact last name",
                          "contact_email": "Contact email", "contact_job_title": "Contact title"}}
    dry = run(db, staff["admin"], "organizations", SAMPLES / "organizations.csv", chosen, dry_run=True)
    assert dry.new == 3
    with db.read() as s:
        assert s.exec(select(func.count()).select_from(Organization)).one() == 0
    result = run(db, staff["admin"], "organizations", SAMPLES / "organizations.csv", chosen)
    assert (result.new, len(result.rejected)) == (3, 0)
    with db.read() as s:
        pta = s.exec(select(Organization).where(Organization.name == "Springfield Elementary PTA")).one()
        marge = s.exec(select(Contact).where(Contact.last_name == "Simpson")).one()
        assert pta.is_partner and marge.organization_id == pta.id and marge.job_title == "President"
        assert s.exec(select(func.count()).select_from(Contact)).one() == 2
    again = run(db, staff["admin"], "organizations", SAMPLES / "organizations.csv", chosen)
    assert (again.new, again.unchanged) == (0, 3)


def test_organization_rows_with_bad_email_are_rejected_with_line_and_field(db, staff, tmp_path):
    path = tmp_path / "orgs.csv"
    path.write_text("name,email\nGood Org,hello@good.example.org\nBad Org,not-an-email\n", encoding="utf-8")
    result = run(db, staff["admin"], "organizations", path, {"columns": {"name": "name", "email": "email"}})
    assert result.new == 1 and [(r.line, r.field) for r in result.rejected] == [(3, "email")]
