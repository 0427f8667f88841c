"""Small-cell suppression: no figure on the dashboard, or in its downloads, describes fewer than k patrons.

A count of patrons between 1 and k-1 is "small"; zero is shown (an empty group singles nobody out).
Three rules, applied in crmcore before anything is cached, drawn or downloaded:

- primary: a cell whose group of patrons is small is replaced by "<k";
- complementary: in a line of cells whose total is also known (shown in the same view), the hidden
  cells could be recovered by subtraction, so more cells of the line are hidden (the smallest first)
  until the hidden ones are at least two and hold at least k patrons together;
- remainder: a part shown beside its total (active of registered) also reveals the rest, so the part is
  suppressed when the rest is small.

Changes between periods smaller than k are suppressed as well (a change of +3 registered patrons
is a group of three new patrons).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def label(k: int) -> str:
    """What a suppressed cell shows."""
    return f"<{k}"


def is_small(patrons: Any, k: int) -> bool:
    """A group of 1 to k-1 patrons (zero and unknown are not small)."""
    return patrons is not None and not pd.isna(patrons) and 0 < patrons < k


def count(patrons: int | None, k: int) -> int | str | None:
    """A patron count as shown: the number, or "<k" when small."""
    return label(k) if is_small(patrons, k) else patrons


def change(current: Any, previous: Any, k: int) -> int | float | str | None:
    """The change from `previous` to `current`, or "<k" when either side is suppressed or it is small."""
    if isinstance(current, str) or isinstance(previous, str) or current is None or previous is None:
        return None
    delta = current - previous
    return label(k) if 0 < abs(delta) < k else delta


def complementary(sizes: np.ndarray, mask: np.ndarray, k: int, *, rows: bool = True, columns: bool = True) -> np.ndarray:
    """`mask` widened until, in every row (and/or column) of `sizes`, the suppressed non-empty cells are
    none, or at least two holding at least k patrons together: then subtracting the shown cells from
    the line's total recovers only a group of k or more.

    The cell added is the smallest non-empty unsuppressed one of the line.
    """
    sizes = np.nan_to_num(np.asarray(sizes, dtype=float), nan=0.0)
    mask = np.array(mask, dtype=bool, copy=True)
    if sizes.ndim != 2:
        raise ValueError("complementary suppression needs a two-dimensional table")
    positive = sizes > 0
    lines = ([(i, slice(None)) for i in range(sizes.shape[0])] if rows else []) + (
        [(slice(None), j) for j in range(sizes.shape[1])] if columns else []
    )
    changed = True
    while changed:
        changed = False
        for index in lines:
            hidden = mask[index] & positive[index]
            if not hidden.any() or (hidden.sum() >= 2 and sizes[index][hidden].sum() >= k):
                continue
            candidates = np.where(positive[index] & ~mask[index], sizes[index], np.inf)
            if np.isinf(candidates).all():
                continue  # everything non-empty is hidden already: the line's total is all that shows
            pick = int(np.argmin(candidates))
            if isinstance(index[0], slice):
                mask[pick, index[1]] = True
            else:
                mask[index[0], pick] = True
            changed = True
    return mask


def primary(sizes: np.ndarray | pd.Series | pd.DataFrame, k: int) -> np.ndarray:
    """True where the group of patrons behind a cell is small."""
    values = np.nan_to_num(np.asarray(sizes, dtype=float), nan=0.0)
    return (values > 0) & (values < k)


def remainder(parts: Sequence[float], totals: Sequence[float], k: int) -> np.ndarray:
    """True where a part shown beside its total leaves a small rest (total - part)."""
    rest = np.asarray(totals, dtype=float) - np.asarray(parts, dtype=float)
    return (rest > 0) & (rest < k)


def apply(frame: pd.DataFrame, mask: np.ndarray | pd.DataFrame, k: int, *, columns: Sequence[str]) -> pd.DataFrame:
    """A copy of `frame` in which the masked cells of `columns` read "<k" (mask has one column per name)."""
    out = frame.copy()
    mask = np.asarray(mask, dtype=bool).reshape(len(frame), len(columns))
    for j, column in enumerate(columns):
        if mask[:, j].any():
            out[column] = out[column].astype(object)
            out.loc[mask[:, j], column] = label(k)
    return out


def suppress_column(frame: pd.DataFrame, k: int, *, sizes: str, values: Sequence[str] = (), complement: bool = False) -> pd.DataFrame:
    """Suppress the rows of a long table whose group (`sizes` column) is small: that column and `values`.

    With `complement`, the rows are parts of a total shown in the same view, so a lone suppressed row
    gets a second one.
    """
    mask = primary(frame[sizes], k)
    if complement and len(frame):
        mask = complementary(frame[[sizes]].to_numpy(dtype=float), mask.reshape(-1, 1), k, rows=False)[:, 0]
    columns = [sizes, *values]
    return apply(frame, np.repeat(mask.reshape(-1, 1), len(columns), axis=1), k, columns=columns)


def suppress_grid(grid: pd.DataFrame, k: int, *, sizes: pd.DataFrame | None = None) -> pd.DataFrame:
    """A wide table of counts (rows × columns, totals known both ways) with primary and complementary
    suppression; `sizes` gives the patrons behind each cell when the cells are not patron counts."""
    sizes = grid if sizes is None else sizes
    sizes_array = sizes.to_numpy(dtype=float)
    mask = complementary(sizes_array, primary(sizes_array, k), k)
    return apply(grid, mask, k, columns=list(grid.columns))


def numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """For charts: suppressed cells become gaps (NaN); numbers stay numbers and labels stay labels."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype != object:
            continue
        values = out[column].map(lambda v: np.nan if isinstance(v, str) and v.startswith("<") else v)
        converted = pd.to_numeric(values, errors="coerce")
        if converted.notna().sum() == values.notna().sum():  # every remaining cell was a number
            out[column] = converted
    return out
