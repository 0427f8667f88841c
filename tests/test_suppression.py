"""Small-cell suppression: primary cells, complementary cells (no subtraction recovers a small group),
remainders beside totals, changes, and the dashboard's own figures and downloads."""

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlmodel import select

from crmcore import exports, kpis
from crmcore.kpis.dashboard import partition
from crmcore.privacy import small_cells

K = 5


def _recoverable_small_groups(sizes: np.ndarray, mask: np.ndarray, k: int) -> list:
    """Every small group an attacker gets by subtracting a line's shown cells from its total."""
    found = []
    for axis in (0, 1):
        for i in range(sizes.shape[axis]):
            line, hidden = np.take(sizes, i, axis=axis), np.take(mask, i, axis=axis)
            rest = line[hidden].sum()
            if 0 < rest < k:
                found.append((axis, i, rest))
    return found


def test_small_counts_show_as_less_than_k_and_zero_is_shown():
    assert [small_cells.count(n, K) for n in (0, 1, 4, 5, 120)] == [0, "<5", "<5", 5, 120]
    assert small_cells.label(7) == "<7"


def test_a_lone_suppressed_cell_gets_a_complement_in_its_row_and_column():
    sizes = np.array([[3, 40, 50], [20, 30, 60], [25, 35, 45]], dtype=float)
    mask = small_cells.complementary(sizes, small_cells.primary(sizes, K), K)
    # The 3 alone could be recovered from its row total (93) and column total (48): the smallest cell of
    # its row (40) and of its column (20) are hidden too, and then their own lines get a second cell.
    assert mask[0, 0] and mask.sum() >= 4
    assert all(m.sum() != 1 for m in mask) and all(m.sum() != 1 for m in mask.T)
    assert _recoverable_small_groups(sizes, mask, K) == []


def test_two_small_cells_in_a_line_summing_below_k_get_a_third():
    sizes = np.array([[1, 2, 50, 60]], dtype=float)
    mask = small_cells.complementary(sizes, small_cells.primary(sizes, K), K, columns=False)
    assert mask.tolist() == [[True, True, True, False]]  # 1 + 2 = 3 < 5 would be recoverable: 50 joins


