"""The demo library: deterministic, realistic in shape, and internally consistent."""

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, text

from crmcore.db import Database
from crmcore.demo.library import WINDOW_DAYS, generate
from crmcore.library import activity, consent
from crmcore.models import (
    ActivityEvent,
    ActivityMonthly,
    Branch,
    Contact,
    ConsentRecord,
    CurrentConsent,
    Interaction,
    Organization,
    Patron,
    StaffUser,
    Zone,
)
from tests.conftest import fresh_sqlite


def _count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_counts_match_what_is_stored(db, demo):
    with db.read() as s:
        stored = {
            "branches": _count(s, Branch), "zones": _count(s, Zone), "patrons": _count(s, Patron),
            "activity events": _count(s, ActivityEvent), "consent records": _count(s, ConsentRecord),
            "organizations": _count(s, Organization), "interactions": _count(s, Interaction),
        }
        population = s.execute(select(func.sum(Zone.population))).scalar_one()
    assert {k: demo[k] for k in stored} == stored
    assert stored["branches"] == 6 and stored["zones"] == 12 and stored["patrons"] == 300
    assert stored["organizations"] == 150 and stored["interactions"] == 600
    assert 10 * 300 < stored["activity events"] < 40 * 300
    assert population > 2 * 300  # penetration well below 100 %


def test_the_same_seed_makes_the_same_library(tmp_path, sqlite_template):
    today = date(2026, 6, 15)
    made = []
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        db = fresh_sqlite(sqlite_template, tmp_path / name)
        generate(db, patrons=120, seed=3 if name != "c" else 4, today=today)
        with db.read() as s:
            made.append((
                s.execute(text("SELECT ils_id, first_name, last_name, email, phone, birth_year, zone_id, branch_id, patron_type, registered_on, last_activity_on FROM patron ORDER BY id")).all(),
                s.execute(text("SELECT patron_id, occurred_on, kind, branch_id, count, category FROM activity_event ORDER BY id")).all(),
                s.execute(text("SELECT patron_id, channel, topic, granted, recorded_at FROM consent_record ORDER BY id")).all(),
                s.execute(text("SELECT name, sector FROM organization ORDER BY id")).all(),
            ))
        db.dispose()
    assert made[0] == made[1]
    assert made[0][0] != made[2][0] and made[0][1] != made[2][1]


def test_a_realistic_share_of_patrons_is_lapsed_and_activity_ends_today(db, demo):
    today = date.today()
    with db.read() as s:
        lapsed = _count(s, select(Patron).where(Patron.last_activity_on < today - timedelta(days=365)).subquery())
        recent = _count(s, select(Patron).where(Patron.last_activity_on >= today - timedelta(days=30)).subquery())
        first, last = s.execute(select(func.min(ActivityEvent.occurred_on), func.max(ActivityEvent.occurred_on))).one()
    assert 0.15 < lapsed / 300 < 0.5
    assert recent / 300 > 0.25
    assert last <= today and last >= today - timedelta(days=7)
    assert first >= today - timedelta(days=WINDOW_DAYS)


def test_summer_is_busier_than_december(tmp_path, sqlite_template):
    db = fresh_sqlite(sqlite_template, tmp_path)
    generate(db, patrons=400, seed=5, today=date(2026, 1, 10))
    with db.read() as s:
        by_month = dict(s.execute(select(ActivityMonthly.month, func.sum(ActivityMonthly.count)).group_by(ActivityMonthly.month)).all())
    db.dispose()
    assert by_month[date(2025, 7, 1)] > 1.4 * by_month[date(2025, 12, 1)]


def test_consent_history_and_current_consent_agree(db, demo):
    with db.read() as s:
        latest = s.execute(text(
            "SELECT patron_id, channel, topic, granted FROM consent_record r WHERE recorded_at = "
            "(SELECT max(recorded_at) FROM consent_record q WHERE q.patron_id = r.patron_id AND q.channel = r.channel AND q.topic = r.topic)"
        )).all()
        current = s.execute(select(CurrentConsent.patron_id, CurrentConsent.channel, CurrentConsent.topic, CurrentConsent.granted)).all()
        no_address = s.execute(text(
            "SELECT count(*) FROM current_consent c JOIN patron p ON p.id = c.patron_id "
            "WHERE (c.channel = 'email' AND p.email IS NULL) OR (c.channel IN ('sms', 'phone') AND p.phone IS NULL)"
        )).scalar_one()
        withdrawn = s.execute(select(func.count()).select_from(ConsentRecord).where(ConsentRecord.granted.is_(False))).scalar_one()
        channels = {r.channel for r in current}
        sample_patron = current[0].patron_id
        assert consent.current(s, sample_patron)
    assert sorted(map(tuple, latest)) == sorted(map(tuple, current))
    assert no_address == 0 and withdrawn > 0 and channels == set(consent.CHANNELS)


