"""Cleaning a batch column by column gives exactly what the per-cell parsers give, and is taken for
the shapes real exports have (so a million-row file does not fall back to cell-by-cell parsing)."""

import gc
import sys
from datetime import date

import pytest

from crmcore import imports
from crmcore.imports import batch, mapping, values
from crmcore.imports.cleaning import Cleaner, column_parser, parser
from crmcore.imports.mapping import FieldSpec
from crmcore.imports.patrons import PatronImport

THIS_YEAR = date.today().year
# Cells per type: columns of the common shapes (the fast path must take them whole), then odd and bad cells
# (a newline inside a cell comes from a quoted field).
CELLS = {
    "text": ([["Ana", "O'Brien", "Gómez; Jr"]], ["x" * 41, "", "ünïcødé" * 6]),
    "bool": ([["true", "TRUE", "yes", "Y", "1", "false", "No", "n", "0"]], ["maybe", "tRuE", "2", "ja"]),
    "date": ([["2024-03-31", "1999-12-01", "2024-03-31 10:15:00"]], ["31/03/2024", "2024-02-30", "2024/03/31", "1987", "٢٠٢٤-٠٣-٣١", "soon", "2024-03-31\n2024-04-01", "2024\n03-31"]),
    "year": ([["1987", "2001"], ["1982-01-01", "2001-07-15"]], ["1879", str(THIS_YEAR + 1), "1982-02-30", "87", "12/03/1987", "١٩٨٧", "1987\n1988"]),
    "int": ([["0", "12", "450"]], ["1,200", "3.0", "-4", "2.5", "x", "١٢", "12\n34"]),
    "email": (
        [["ana@example.org", "a+tag@mail.example.com", "o'brien@example.co.uk", "Ana.Lopez@example.org"]],
        ["Ana@Example.ORG", "x@library.test", "x@host.LOCAL", "bad@@example.org", "a..b@example.org", "a@-example.org",
         "ünï@example.org", "a@b.c", "name@example.123", "l" * 65 + "@example.org", "a@" + "d" * 250 + ".org", "a\n@example.org"],
    ),
    "phone": ([["+13125550100", "(312) 555-0100", "312.555.0100 x12"]], ["555", "1234567890123456", "+1 312 555 0100 ext", "٣١٢٥٥٥٠١٠٠", "12 34 56 7", "312555\n0100"]),
}


def _exact(spec: FieldSpec, cell: str):
    try:
        return parser(spec, "dmy")(cell)
    except ValueError:
        return ValueError


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_every_column_function_agrees_with_its_parser_and_takes_the_common_shapes(kind):
    spec = FieldSpec("x", kind, max_len=40)
    columns, odd = CELLS[kind]
    fast = column_parser(spec)
    for common in columns:
        assert fast(common) == [_exact(spec, c) for c in common]  # no SLOW: the fast path took every cell
    for cells in (odd, *([cell] for cell in odd), *(common + odd for common in columns), *(odd + common for common in columns)):
        for cell, got in zip(cells, fast(cells)):
            assert got is values.SLOW or got == _exact(spec, cell), (kind, cell, got)


def test_missing_forms_are_exactly_what_is_missing_accepts():
    assert all(values.is_missing(form) for form in values.MISSING_FORMS)
    # A character outside ASCII whose upper case is an ASCII letter would make "NULL" spellable otherwise.
    lookalikes = [chr(c) for c in range(0x80, sys.maxunicode + 1) if chr(c).upper() in set("NOEULA")]
    for word in ("none", "null", "n/a"):
        for i in range(len(word)):
            for char in lookalikes:
                cell = word[:i] + char + word[i + 1 :]
                assert values.is_missing(cell) == (cell in values.MISSING_FORMS), cell
    assert not values.is_missing("Nonesuch") and "Nonesuch" not in values.MISSING_FORMS


def _cleaner(columns: dict[str, str], header: list[str], **extra) -> Cleaner:
    return Cleaner("patrons", mapping.clean_mapping("patrons", {"columns": columns, **extra}, header), header)


