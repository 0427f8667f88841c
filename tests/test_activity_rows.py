"""Activity files as libraries export them: identical rows are separate events, categories come from the vocabulary."""

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import func, select

from crmcore import imports
from crmcore.imports import activity_rows, batches, runner
from crmcore.imports import mapping as import_mapping
from crmcore.models import ActivityEvent, ActivityMonthly, Patron
from crmcore.privacy import retention

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
IDENTICAL = FIXTURES / "activity_identical_rows.csv"
MAPPING = {"columns": {"patron": "patron_barcode", "occurred_on": "date", "kind": "type", "branch": "branch", "count": "count", "category": "genre"}}


def with_patrons(db, actor):
    imports.run_import(db, actor=actor, kind="patrons", path=SAMPLES / "koha_borrowers.csv", mapping=import_mapping.preset("Koha borrowers")[1])


def expected_by_group(path: Path) -> dict[tuple, int]:
    """pandas' sum of count per patron × month × kind over the file (every row an event)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["kind"] = frame["type"].map(activity_rows.activity_kind)
    frame["month"] = pd.to_datetime(frame["date"]).dt.to_period("M").dt.start_time.dt.date
    frame["count"] = frame["count"].astype(int)
    return {tuple(k): int(v) for k, v in frame.groupby(["patron_barcode", "month", "kind"])["count"].sum().items()}


def stored_by_group(db) -> dict[tuple, int]:
    with db.read() as s:
        rows = s.exec(
            select(Patron.ils_id, ActivityMonthly.month, ActivityMonthly.kind, func.sum(ActivityMonthly.count))
            .join(Patron, Patron.id == ActivityMonthly.patron_id)
            .group_by(Patron.ils_id, ActivityMonthly.month, ActivityMonthly.kind)
        ).all()
    return {(p, m, k): int(c) for p, m, k, c in rows}


@pytest.mark.parametrize("second_process", [False, True], ids=["one-process", "two-processes"])
def test_identical_rows_are_separate_events_and_reimporting_adds_nothing(db, staff, monkeypatch, second_process):
    if second_process:  # the batches after the first are prepared in a child process
        monkeypatch.setattr(batches, "PARALLEL_BYTES", 0)
    with_patrons(db, staff["admin"])
    frame = pd.read_csv(IDENTICAL, dtype=str)
    assert frame.duplicated().sum() > 20  # the fixture holds many identical rows

    first = imports.run_import(db, actor=staff["admin"], kind="activity", path=IDENTICAL, mapping=MAPPING, batch_size=9)
    assert (first.new, first.unchanged, len(first.rejected)) == (len(frame), 0, 0)
    assert stored_by_group(db) == expected_by_group(IDENTICAL)
    with db.read() as s:
        assert s.exec(select(func.sum(ActivityEvent.count))).one() == frame["count"].astype(int).sum()

    monkeypatch.setattr(runner, "_complete_run", lambda *a, **k: None)  # read the file again, row by row
    again = imports.run_import(db, actor=staff["admin"], kind="activity", path=IDENTICAL, mapping=MAPPING, batch_size=13)
    assert (again.new, again.unchanged) == (0, len(frame))
    assert "Monthly activity brought up to date" not in " ".join(again.notes)  # nothing added: the rollups were left as they were
    assert stored_by_group(db) == expected_by_group(IDENTICAL)


def test_a_later_file_overlapping_the_same_rows_adds_only_what_is_new(db, staff, tmp_path):
    with_patrons(db, staff["admin"])
    lines = IDENTICAL.read_text().splitlines()
    half = tmp_path / "first-half.csv"
    half.write_text("\n".join(lines[: len(lines) // 2]) + "\n")
    whole = tmp_path / "whole.csv"
    whole.write_text("\n".join(lines) + "\n")
    imports.run_import(db, actor=staff["admin"], kind="activity", path=half, mapping=MAPPING)
    later = imports.run_import(db, actor=staff["admin"], kind="activity", path=whole, mapping=MAPPING)
    # What the first half holds is unchanged; a copy of a row in the second half is new (it is another event).
    assert later.new == len(lines) - 1 - (len(lines) // 2 - 1)
    assert stored_by_group(db) == expected_by_group(IDENTICAL)


def test_titles_in_the_category_column_are_rejected_and_never_stored(db, staff, tmp_path):
    with_patrons(db, staff["admin"])
    path = FIXTURES / "activity_titles_as_categories.csv"
    chosen = {"columns": {"patron": "Patron", "occurred_on": "Checkout Date", "branch": "Branch", "category": "Category"}}
    with db.write() as s:
        for patron in s.exec(select(Patron)).all():
            patron.history_opt_in = True  # categories are kept: any title that got through would be stored
            s.add(patron)
    result = imports.run_import(db, actor=staff["admin"], kind="activity", path=path, mapping=chosen)
    assert result.new == 3
    assert sorted((r.line, r.field) for r in result.rejected) == [(3, "category"), (4, "category"), (6, "category")]
    reason = next(r.reason for r in result.rejected if r.line == 3)
    assert reason == "'The Da Vinci Code' is not an item category: add it on the Item categories page if it is one (titles are never stored)"
    with db.read() as s:
        assert sorted(c for c in s.exec(select(ActivityEvent.category)) if c) == ["Cooking", "Mystery"]  # the term's spelling
    if db.engine.url.get_backend_name() == "sqlite":
        db.dispose()
        raw = b"".join(p.read_bytes() for p in Path(db.engine.url.database).parent.glob("*.db*"))
        assert b"Da Vinci" not in raw and b"Crawdads" not in raw and b"Caterpillar" not in raw


def test_occurrences_count_copies_across_batches_in_order():
    copies = activity_rows.Occurrences()
    assert copies.number([5, 7, 5, 5]) == [1, 1, 2, 3]
    assert copies.number([7, 9, 5, -3, 9]) == [2, 1, 4, 1, 2]
    assert copies.number([]) == []
    assert copies.number([-3, 10**18, -(10**18)]) == [2, 1, 1]


def test_a_file_imported_completely_is_not_read_again_but_one_with_rejected_rows_is(db, staff, tmp_path):
    with_patrons(db, staff["admin"])
    first = imports.run_import(db, actor=staff["admin"], kind="activity", path=IDENTICAL, mapping=MAPPING)
    again = imports.run_import(db, actor=staff["admin"], kind="activity", path=IDENTICAL, mapping=MAPPING)
    assert (again.total, again.new, again.unchanged, again.rejected) == (first.total, 0, first.total, [])
    assert "was not read again" in again.describe() and "Nothing changed" in again.describe()
    dry = imports.run_import(db, actor=staff["admin"], kind="activity", path=IDENTICAL, mapping=MAPPING, dry_run=True)
    assert (dry.new, dry.unchanged) == (0, first.total) and "not read again" not in dry.describe()  # a dry run checks every row

    # A file with a row for a patron not imported yet: imported again once the patron is there, that row lands.
    path = tmp_path / "later.csv"
    path.write_text("patron_barcode,date,type,branch,count,genre\n2000000001,2025-03-02,Checkout,CPL,1,Mystery\nNEW-CARD-1,2025-03-02,Checkout,CPL,1,\n")
    partial = imports.run_import(db, actor=staff["admin"], kind="activity", path=path, mapping=MAPPING)
    assert (partial.new, len(partial.rejected)) == (1, 1)
    with db.write() as s:
        s.add(Patron(ils_id="NEW-CARD-1"))
    complete = imports.run_import(db, actor=staff["admin"], kind="activity", path=path, mapping=MAPPING)
    assert (complete.new, complete.unchanged, complete.rejected) == (1, 1, [])
    with db.read() as s:
        assert s.exec(select(func.count()).select_from(ActivityEvent)).one() == first.total + 2


def test_a_day_for_a_month_retention_purged_adds_to_its_rollups_and_loses_nothing(db, staff, tmp_path):
    """An import adds its new events' counts to the rollups: a month whose raw events retention deleted keeps what it held."""
    with_patrons(db, staff["admin"])
    with db.read() as s:
        card = s.exec(select(Patron.ils_id).order_by(Patron.id)).first()
    month = date.today().replace(day=1) - timedelta(days=2 * 365)
    month = month.replace(day=1)

    def day(name: str, on: date, count: int) -> Path:
        path = tmp_path / name
        path.write_text(f"patron_barcode,date,type,branch,count,genre\n{card},{on.isoformat()},Checkout,CPL,{count},\n")
        return path

    imports.run_import(db, actor=staff["admin"], kind="activity", path=day("then.csv", month + timedelta(days=2), 2), mapping=MAPPING)
    assert retention.run(db, actor=staff["admin"])["events_deleted"] >= 1  # older than the 18 months kept: only the rollup is left
    later = imports.run_import(db, actor=staff["admin"], kind="activity", path=day("late.csv", month + timedelta(days=9), 1), mapping=MAPPING)
    assert later.new == 1
    assert stored_by_group(db)[(card, month, "checkout")] == 3
