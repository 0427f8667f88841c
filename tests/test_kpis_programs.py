"""Imported programs on the dashboard: multi-valued category and audience cells split into one value each,
and every program figure (by month, branch, category, audience, zone; the Program attendance card) equal
to pandas' computation over the same file (tests/fixtures/programs_multivalued.csv: 78 programs at three
branches and some with no branch, 2024-01 … 2025-06; cells like "Toddlers, Parents", "Teens | Tweens",
"Children; Families; Families", "STEM, Crafts, crafts"; some attendance left blank)."""

import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import select

from crmcore import imports, kpis
from crmcore.admin import branches
from crmcore.kpis import programs as p
from crmcore.models import AuditLog, Branch, ProgramEvent, ProgramLabel, Zone

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "programs_multivalued.csv"
MAPPING = {
    "columns": {
        "event_id": "Program ID", "title": "Program Name", "held_on": "Program Date", "branch": "Location",
        "categories": "Program Category", "audiences": "Target Audience", "registrations": "Registered",
        "attendance": "In-Person Attendance", "attendance_online": "Virtual Attendance",
    },
    "date_order": "iso",
}
PERIOD = kpis.Filters.between(date(2024, 3, 1), date(2025, 2, 1))  # 12 months; the previous 12 start before the data
TODAY = date(2025, 7, 2)


def run(db, actor, path=FIXTURE):
    return imports.run_import(db, actor=actor, kind="attendance", path=path, mapping=MAPPING)


def _labels(cell: str) -> list[str]:
    out: dict[str, str] = {}
    for part in re.split(r"[,;|]", cell):
        label = " ".join(part.split())
        if label:
            out.setdefault(label.lower(), label)
    return list(out.values())


