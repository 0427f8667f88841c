"""Turning one file row into clean field values, per the mapping (compiled once per file).

Only mapped columns are read: the rest of the row is never looked at, so an unmapped column cannot
reach the database, the run record or the error file.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import partial
from typing import Any

from crmcore.imports import values
from crmcore.imports.mapping import FIELDS, FieldSpec


class RowError(ValueError):
    """A rejected row: which field, and why (the runner adds the line)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def _text(max_len: int, text: str) -> str:
    if len(text) > max_len:
        raise ValueError(f"longer than {max_len} characters")
    return text


def _year(order: str, text: str) -> int:
    year = int(text) if len(text) == 4 and text.isdigit() else values.parse_date(text, order).year
    if not 1880 <= year <= date.today().year:
        raise ValueError(f"{text!r} is not a plausible birth year")
    return year


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
        "bool": values.parse_bool,
        "date": partial(values.parse_date, order=order),
        "year": partial(_year, order),
        "int": _count,
        "email": values.parse_email,
        "phone": values.parse_phone,
    }[spec.type]


class Cleaner:
    """Compiled from a cleaned mapping and the header: `clean(record)` → {field: value or None}."""

    def __init__(self, kind: str, mapping: dict[str, Any], header: list[str]):
        fields: dict[str, FieldSpec] = FIELDS[kind]
        order = mapping.get("date_order", "iso")
        index = {name: i for i, name in reversed(list(enumerate(header)))}
        self.fields = fields
        self.plan = [(f, index[c], parser(fields[f], order), fields[f].required) for f, c in mapping["columns"].items()]
        self.year_month = [
            (f, index[p["year"]], index[p["month"]] if p.get("month") else None, fields[f].required)
            for f, p in (mapping.get("year_month") or {}).items()
        ]
        self.id_columns = [index[c] for c in mapping.get("id_columns") or []]
        self.census = [(c, index[c]) for c in mapping.get("census_columns") or []]
        self.names = [f for f, *_ in self.plan] + [f for f, *_ in self.year_month]

    def clean(self, record: list[str]) -> dict[str, Any]:
        width = len(record)
        out: dict[str, Any] = {}
        for field, i, parse, required in self.plan:
            text = record[i].strip() if i < width else ""
            if values.is_missing(text):
                if required:
                    raise RowError(field, "is missing")
                out[field] = None
                continue
            try:
                out[field] = parse(text)
            except ValueError as exc:
                raise RowError(field, str(exc)) from None
        for field, yi, mi, required in self.year_month:
            year = record[yi].strip() if yi < width else ""
            month = record[mi].strip() if mi is not None and mi < width else ""
            if values.is_missing(year):
                if required:
                    raise RowError(field, "year is missing")
                out[field] = None
                continue
            try:
                out[field] = values.year_month(year, None if values.is_missing(month) else month)
            except ValueError as exc:
                raise RowError(field, str(exc)) from None
        if self.census:
            out["census"] = self._census(record)
        return out

    def _census(self, record: list[str]) -> dict[str, float | int]:
        figures: dict[str, float | int] = {}
        for column, i in self.census:
            text = record[i].strip() if i < len(record) else ""
            if values.is_missing(text):
                continue
            try:
                number = float(text.replace(",", "").replace("\u00a0", ""))
            except ValueError:
                raise RowError(column, f"{text!r} is not a number") from None
            figures[column] = int(number) if number.is_integer() else number
        return figures

    def id_parts(self, record: list[str]) -> list[str]:
        """The cells a generated patron id is made from (stripped)."""
        width = len(record)
        return [record[i].strip() if i < width else "" for i in self.id_columns]
