"""One sentence saying what a chart shows, for the caption under it (a reader who cannot see the chart, or a
screen reader, gets the figure in words; the table or CSV under it gives every number)."""

from __future__ import annotations

import pandas as pd

from crmcore import labels
from crmcore.privacy import small_cells


def _words(name: object) -> str:
    return str(labels.column(name)).replace("_per_1000", " per 1,000 residents").replace("_", " ")


PLURAL = {"branch": "branches", "staff": "staff members", "name": "zones", "label": "labels"}


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"


def _when(value: object) -> str:
    try:
        return f"{pd.Timestamp(value):%B %Y}"
    except (TypeError, ValueError):
        return str(value)


def summary(frame: pd.DataFrame, *, measure: str | None = None, by: str | None = None, label: str | None = None) -> str:
    """"Summary: …" in one sentence. Over months (a `month` column): how `measure` (the first numeric column
    unless named; "total": all of them added up; `label` names it) moved from the first month to the last, summed over the other columns' groups. Over
    categories (`by`, else the first text column): the highest and the lowest. Suppressed cells ("<k") count
    as unknown, never as zero."""
    if frame is None or not len(frame):
        return "Summary: nothing to show for the period and filters chosen."
    numbers = small_cells.numeric(frame)
    candidates = [c for c in numbers.columns if c not in ("month", by) and pd.api.types.is_numeric_dtype(numbers[c])]
    if measure == "total":  # every numeric column added up (e.g. activity of every kind)
        numbers = numbers.assign(total=numbers[candidates].sum(axis=1, min_count=1))
        measure = "total"
    if measure is None:
        if not candidates:
            return f"Summary: {len(frame):,} rows, listed in the table below."
        measure = candidates[0]
    name = _words(label or measure)
    if "month" in numbers.columns and by is None:
        per_month = numbers.groupby("month", sort=True)[measure].sum(min_count=1).dropna()
        if len(per_month) < 2:
            if len(per_month) == 1:
                one = per_month.iloc[0] == 1 and name.endswith("s")  # "1 interaction", not "1 interactions"
                return f"Summary: {_number(per_month.iloc[0])} {name[:-1] if one else name} in {_when(per_month.index[0])}."
            return f"Summary: no {name} shown (groups too small to show)."
        first, last = per_month.iloc[0], per_month.iloc[-1]
        verb = "rose" if last > first else "fell" if last < first else "stayed"
        change = f" ({(last - first) / first * 100:+.0f} %)" if first else ""
        span = f"{_when(per_month.index[0])} to {_when(per_month.index[-1])}"
        if verb == "stayed":
            return f"Summary: {name} stayed at {_number(first)} from {span}."
        return f"Summary: {name} {verb} from {_number(first)} to {_number(last)}{change}, {span}; highest {_number(per_month.max())} in {_when(per_month.idxmax())}."
    if by is None:
        text = [c for c in frame.columns if c != measure and not pd.api.types.is_numeric_dtype(numbers[c])]
        by = text[0] if text else None
    if by is None:
        return f"Summary: {name} totals {_number(numbers[measure].sum())}."
    values = numbers.groupby(by, sort=False)[measure].sum(min_count=1).dropna()
    if not len(values):
        return f"Summary: no {name} shown (groups too small to show)."
    top, bottom = labels.value(values.idxmax()), labels.value(values.idxmin())
    if len(values) == 1 or top == bottom:
        return f"Summary: {name}: {top} {_number(values.max())}."
    return f"Summary: {name} is highest for {top} ({_number(values.max())}) and lowest for {bottom} ({_number(values.min())}), across {len(values):,} {PLURAL.get(by, _words(by) + 's')}."
