"""Turning a batch of file rows into clean field values, per the mapping (compiled once per file).

Only mapped columns are read: the rest of the row is never looked at, so an unmapped column cannot
reach the database, the run record or the error file.

A batch is cleaned column by column: each mapped column's cells go through its type's column
function (crmcore.imports.values), and only the cells it leaves (SLOW) through the exact per-cell
parser, which gives the value or the reason a person reads. A row is rejected for the first field
(in mapping order) that fails, exactly as if it had been checked cell by cell.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from operator import itemgetter
from typing import Any

from crmcore.imports import reading, values
from crmcore.imports.batch import Batch, digest
from crmcore.imports.mapping import FIELDS, ID_FIELDS, FieldSpec
from crmcore.languages import codes

FIRST_BIRTH_YEAR = 1880


def _text(max_len: int, text: str) -> str:
    if len(text) > max_len:
        raise ValueError(f"longer than {max_len} characters")
    return text


def _year(order: str, text: str) -> int:
    year = int(text) if len(text) == 4 and text.isdigit() else values.parse_date(text, order, first_year=1, last_year=9999).year
    if not FIRST_BIRTH_YEAR <= year <= date.today().year:
        raise ValueError(f"{text!r} is not a plausible birth year")
    return year


BLANK = frozenset({""})  # a "word" field (a notice preference) takes 'none' as a value: only a blank cell is missing


def _missing_forms(spec: FieldSpec) -> frozenset[str]:
    """The cells that mean "not given" for a field: a notice preference takes 'none' as a value; a language
    is not given where Koha writes 'default'."""
    if spec.type == "word":
        return BLANK
    if spec.type == "language":
        return values.MISSING_FORMS | {form for word in codes.NO_LANGUAGE for form in (word, word.capitalize(), word.upper())}
    return values.MISSING_FORMS


def _language_column(cells: list[str]) -> list:
    """Cells that are a language code already (en, es) as they are; the rest (es-ES, Spanish) for `codes.normalise`."""
    known = codes.known()
    return [c if c in known else values.SLOW for c in cells]


def _count(text: str) -> int:
    number = values.parse_int(text)
    if number < 0:
        raise ValueError(f"{text!r} is negative")
    return number


def parser(spec: FieldSpec, order: str) -> Callable[[str], Any]:
    """The function that turns a stripped, present cell into the field's value."""
    return {
        "text": partial(_text, spec.max_len),
        "code": partial(_text, spec.max_len),
        "word": partial(_text, spec.max_len),
        "bool": values.parse_bool,
        "date": partial(values.parse_date, order=order, last_year=values.last_year(spec.years_ahead)),
        "year": partial(_year, order),
        "int": _count,
        "email": values.parse_email,
        "phone": values.parse_phone,
        "language": codes.normalise,
    }[spec.type]


def column_parser(spec: FieldSpec) -> Callable[[list[str]], list]:
    """The fast function over a column of stripped, present cells (SLOW where `parser` must decide)."""
    return {
        "text": partial(values.text_column, max_len=spec.max_len),
        "code": partial(values.text_column, max_len=spec.max_len),
        "word": partial(values.text_column, max_len=spec.max_len),
        "bool": values.bool_column,
        "date": partial(values.date_column, last_year=values.last_year(spec.years_ahead)),
        "year": partial(values.year_column, low=FIRST_BIRTH_YEAR, high=date.today().year),
        "int": values.count_column,
        "email": values.email_column,
        "phone": values.phone_column,
        "language": _language_column,
    }[spec.type]