def test_rollups_equal_a_direct_group_by_of_raw_events_in_the_retention_window_and_hold_two_years(db, demo):
    from crmcore.privacy import retention

    with db.read() as s:
        kept_from = retention.cutoff(s)
        month = activity.month_start(ActivityEvent.occurred_on)
        branch = func.coalesce(ActivityEvent.branch_id, 0)
        raw = s.execute(
            select(ActivityEvent.patron_id, month, ActivityEvent.kind, branch, func.sum(ActivityEvent.count))
            .group_by(ActivityEvent.patron_id, month, ActivityEvent.kind, branch)
        ).all()
        rolled = s.execute(select(ActivityMonthly.patron_id, ActivityMonthly.month, ActivityMonthly.kind, ActivityMonthly.branch_id, ActivityMonthly.count)
                           .where(ActivityMonthly.month >= kept_from)).all()
        first_rolled, first_raw = s.execute(select(func.min(ActivityMonthly.month))).scalar_one(), s.execute(select(func.min(ActivityEvent.occurred_on))).scalar_one()
        behind = s.execute(text(
            "SELECT count(*) FROM patron p JOIN (SELECT patron_id, max(occurred_on) AS last_on FROM activity_event GROUP BY patron_id) e "
            "ON e.patron_id = p.id WHERE p.last_activity_on IS NULL OR p.last_activity_on < e.last_on"
        )).scalar_one()
        kinds = set(s.execute(select(ActivityEvent.kind).distinct()).scalars())
    assert sorted(map(tuple, raw)) == sorted(map(tuple, rolled))
    assert first_raw >= kept_from and first_rolled <= date.today() - timedelta(days=WINDOW_DAYS - 31)  # older months: rollups only
    assert behind == 0
    assert kinds <= set(activity.KINDS) and {"checkout", "digital_loan", "visit"} <= kinds


def test_personal_data_uses_test_domains_and_fictional_numbers_only(db, demo):
    with db.read() as s:
        domains = {e.split("@")[1] for e in s.execute(select(Patron.email).where(Patron.email.is_not(None))).scalars()}
        phones = s.execute(select(Patron.phone).where(Patron.phone.is_not(None))).scalars().all()
    assert domains == {"example.org", "example.net"}
    assert phones and all(p[5:9] == "5550" and p[9] == "1" for p in phones)  # 555-01xx: reserved for fiction


def test_interactions_go_to_existing_staff_and_no_account_is_created(db, staff, demo):
    with db.read() as s:
        accounts = s.execute(select(StaffUser.id)).scalars().all()
        by = set(s.execute(select(Interaction.staff_id).distinct()).scalars())
    assert sorted(accounts) == sorted(a.id for a in staff.values())
    assert by <= set(accounts)


def test_the_demo_refuses_a_database_that_already_has_patrons(db, demo):
    with pytest.raises(ValueError, match="empty database"):
        generate(db, patrons=10, seed=1)


def test_the_demo_on_an_empty_database_without_staff_attributes_interactions_to_nobody(tmp_path, sqlite_template):
    db: Database = fresh_sqlite(sqlite_template, tmp_path)
    generate(db, patrons=20, seed=2)
    with db.read() as s:
        assert set(s.execute(select(Interaction.staff_id).distinct()).scalars()) == {None}
        assert _count(s, StaffUser) == 0
    db.dispose()


def test_the_demo_suggests_only_the_records_it_entered_twice_strongest_first(db, demo, staff):
    from crmcore.demo.community import ENTERED_TWICE, ORGANIZATIONS
    from crmcore.outreach import duplicates

    with db.read() as s:
        orgs = duplicates.suggestions(s, actor=staff["outreach"], kind="organization")
        people = duplicates.suggestions(s, actor=staff["outreach"], kind="contact")
        contacts = s.execute(select(func.count()).select_from(Contact)).scalar_one()
        shared_phones = s.execute(text("SELECT count(*) FROM organization a JOIN organization b ON a.phone = b.phone AND a.id < b.id")).scalar_one()
    # Organizations share switchboard numbers by the dozen; a phone alone suggests nothing.
    assert shared_phones > 50
    assert orgs["total"] == people["total"] == ENTERED_TWICE and orgs["pages"] == people["pages"] == 1
    assert {p["other_id"] for p in orgs["pairs"]} == set(range(ORGANIZATIONS - ENTERED_TWICE + 1, ORGANIZATIONS + 1))
    assert {p["other_id"] for p in people["pairs"]} == set(range(contacts - ENTERED_TWICE + 1, contacts + 1))


def test_the_first_retention_run_after_seeding_deletes_nothing(db, staff, demo):
    from crmcore.privacy import retention

    with db.read() as s:
        before = _count(s, ActivityEvent)
        rolled = s.execute(select(func.count(), func.sum(ActivityMonthly.count)).select_from(ActivityMonthly)).one()
    preview = retention.preview(db)
    result = retention.run(db, actor=None)
    with db.read() as s:
        assert _count(s, ActivityEvent) == before == demo["activity events"] > 0
        assert s.execute(select(func.count(), func.sum(ActivityMonthly.count)).select_from(ActivityMonthly)).one() == rolled
    assert preview["events_before_cutoff"] == 0 and result["events_deleted"] == 0, result


def test_every_demo_zone_has_a_shape_so_the_dashboard_draws_its_map(db, demo):
    import json

    import importlib

    with db.read() as s:
        shapes = importlib.import_module("crmcore.kpis.dashboard").zone_shapes(s)  # the package exports a function of that name
        codes = set(s.execute(select(Zone.code)).scalars())
    assert {f["id"] for f in shapes["features"]} == codes and len(codes) == 12
    rings = [f["geometry"]["coordinates"][0] for f in shapes["features"]]
    assert all(f["geometry"]["type"] == "Polygon" and len(r) == 7 and r[0] == r[-1] for f, r in zip(shapes["features"], rings))
    # Clockwise (negative shoelace area), as d3's map projection takes a small area; hexagons side by side, none overlapping.
    area = [sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(r, r[1:])) / 2 for r in rings]
    assert all(x < 0 for x in area)
    centres = [(sum(p[0] for p in r[:-1]) / 6, sum(p[1] for p in r[:-1]) / 6) for r in rings]
    assert len({(round(x, 4), round(y, 4)) for x, y in centres}) == 12
    assert json.loads(json.dumps(shapes)) == shapes
