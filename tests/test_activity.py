"""Monthly rollups rebuilt from raw events, and patron activity dates that survive retention."""

from datetime import date

from sqlalchemy import delete, select
from sqlmodel import Session

from crmcore.library import activity
from crmcore.models import ActivityEvent, ActivityMonthly, Branch, Patron


def _setup(session: Session) -> tuple[int, int, int]:
    branch = Branch(code="MAIN", name="Main Library")
    alice, bob = Patron(ils_id="A1"), Patron(ils_id="B2")
    session.add_all([branch, alice, bob])
    session.flush()
    events = [
        # alice: two months, two kinds, one event without a branch
        (alice.id, date(2024, 1, 5), "checkout", branch.id, 3),
        (alice.id, date(2024, 1, 20), "checkout", branch.id, 2),
        (alice.id, date(2024, 1, 31), "digital_loan", None, 1),
        (alice.id, date(2024, 3, 1), "visit", branch.id, 1),
        # bob: one event in February
        (bob.id, date(2024, 2, 14), "event_attendance", branch.id, 1),
    ]
    session.add_all(ActivityEvent(patron_id=p, occurred_on=d, kind=k, branch_id=b, count=c) for p, d, k, b, c in events)
    session.flush()
    return alice.id, bob.id, branch.id


def _rollups(session: Session) -> set[tuple]:
    return {tuple(r) for r in session.execute(select(ActivityMonthly.patron_id, ActivityMonthly.month, ActivityMonthly.kind, ActivityMonthly.branch_id, ActivityMonthly.count))}


def test_rebuild_sums_events_per_patron_month_kind_and_branch(db):
    with db.write() as s:
        alice, bob, main = _setup(s)
        activity.rebuild_rollups(s)
    with db.read() as s:
        assert _rollups(s) == {
            (alice, date(2024, 1, 1), "checkout", main, 5),
            (alice, date(2024, 1, 1), "digital_loan", 0, 1),
            (alice, date(2024, 3, 1), "visit", main, 1),
            (bob, date(2024, 2, 1), "event_attendance", main, 1),
        }
        a, b = s.get(Patron, alice), s.get(Patron, bob)
        assert (a.first_activity_on, a.last_activity_on) == (date(2024, 1, 5), date(2024, 3, 1))
        assert (b.first_activity_on, b.last_activity_on) == (date(2024, 2, 14), date(2024, 2, 14))


def last_months(patron: Patron) -> dict[str, date]:
    return {kind: getattr(patron, f"last_{kind}_month") for kind in activity.KINDS if getattr(patron, f"last_{kind}_month")}


def test_rebuild_keeps_each_patrons_last_month_per_kind_and_a_later_rebuild_only_widens_it(db):
    with db.write() as s:
        alice, bob, main = _setup(s)
        activity.rebuild_rollups(s)
    with db.read() as s:
        assert last_months(s.get(Patron, alice)) == {"checkout": date(2024, 1, 1), "digital_loan": date(2024, 1, 1), "visit": date(2024, 3, 1)}
        assert last_months(s.get(Patron, bob)) == {"event_attendance": date(2024, 2, 1)}
    with db.write() as s:
        s.add(ActivityEvent(patron_id=bob, occurred_on=date(2024, 5, 30), kind="checkout", branch_id=main, count=1))
        s.add(ActivityEvent(patron_id=alice, occurred_on=date(2024, 5, 2), kind="checkout", branch_id=main, count=1))
        s.flush()
        activity.rebuild_rollups(s, since=date(2024, 5, 1))
    with db.read() as s:
        assert last_months(s.get(Patron, alice)) == {"checkout": date(2024, 5, 1), "digital_loan": date(2024, 1, 1), "visit": date(2024, 3, 1)}
        assert last_months(s.get(Patron, bob)) == {"event_attendance": date(2024, 2, 1), "checkout": date(2024, 5, 1)}


def test_rebuild_is_idempotent_and_since_touches_only_later_months(db):
    with db.write() as s:
        alice, bob, main = _setup(s)
        activity.rebuild_rollups(s)
        before = _rollups(s)
        activity.rebuild_rollups(s)
        assert _rollups(s) == before
        # A new March event, rebuilt from March on, leaves January and February as they were.
        s.add(ActivityEvent(patron_id=bob, occurred_on=date(2024, 3, 9), kind="visit", branch_id=main, count=1))
        s.flush()
        activity.rebuild_rollups(s, since=date(2024, 3, 17))
        assert _rollups(s) == before | {(bob, date(2024, 3, 1), "visit", main, 1)}
        assert s.get(Patron, bob).last_activity_on == date(2024, 3, 9)


def test_rollups_and_activity_dates_survive_retention_deleting_old_raw_events(db):
    with db.write() as s:
        alice, bob, main = _setup(s)
        activity.rebuild_rollups(s)
        before = _rollups(s)
        # Retention deletes everything before March (whole months), then imports rebuild from an old month.
        s.execute(delete(ActivityEvent).where(ActivityEvent.occurred_on < date(2024, 3, 1)))
        activity.rebuild_rollups(s, since=date(2024, 1, 1))
        activity.rebuild_rollups(s)
        assert _rollups(s) == before
        a, b = s.get(Patron, alice), s.get(Patron, bob)
        assert (a.first_activity_on, a.last_activity_on) == (date(2024, 1, 5), date(2024, 3, 1))
        # Bob has no raw events left at all: his dates stay.
        assert (b.first_activity_on, b.last_activity_on) == (date(2024, 2, 14), date(2024, 2, 14))


def test_stored_dates_never_move_inwards(db):
    with db.write() as s:
        alice, bob, main = _setup(s)
        patron = s.get(Patron, alice)
        patron.first_activity_on, patron.last_activity_on = date(2019, 6, 1), date(2030, 1, 1)
        s.add(patron)
        s.flush()
        activity.rebuild_rollups(s)
        s.refresh(patron)
        assert (patron.first_activity_on, patron.last_activity_on) == (date(2019, 6, 1), date(2030, 1, 1))


def test_rebuild_on_an_empty_database_does_nothing(db):
    with db.write() as s:
        activity.rebuild_rollups(s)
        assert _rollups(s) == set()


def test_month_start_truncates_on_every_backend(db):
    with db.write() as s:
        _setup(s)
        months = s.execute(select(activity.month_start(ActivityEvent.occurred_on)).distinct().order_by(activity.month_start(ActivityEvent.occurred_on))).scalars().all()
    assert months == [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]