class Cleaner:
    """Compiled from a cleaned mapping and the header: `clean(rows)` → a Batch of field columns."""

    def __init__(self, kind: str, mapping: dict[str, Any], header: list[str]):
        fields: dict[str, FieldSpec] = FIELDS[kind]
        order = mapping.get("date_order", "iso")
        index = {name: i for i, name in reversed(list(enumerate(header)))}
        year_month = mapping.get("year_month") or {}
        used = sorted(
            {index[c] for c in mapping["columns"].values()}
            | {index[p[k]] for p in year_month.values() for k in ("year", "month") if p.get(k)}
            | {index[c] for c in (mapping.get("id_columns") or []) + (mapping.get("census_columns") or [])}
        )
        at = {column: position for position, column in enumerate(used)}  # file column → position in a picked row
        self.width = used[-1] + 1 if used else 0
        self.used = len(used)
        self._pick = itemgetter(*used) if len(used) > 1 else (lambda record: tuple(record[i] for i in used))
        self.plan = [
            (f, at[index[c]], column_parser(fields[f]), parser(fields[f], order), fields[f].required, _missing_forms(fields[f]))
            for f, c in mapping["columns"].items()
        ]
        self.year_month = [
            (f, at[index[p["year"]]] if p.get("year") else None, p.get("year_value"), at[index[p["month"]]] if p.get("month") else None, fields[f].required)
            for f, p in year_month.items()
        ]
        self.id_columns = [at[index[c]] for c in mapping.get("id_columns") or []]
        # Attendance and activity ids made here (a patron id is made by the patron importer from id_parts).
        self.made_id = ID_FIELDS[kind] if kind in ("attendance", "activity") and (self.id_columns or mapping.get("id_from_row")) else None
        self.missing = frozenset(mapping.get("missing_values") or ())  # the file's own codes for 'missing' (census -1, -3, -9)
        self.census = [(c, at[index[c]]) for c in mapping.get("census_columns") or []]
        # An opt-in kept as a Koha patron attribute: the cell is "CODE:value,CODE2:value"; the field reads its code's value.
        self.attributes = [(at[index[mapping["columns"][f]]], code) for f, code in (mapping.get("attribute_codes") or {}).items()]

    def clean(self, rows: list[tuple[int, list[str]]], first_ordinal: int = 1, *, too_long: dict[int, str] | None = None) -> Batch:
        """The batch of (line, record) rows whose `first_ordinal`-th data row comes first; the rows at the
        lines of `too_long` (line → column) held a value over the reader's limit and are rejected for it."""
        n = len(rows)
        lines = [line for line, _record in rows]
        records = [record for _line, record in rows]
        if n and min(map(len, records)) < self.width:
            records = [r if len(r) >= self.width else r + [""] * (self.width - len(r)) for r in records]
        picked = [list(map(str.strip, cells)) for cells in zip(*map(self._pick, records))] if n else [[]] * self.used
        if self.missing:
            missing = self.missing
            picked = [[("" if c in missing else c) for c in cells] if not missing.isdisjoint(cells) else cells for cells in picked]
        for at, code in self.attributes:
            picked[at] = [attribute(cell, code) for cell in picked[at]]
        failed: dict[int, tuple[str, str]] = {}  # row → its first failing field and why
        if too_long:
            failed.update((k, (too_long[line], reading.too_long_reason())) for k, line in enumerate(lines) if line in too_long)
        columns = {field: _column(field, picked[at], fast, exact, required, missing, failed) for field, at, fast, exact, required, missing in self.plan}
        for field, year_at, year_value, month_at, required in self.year_month:
            months = picked[month_at] if month_at is not None else None
            if year_at is None:  # a month column whose year the mapping gives
                columns[field] = _month_of_year(field, str(year_value), months or [""] * n, required, failed)
            else:
                columns[field] = _year_month(field, picked[year_at], months, required, failed)
        if self.made_id:
            columns[self.made_id] = self._made_ids(picked, first_ordinal, n, failed)
        if self.census:
            columns["census"] = [self._census(k, picked, failed) for k in range(n)]
        batch = Batch(
            lines=lines,
            ordinals=list(range(first_ordinal, first_ordinal + n)),
            columns=columns,
            id_parts=list(zip(*(picked[at] for at in self.id_columns))) if self.id_columns else [()] * n,
        )
        batch.drop(failed)
        return batch

    def _made_ids(self, picked: list[list[str]], first_ordinal: int, n: int, failed: dict) -> list[str | None]:
        """Ids from the chosen columns (the same cells give the same id in every file), else from the row number."""
        if not self.id_columns:
            return [f"row-{first_ordinal + k}" for k in range(n)]
        out: list[str | None] = []
        for k, parts in enumerate(zip(*(picked[at] for at in self.id_columns))):
            if any(parts):
                out.append("gen-" + digest(*(p.lower() for p in parts))[:24])
            else:
                failed.setdefault(k, (self.made_id, "the columns the id is made from are all empty"))
                out.append(None)
        return out

    def _census(self, k: int, picked: list[list[str]], failed: dict) -> dict[str, float | int]:
        figures: dict[str, float | int] = {}
        for column, at in self.census:
            text = picked[at][k]
            if values.is_missing(text):
                continue
            try:
                number = float(text.replace(",", "").replace("\u00a0", ""))
            except ValueError:
                failed.setdefault(k, (column, f"{text!r} is not a number"))
                continue
            figures[column] = int(number) if number.is_integer() else number
        return figures


def attribute(cell: str, code: str) -> str:
    """The value of one patron attribute in a Koha `patron_attributes` cell ("NEWSLETTER:1,INSTID:x"); "" if absent."""
    for part in cell.split(","):
        name, _, value = part.partition(":")
        if name.strip().upper() == code.upper():
            return value.strip()
    return ""


def _column(field: str, cells: list[str], fast, exact, required: bool, missing: frozenset[str], failed: dict) -> list:
    """One field's values (None where `missing`); failures noted in `failed` unless the row already failed."""
    if missing.isdisjoint(cells):
        present, texts = None, cells
    else:
        present = [k for k, c in enumerate(cells) if c not in missing]
        texts = [cells[k] for k in present]
        if required:
            for k, cell in enumerate(cells):
                if cell in missing:
                    failed.setdefault(k, (field, "is missing"))
    parsed = fast(texts)
    if values.SLOW in parsed:
        parsed = list(parsed)
        for j, value in enumerate(parsed):
            if value is values.SLOW:
                try:
                    parsed[j] = exact(texts[j])
                except ValueError as exc:
                    parsed[j] = None
                    failed.setdefault(j if present is None else present[j], (field, str(exc)))
    if present is None:
        return parsed
    out: list = [None] * len(cells)
    for k, value in zip(present, parsed):
        out[k] = value
    return out


def _month_of_year(field: str, year: str, months: list[str], required: bool, failed: dict) -> list:
    out: list = []
    for k, month in enumerate(months):
        if values.is_missing(month):
            if required:
                failed.setdefault(k, (field, "month is missing"))
            out.append(None)
            continue
        try:
            out.append(values.year_month(year, month))
        except ValueError as exc:
            failed.setdefault(k, (field, str(exc)))
            out.append(None)
    return out


def _year_month(field: str, years: list[str], months: list[str] | None, required: bool, failed: dict) -> list:
    out: list = []
    for k, year in enumerate(years):
        month = months[k] if months is not None else ""
        if values.is_missing(year):
            if required:
                failed.setdefault(k, (field, "year is missing"))
            out.append(None)
            continue
        try:
            out.append(values.year_month(year, None if values.is_missing(month) else month))
        except ValueError as exc:
            failed.setdefault(k, (field, str(exc)))
            out.append(None)
    return out