def test_a_row_is_rejected_for_its_first_failing_field_in_mapping_order_and_short_rows_are_padded():
    header = ["card", "mail", "born", "joined", "extra"]
    cleaner = _cleaner({"ils_id": "card", "email": "mail", "birth_year": "born", "registered_on": "joined"}, header)
    rows = [
        (2, ["1", "ana@example.org", "1980", "2024-01-02", "x"]),
        (3, ["2", "not-an-address", "1700", "soon", "x"]),  # three bad cells: the email is reported
        (4, ["3", "NULL", "1700"]),  # short row; the year is the first bad cell
        (5, ["", "b@example.org", "1990", "2024-01-02", "x"]),  # the required id is missing
        (6, ["4"]),  # everything but the id missing: fine
    ]
    cleaned = cleaner.clean(rows, first_ordinal=10)
    assert [(r.line, r.field) for r in cleaned.rejected] == [(3, "email"), (4, "birth_year"), (5, "ils_id")]
    assert "not a plausible birth year" in cleaned.rejected[1].reason and cleaned.rejected[2].reason == "is missing"
    assert cleaned.lines == [2, 6] and cleaned.ordinals == [10, 14]
    assert cleaned.columns["ils_id"] == ["1", "4"] and cleaned.columns["email"] == ["ana@example.org", None]
    assert cleaned.columns["birth_year"] == [1980, None] and cleaned.columns["registered_on"] == [date(2024, 1, 2), None]


def test_a_mapping_of_one_column_or_none_at_all_cleans_too():
    header = ["card", "other"]
    assert _cleaner({"ils_id": "card"}, header).clean([(2, ["7", "x"]), (3, [])]).columns == {"ils_id": ["7"]}
    nothing = _cleaner({}, header, id_from_row=True).clean([(2, ["7", "x"]), (3, ["8"])], first_ordinal=5)
    assert (nothing.columns, nothing.lines, nothing.ordinals, nothing.rejected) == ({}, [2, 3], [5, 6], [])


def test_the_row_hash_is_the_one_earlier_versions_stored():
    """A library that imported before column-wise cleaning re-imports the same file as unchanged. (Rows that
    state consent were rewritten once after migration 0004, which keeps what each row stated.)"""
    header = ["card", "first", "mail", "born", "branch", "joined", "method", "optin"]
    chosen = {"columns": {"ils_id": "card", "first_name": "first", "email": "mail", "birth_year": "born", "branch": "branch",
                          "registered_on": "joined", "contact_method": "method", "consent_sms": "optin"}}
    cleaned_mapping = mapping.clean_mapping("patrons", chosen, header)
    rows = [(2, ["7", "Ana", "ana@example.org", "1980-05-06", "CEN", "2024-01-02", "email", "yes"]),
            (3, ["8", "", "", "", "", "", "", ""]),
            (4, ["9", "Bo", "", "1999", "RIV", "", "sms", "no"])]
    cleaned = Cleaner("patrons", cleaned_mapping, header).clean(rows)
    importer = PatronImport(mapping=cleaned_mapping, file_name="f.csv", now=None)
    prepared = importer.prepare(cleaned)
    for k, (_line, values_) in enumerate(prepared.rows()):
        stated = dict(values_["consent"])
        earlier = batch.digest(*(values_.get(f) for f in importer.fields), *sorted(stated.items()))
        assert prepared.columns["row_hash"][k] == earlier
    # The notice preference grants the services topic on its channel only; the opt-in column its topics.
    services = {("email", "services"): True, ("sms", "services"): False, ("phone", "services"): False, ("mail", "services"): False}
    assert dict(prepared.columns["consent"][0]) == {**services, ("sms", "events"): True, ("sms", "new_materials"): True, ("sms", "newsletter"): True}
    assert prepared.columns["consent"][1] == ()
    assert prepared.columns["preferred_channel"] == ["email", None, "sms"]


def test_an_import_pauses_the_cycle_collector_only_while_it_runs(db, staff, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("cardnumber,surname\n1,Vu\n", encoding="utf-8")
    chosen = {"columns": {"ils_id": "cardnumber", "last_name": "surname"}}
    seen = []
    imports.run_import(db, actor=staff["admin"], kind="patrons", path=path, mapping=chosen, progress=lambda _f, _s: seen.append(gc.isenabled()))
    assert seen[0] is False and gc.isenabled()

    def fail(_fraction, _summary):
        raise RuntimeError("stopped mid-run")

    with pytest.raises(RuntimeError, match="stopped mid-run"):
        imports.run_import(db, actor=staff["admin"], kind="patrons", path=path, mapping=chosen, progress=fail)
    assert gc.isenabled()
