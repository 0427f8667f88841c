"""Circulation counts without patrons: a title-level export summed into month × branch × kind × material type."""

from datetime import date
from pathlib import Path

import pandas as pd
from sqlmodel import select

from crmcore import imports
from crmcore.models import Branch, CirculationMonthly

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TITLES = FIXTURES / "circulation_by_title.csv"
MAPPING = {
    "columns": {"branch": "Branch", "material_type": "MaterialType", "count": "Checkouts"},
    "year_month": {"month": {"year": "CheckoutYear", "month": "CheckoutMonth"}},
    "default_kind": "checkout",
}
# The vocabulary's spelling of the file's material types (VIDEODISC is not one: those rows are rejected).
SPELLING = {"BOOK": "Book", "EBOOK": "eBook", "AUDIOBOOK": "Audiobook", "MAGAZINE": "Magazine", "DVD": "DVD", "BLU-RAY": "Blu-ray", "PICTURE BOOK": "Picture book", "": ""}


def expected_cells(path: Path) -> dict[tuple, int]:
    """pandas' sum of checkouts per month × branch code × material type, over the rows with a known material type."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = frame[frame["MaterialType"].str.upper().isin(SPELLING)]
    frame = frame.assign(
        month=[date(int(y), int(m), 1) for y, m in zip(frame["CheckoutYear"], frame["CheckoutMonth"])],
        material=frame["MaterialType"].str.upper().map(SPELLING),
        checkouts=frame["Checkouts"].astype(int),
    )
    return {(m, b or None, "checkout", t): int(n) for (m, b, t), n in frame.groupby(["month", "Branch", "material"])["checkouts"].sum().items()}


def stored_cells(db) -> dict[tuple, int]:
    with db.read() as s:
        codes = {b.id: b.code for b in s.exec(select(Branch)).all()}
        return {(c.month, codes.get(c.branch_id), c.kind, c.material_type): c.count for c in s.exec(select(CirculationMonthly)).all()}


def test_title_level_rows_become_monthly_cells_equal_to_pandas_and_titles_are_never_stored(db, staff):
    expected = expected_cells(TITLES)
    dry = imports.run_import(db, actor=staff["admin"], kind="circulation", path=TITLES, mapping=MAPPING, dry_run=True)
    assert (dry.new, dry.updated, dry.unchanged) == (len(expected), 0, 0) and stored_cells(db) == {}
    assert "Would create branches: BAL, CEN, COL" in dry.describe()
    result = imports.run_import(db, actor=staff["admin"], kind="circulation", path=TITLES, mapping=MAPPING, batch_size=17)
    assert stored_cells(db) == expected
    assert (result.new, result.updated, result.unchanged) == (len(expected), 0, 0)
    assert sorted(r.field for r in result.rejected) == ["material_type", "material_type"]
    assert result.rejected[0].reason == "'VIDEODISC' is not a material type: add it on the Item categories page if it is one (titles are never stored)"
    assert result.total == len(pd.read_csv(TITLES))
    assert "monthly cells" in result.describe()
    if db.engine.url.get_backend_name() == "sqlite":
        db.dispose()
        raw = b"".join(p.read_bytes() for p in Path(db.engine.url.database).parent.glob("*.db*"))
        assert b"Night Circus" not in raw and b"Westover" not in raw

    again = imports.run_import(db, actor=staff["admin"], kind="circulation", path=TITLES, mapping=MAPPING)
    assert (again.new, again.updated, again.unchanged) == (0, 0, len(expected))
    assert again.nothing_changed and stored_cells(db) == expected


def test_a_file_replaces_the_cells_it_covers_and_leaves_other_months_alone(db, staff, tmp_path):
    imports.run_import(db, actor=staff["admin"], kind="circulation", path=TITLES, mapping=MAPPING)
    before = stored_cells(db)
    # A corrected January 2025 for branch CEN: books counted again, everything else there gone.
    corrected = tmp_path / "january-cen.csv"
    corrected.write_text("Title,CheckoutYear,CheckoutMonth,MaterialType,Checkouts,Branch\nDune,2025,Jan,Book,1000,CEN\nBecoming,2025,1,book,1,CEN\n")
    covered = {cell for cell in before if cell[0] == date(2025, 1, 1) and cell[1] == "CEN"}
    book = (date(2025, 1, 1), "CEN", "checkout", "Book")

    dry = imports.run_import(db, actor=staff["admin"], kind="circulation", path=corrected, mapping=MAPPING, dry_run=True)
    assert stored_cells(db) == before
    result = imports.run_import(db, actor=staff["admin"], kind="circulation", path=corrected, mapping=MAPPING)
    assert (dry.new, dry.updated, dry.unchanged) == (result.new, result.updated, result.unchanged)
    assert (result.new, result.updated, result.unchanged) == (0 if book in before else 1, len(covered), 0)
    after = stored_cells(db)
    assert after[book] == 1001
    assert {c: n for c, n in after.items() if c not in covered | {book}} == {c: n for c, n in before.items() if c not in covered | {book}}


def test_rows_without_a_plausible_month_or_kind_are_rejected_with_their_line(db, staff, tmp_path):
    path = tmp_path / "stats.csv"
    path.write_text("month,branch,kind,type,n\n2025-02-01,CEN,Renewal,DVD,4\n2999-01-01,CEN,checkout,DVD,1\n2025-02-01,CEN,borrowed,DVD,1\n2025-02-09,CEN,renew,dvd,\n")
    chosen = {"columns": {"month": "month", "branch": "branch", "kind": "kind", "material_type": "type", "count": "n"}}
    result = imports.run_import(db, actor=staff["admin"], kind="circulation", path=path, mapping=chosen)
    assert sorted((r.line, r.field) for r in result.rejected) == [(3, "month"), (4, "kind")]
    assert stored_cells(db) == {(date(2025, 2, 1), "CEN", "renewal", "DVD"): 5}  # a blank count is 1


def test_imports_page_takes_a_circulation_file(app, db, tmp_path):
    csv = "Month,Library,Material,Checkouts,Title\n2025-01-01,CEN,BOOK,5,Dune\n2025-01-01,CEN,book,2,Emma\n2025-02-01,BAL,DVD,1,Heat\n2025-02-01,BAL,VIDEODISC,1,Alien\n"
    at = app(role="admin", page="pages/imports.py").run()
    next(s for s in at.selectbox if s.label == "What are you importing?").set_value("circulation").run()
    at.file_uploader[0].set_value(("checkouts by title.csv", csv.encode(), "text/csv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    for label, column in (("Month", "Month"), ("Branch code", "Library"), ("Material type", "Material"), ("Count", "Checkouts")):
        next(s for s in at.selectbox if s.label.startswith(label)).set_value(column).run()
    assert not any(s.label.startswith("Title") for s in at.selectbox)  # there is no field for a title
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.exception
    assert "4 rows — 2 new" in at.success[0].value and "monthly cells" in at.success[0].value  # two cells from three good rows
    assert "1 rows were rejected" in at.warning[0].value
    assert stored_cells(db) == {(date(2025, 1, 1), "CEN", "checkout", "Book"): 7, (date(2025, 2, 1), "BAL", "checkout", "DVD"): 1}