@pytest.mark.parametrize("seed", range(30))
def test_differencing_never_recovers_a_small_group_in_random_tables(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.choice([0, 1, 2, 3, 4, 6, 9, 15, 40], size=(rng.integers(2, 7), rng.integers(2, 7))).astype(float)
    mask = small_cells.complementary(sizes, small_cells.primary(sizes, K), K)
    assert not (small_cells.primary(sizes, K) & ~mask).any()
    # A line whose non-empty cells are all hidden shows only its total, which the caller suppresses
    # when small; every other line leaves nothing small to recover.
    for axis, i, rest in _recoverable_small_groups(sizes, mask, K):
        line = np.take(sizes, i, axis=axis)
        assert line.sum() == rest and rest < K


def test_remainder_beside_a_total():
    assert small_cells.remainder([38, 10], [40, 40], K).tolist() == [True, False]  # 40 - 38 = 2 inactive


def test_changes_smaller_than_k_are_suppressed():
    assert small_cells.change(1003, 1000, K) == "<5"
    assert small_cells.change(1010, 1000, K) == 10
    assert small_cells.change(1000, 1000, K) == 0
    assert small_cells.change("<5", 1000, K) is None


def test_lifecycle_partition_hides_every_figure_that_would_reveal_a_small_state():
    counts = {"new_active": 10, "new_inactive": 2, "regular": 30, "occasional": 25, "at_risk": 8, "lapsed": 40}
    shown = partition(counts, K)
    # new_inactive (2) = registered - active - lapsed: hiding it means hiding a second cell (at_risk, 8,
    # the smallest left), and every figure built from a hidden cell.
    assert shown["registered"] == 115
    assert shown["new"] == "<5" and shown["at_risk"] == "<5" and shown["active"] == "<5"
    assert shown["lapsed"] == 40 and shown["regular"] == 30 and shown["occasional"] == 25
    # What is left cannot isolate the 2: registered - lapsed - regular - occasional = 20 = 10 + 2 + 8.
    assert 115 - 40 - 30 - 25 >= K


def test_suppressed_frames_download_as_less_than_k():
    frame = small_cells.suppress_column(pd.DataFrame({"month": ["2025-01", "2025-02", "2025-03"], "patrons": [3, 12, 40]}), K, sizes="patrons", complement=True)
    assert frame["patrons"].tolist() == ["<5", "<5", 40]  # 3 alone is recoverable from the period total
    csv = exports.to_csv(frame).decode("utf-8-sig")
    assert "2025-01,<5" in csv and "2025-02,<5" in csv and ",3\n" not in csv and ",12\n" not in csv


@pytest.fixture
def small_library(db):
    """A library of six patrons in two zones (4 + 2): most groups on its dashboard are small."""
    from crmcore.library import activity
    from crmcore.models import ActivityEvent, Patron, Zone

    with db.write() as s:
        zones = [Zone(code="A", name="Alpha", population=100), Zone(code="B", name="Beta", population=100)]
        s.add_all(zones)
        s.flush()
        for i in range(6):
            p = Patron(ils_id=f"s{i}", zone_id=zones[0 if i < 4 else 1].id, registered_on=date(2020, 1, 1), patron_type="adult")
            s.add(p)
            s.flush()
            s.add(ActivityEvent(patron_id=p.id, occurred_on=date(2025, 5, 3), kind="checkout"))
        s.flush()
        activity.rebuild_rollups(s)
        kpis.refresh_summaries(s, today=date(2025, 6, 15))
    return db


def test_no_figure_of_a_tiny_library_shows_a_group_below_k(small_library):
    with small_library.read() as s:
        board = kpis.dashboard_data(s, filters=kpis.Filters(date(2025, 6, 1), 6), today=date(2025, 6, 15))
    cards = {c.key: c.value for c in board.cards}
    assert cards["registered"] == 6 and cards["active"] == 6  # six of six: nothing small
    zones = board.charts["zones"].frame.set_index("name")
    # Beta (2) is small; Alpha (4) is small too; both hidden, the total of 6 is all that shows.
    assert zones.loc["Beta", "registered"] == "<5" and zones.loc["Alpha", "registered"] == "<5"
    counts = {
        "zones": ["registered", "active"], "lifecycle": ["at_start", "at_end"], "registrations": ["patrons"],
        "branches": ["registered", "active", "new_registrations"], "cohorts": ["patrons"],
    }
    counts["flows"] = [c for c in board.charts["flows"].frame.columns if c != "from_state"]
    counts["age_branch"] = [c for c in board.charts["age_branch"].frame.columns if c != "age_band"]
    for key, columns in counts.items():
        for value in board.charts[key].frame[columns].to_numpy().ravel():
            assert value == "<5" or value == 0 or value >= K, (key, board.charts[key].frame)


@pytest.fixture
def branch_library(db):
    """Branch Central: 30 adults and 1 homebound patron; branch East: 12 adults; zones North (Central's
    30 adults + 9 of East) and South (the homebound patron + 3 of East)."""
    from crmcore.library import activity
    from crmcore.models import ActivityEvent, Branch, Patron, Zone

    with db.write() as s:
        central, east = Branch(code="C", name="Central"), Branch(code="E", name="East")
        north, south = Zone(code="N", name="North", population=1000), Zone(code="S", name="South", population=1000)
        s.add_all([central, east, north, south])
        s.flush()
        people = [(central, north, "adult")] * 30 + [(central, south, "homebound")] + [(east, north, "adult")] * 9 + [(east, south, "adult")] * 3
        for i, (branch, zone, kind) in enumerate(people):
            p = Patron(ils_id=f"b{i}", branch_id=branch.id, zone_id=zone.id, patron_type=kind, registered_on=date(2020, 1, 1))
            s.add(p)
            s.flush()
            s.add(ActivityEvent(patron_id=p.id, occurred_on=date(2025, 5, 3), kind="checkout", branch_id=branch.id))
        s.flush()
        activity.rebuild_rollups(s)
        kpis.refresh_summaries(s, today=date(2025, 6, 15))
    with db.read() as s:
        ids = {b.code: b.id for b in s.exec(select(Branch))} | {z.code: z.id for z in s.exec(select(Zone))}
    return db, ids


def _registered(db, **groups) -> object:
    with db.read() as s:
        board = kpis.dashboard_data(s, filters=kpis.Filters(date(2025, 6, 1), 6, **groups), today=date(2025, 6, 15))
    return next(c.value for c in board.cards if c.key == "registered"), board


def test_differencing_pairs_never_reveal_a_group_below_k(branch_library):
    """"All types: 31" beside "all but homebound: 30" on one branch told a viewer a hidden cell was 1."""
    db, ids = branch_library
    pairs = [
        ({"branch_ids": (ids["C"],)}, {"branch_ids": (ids["C"],), "patron_types": ("adult",)}),  # all types vs all but homebound
        ({}, {"patron_types": ("adult",)}),  # the whole library vs all but homebound
        ({}, {"zone_ids": (ids["N"],)}),  # all zones (43) vs North (39): South's 4 by subtraction
        ({"branch_ids": (ids["E"],)}, {"branch_ids": (ids["E"],), "zone_ids": (ids["N"],)}),  # East (12) vs East in North (9)
        ({"zone_ids": (ids["S"],)}, {"zone_ids": (ids["S"],), "patron_types": ("adult",)}),  # South (4, small itself)
    ]
    for wide, narrow in pairs:
        (a, _), (b, board) = _registered(db, **wide), _registered(db, **narrow)
        if isinstance(a, int) and isinstance(b, int):
            assert not 0 < a - b < K, (wide, narrow, a, b)
        assert b == f"<{K}" and board.withheld and board.charts == {}, (narrow, b)  # the narrow side is withheld as a whole


def test_a_selection_far_enough_from_every_wider_one_is_shown(branch_library):
    db, ids = branch_library
    assert _registered(db)[0] == 43
    central, board = _registered(db, branch_ids=(ids["C"],))  # 31 of 43: 12 left out
    assert central == 31 and board.withheld is None and board.charts
    everything, board = _registered(db, branch_ids=(ids["C"], ids["E"]))  # all of them: equal, not a difference
    assert everything == 43 and board.withheld is None
    assert _registered(db, patron_types=("homebound",))[0] == f"<{K}"  # smaller than k


def test_the_withheld_board_keeps_its_card_labels_and_downloads_nothing(branch_library):
    db, ids = branch_library
    _value, board = _registered(db, branch_ids=(ids["C"],), patron_types=("adult",))
    assert {c.value for c in board.cards} == {f"<{K}"} and {c.change for c in board.cards} == {None}
    assert "leave out fewer than 5 patrons" in board.withheld


def test_two_selections_of_several_values_never_differ_by_a_group_below_k(branch_library):
    """Types {adult, homebound} and {adult} are both far from "all types" once children join; their difference
    is the one homebound patron. A selection of several values is also compared with each value left out."""
    from crmcore.library import activity
    from crmcore.models import ActivityEvent, Patron

    db, ids = branch_library
    with db.write() as s:
        for i in range(10):
            p = Patron(ils_id=f"child{i}", branch_id=ids["C"], zone_id=ids["N"], patron_type="child", registered_on=date(2020, 1, 1))
            s.add(p)
            s.flush()
            s.add(ActivityEvent(patron_id=p.id, occurred_on=date(2025, 5, 3), kind="checkout", branch_id=ids["C"]))
        s.flush()
        activity.rebuild_rollups(s)
        kpis.refresh_summaries(s, today=date(2025, 6, 15))
    assert _registered(db)[0] == 53
    adults, _ = _registered(db, patron_types=("adult",))
    both, board = _registered(db, patron_types=("adult", "homebound"))
    assert adults == 42 and both == f"<{K}" and board.withheld  # not 43 beside 42
    shown, board = _registered(db, patron_types=("adult", "child"))  # 52: one patron from all, but 10 from adults alone
    assert shown == f"<{K}" and board.withheld  # …and 1 from "all types": withheld as before
