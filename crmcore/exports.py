"""Files staff download: CSV and XLSX with formula cells neutralised.

A cell that starts with = + - @, a tab or a carriage return would be run as a formula by a
spreadsheet (CSV injection); such a cell gets a leading apostrophe. Numbers are left as numbers.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """The value, made safe to open in a spreadsheet."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text cell (and column name) neutralised."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def to_csv(frame: pd.DataFrame) -> bytes:
    """UTF-8 CSV (with BOM, so spreadsheets read accents right), formula cells neutralised."""
    # CRLF rows (RFC 4180): then a cell holding a lone CR is quoted too; unquoted, it would start a new
    # row whose first cell escapes neutralisation ("\r=HYPERLINK(…)").
    return safe_frame(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def to_xlsx(frame: pd.DataFrame, *, sheet: str = "data") -> bytes:
    """An XLSX workbook of one sheet, formula cells neutralised and written as text."""
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        safe_frame(frame).to_excel(writer, index=False, sheet_name=sheet[:31])
    return buffer.getvalue()