def by_hand(path=FIXTURE) -> pd.DataFrame:
    """The file read with pandas: one row per program, attendance as numbers, labels as lists."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    out = pd.DataFrame({
        "event_id": frame["Program ID"],
        "month": pd.to_datetime(frame["Program Date"]).dt.to_period("M").dt.to_timestamp().dt.date,
        "branch": frame["Location"],
        "in_person": pd.to_numeric(frame["In-Person Attendance"]),
        "online": pd.to_numeric(frame["Virtual Attendance"]),
    })
    out["recorded"] = out["in_person"].notna() | out["online"].notna()
    out["attendees"] = out["in_person"].fillna(0).astype(int) + out["online"].fillna(0).astype(int)
    out["category"] = frame["Program Category"].map(_labels)
    out["audience"] = frame["Target Audience"].map(_labels)
    return out


def in_period(frame: pd.DataFrame, filters: kpis.Filters) -> pd.DataFrame:
    return frame[(frame["month"] >= filters.first_month) & (frame["month"] <= filters.end_month)]


def summary(groups) -> dict:
    """{group: (sessions, attendees, average)} as the dashboard defines them."""
    out = {}
    for key, part in groups:
        recorded = int(part["recorded"].sum())
        attendees = int(part["attendees"].sum())
        out[key] = (len(part), attendees, round(attendees / recorded, 1) if recorded else None)
    return out


def shown(frame: pd.DataFrame, key: str) -> dict:
    return {row[key]: (row["sessions"], row["attendees"], None if pd.isna(row["average"]) else row["average"]) for row in frame.to_dict("records")}


@pytest.fixture
def library(db, staff):
    """The fixture file imported; zones North (12,000 residents: CEN and EAS stand in it) and West (8,000: WES)."""
    result = run(db, staff["admin"])
    assert (result.new, len(result.rejected)) == (78, 0), result.rejected
    with db.write() as s:
        north, west = Zone(code="N", name="North", population=12_000), Zone(code="W", name="West", population=8_000)
        s.add_all([north, west])
        s.flush()
        ids = {b.code: b.id for b in s.exec(select(Branch))}
        for code, name, zone in (("CEN", "Central", north), ("EAS", "Eastside", north), ("WES", "Westgate", west)):
            assert branches.update_branch(s, actor=staff["admin"], branch_id=ids[code], name=name, zone_id=zone.id)
        kpis.refresh_summaries(s, today=TODAY)
    return {"db": db, "north": north.id, "west": west.id, **ids}


def test_multi_valued_cells_become_one_label_each_and_the_cell_is_kept_as_it_came(library):
    expected = by_hand()
    with library["db"].read() as s:
        stored = set(s.exec(select(ProgramEvent.event_id, ProgramLabel.kind, ProgramLabel.label).join(ProgramLabel, ProgramLabel.program_id == ProgramEvent.id)))
        lego = s.exec(select(ProgramEvent).where(ProgramEvent.title == "Lego Lab")).first()
    wanted = {(e, kind, label) for kind in ("category", "audience") for e, labels in zip(expected["event_id"], expected[kind]) for label in labels}
    assert stored == wanted
    assert ("PRG-2402", "audience", "Seniors") in stored and not any(label in ("ESL", "Citizenship", "Authors") for _e, _k, label in stored)
    assert (lego.categories, lego.audiences) == ("STEM, Crafts, crafts", "Children; Families; Families")
    assert {label for e, kind, label in stored if e == lego.event_id} == {"STEM", "Crafts", "Children", "Families"}


def test_labels_are_replaced_when_a_program_row_changes_and_kept_when_it_does_not(library, staff, tmp_path):
    db = library["db"]
    assert run(db, staff["admin"]).unchanged == 78
    text = FIXTURE.read_text(encoding="utf-8").replace("PRG-2402,Book Club,2024-01-03,WES,Book Clubs,\"Adults, Seniors\"", "PRG-2402,Book Club,2024-01-03,WES,Book Clubs | Reading,Adults")
    changed = tmp_path / "programs.csv"
    changed.write_text(text, encoding="utf-8")
    result = run(db, staff["admin"], changed)
    assert (result.updated, result.unchanged) == (1, 77)
    with db.read() as s:
        program = s.exec(select(ProgramEvent).where(ProgramEvent.event_id == "PRG-2402")).one()
        labels = set(s.exec(select(ProgramLabel.kind, ProgramLabel.label).where(ProgramLabel.program_id == program.id)))
    assert labels == {("category", "Book Clubs"), ("category", "Reading"), ("audience", "Adults")}
    assert program.categories == "Book Clubs | Reading"


def test_a_label_too_long_is_a_row_error_saying_where(db, staff, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(f"Program ID,Program Date,Program Category\nP1,2025-01-05,Crafts\nP2,2025-01-06,\"{'x' * 130}, Crafts\"\n", encoding="utf-8")
    result = imports.run_import(db, actor=staff["admin"], kind="attendance", path=path,
                                mapping={"columns": {"event_id": "Program ID", "held_on": "Program Date", "categories": "Program Category"}, "date_order": "iso"})
    assert result.new == 1
    assert [(r.line, r.field) for r in result.rejected] == [(3, "categories")]
    assert "longer than 120 characters" in result.rejected[0].reason


@pytest.mark.parametrize("filters", [
    PERIOD,
    kpis.Filters.between(date(2024, 1, 1), date(2025, 6, 1)),
    kpis.Filters.between(date(2024, 6, 1), date(2024, 8, 1)),
], ids=["12 months", "all 18 months", "3 months"])
def test_program_figures_equal_pandas(library, filters):
    expected = in_period(by_hand(), filters)
    names = {"CEN": "Central", "EAS": "Eastside", "WES": "Westgate", "": p.NO_BRANCH}
    with library["db"].read() as s:
        assert p.program_totals(s, filters=filters) == (len(expected), int(expected["attendees"].sum()))
        months = p.programs_by_month(s, filters=filters, first=filters.first_month, last=filters.end_month)
        assert shown(months, "month") == summary(expected.groupby("month"))
        assert dict(zip(months["month"], months["in_person"])) == expected.groupby("month")["in_person"].sum().astype(int).to_dict()
        assert dict(zip(months["month"], months["online"])) == expected.groupby("month")["online"].sum().astype(int).to_dict()
        assert shown(p.programs_by_branch(s, filters=filters), "branch") == summary(expected.groupby(expected["branch"].map(names)))
        for kind in ("category", "audience"):
            exploded = expected.assign(label=expected[kind].map(lambda labels: labels or [p.NO_LABEL])).explode("label")
            assert shown(p.programs_by_label(s, filters=filters, kind=kind), "label") == summary(exploded.groupby("label")), kind
            monthly = p.programs_by_label(s, filters=filters, kind=kind, monthly=True)
            assert {(r["label"], r["month"]): r["attendees"] for r in monthly.to_dict("records")} == exploded.groupby(["label", "month"])["attendees"].sum().to_dict()
        zones = p.programs_by_zone(s, filters=filters).set_index("zone")
    zone_of = expected["branch"].map({"CEN": "North", "EAS": "North", "WES": "West", "": p.NO_ZONE})
    attendees = expected.groupby(zone_of)["attendees"].sum()
    assert zones["attendees"].to_dict() == attendees.to_dict()
    for zone, population in (("North", 12_000), ("West", 8_000)):
        if zone in attendees:
            assert zones.loc[zone, "attendees_per_1000"] == round(1000 * attendees[zone] / population, 1)
    if p.NO_ZONE in zones.index:
        assert pd.isna(zones.loc[p.NO_ZONE, "attendees_per_1000"])


def test_branch_and_zone_filters_select_where_programs_were_held(library):
    table = by_hand()
    for filters, wanted in (
        (kpis.Filters(PERIOD.end_month, 12, branch_ids=(library["WES"],)), table["branch"] == "WES"),
        (kpis.Filters(PERIOD.end_month, 12, branch_ids=(0, library["CEN"])), table["branch"].isin(["", "CEN"])),
        (kpis.Filters(PERIOD.end_month, 12, zone_ids=(library["north"],)), table["branch"].isin(["CEN", "EAS"])),
        (kpis.Filters(PERIOD.end_month, 12, zone_ids=(0,)), table["branch"] == ""),
    ):
        expected = in_period(table[wanted], filters)
        with library["db"].read() as s:
            assert p.program_totals(s, filters=filters) == (len(expected), int(expected["attendees"].sum())), filters


def test_the_program_attendance_card_reads_the_imported_programs_against_the_same_length_before(library):
    table = by_hand()
    for filters in (kpis.Filters.between(date(2025, 4, 1), date(2025, 6, 1)), kpis.Filters.between(date(2024, 10, 1), date(2025, 3, 1)),
                    kpis.Filters.between(date(2024, 10, 1), date(2025, 6, 1))):  # 3, 6 and 9 months, each after as many with programs
        with library["db"].read() as s:
            board = kpis.dashboard_data(s, filters=filters, today=TODAY)
        card = next(c for c in board.cards if c.key == "program_attendance")
        now = int(in_period(table, filters)["attendees"].sum())
        before = int(in_period(table, filters.previous())["attendees"].sum())
        assert (card.value, card.previous, card.change) == (now, before, now - before), filters
        assert board.charts["programs_month"].frame["attendees"].sum() == now  # the trend follows the period
    with library["db"].read() as s:  # a previous period starting before 2024-01, the first month with programs
        for first, last in ((date(2024, 1, 1), date(2024, 6, 1)), (date(2024, 7, 1), date(2025, 6, 1))):
            board = kpis.dashboard_data(s, filters=kpis.Filters.between(first, last), today=TODAY)
            card = next(c for c in board.cards if c.key == "program_attendance")
            assert (card.previous, card.change) == (None, "no earlier data")


def test_setting_a_branch_zone_is_checked_and_audited(library, staff):
    db = library["db"]
    with db.write() as s:
        with pytest.raises(ValueError, match="WES: the name cannot be blank"):
            branches.update_branch(s, actor=staff["admin"], branch_id=library["WES"], name="  ", zone_id=None)
        with pytest.raises(ValueError, match="zone 9999 does not exist"):
            branches.update_branch(s, actor=staff["admin"], branch_id=library["WES"], name="Westgate", zone_id=9999)
        assert not branches.update_branch(s, actor=staff["admin"], branch_id=library["WES"], name=" Westgate ", zone_id=library["west"])
    with db.read() as s:
        entries = s.exec(select(AuditLog).where(AuditLog.action == "branch.change")).all()
    assert len(entries) == 3 and {e.entity_id for e in entries} == {str(library[c]) for c in ("CEN", "EAS", "WES")}
