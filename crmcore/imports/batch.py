"""What every kind of import shares: a batch of cleaned rows, its outcome and the rejected-row record."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rejected:
    line: int
    field: str
    reason: str


class RowError(ValueError):
    """A rejected row: which field, and why (the batch adds the line)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass
class Batch:
    """Cleaned rows, field by field: `columns[field][k]` is row k's value (None when missing)."""

    lines: list[int]  # the file line each row starts on
    ordinals: list[int]  # its place among the file's data rows (1 = the first after the header)
    columns: dict[str, list]
    id_parts: list[tuple[str, ...]]  # the cells a generated patron id is made from
    rejected: list[Rejected] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    def drop(self, failed: dict[int, tuple[str, str]]) -> None:
        """Reject rows k → (field, reason); the batch keeps the others, in order."""
        if not failed:
            return
        self.rejected.extend(Rejected(self.lines[k], f, reason) for k, (f, reason) in sorted(failed.items()))
        keep = [k for k in range(len(self.lines)) if k not in failed]
        self.lines = [self.lines[k] for k in keep]
        self.ordinals = [self.ordinals[k] for k in keep]
        self.id_parts = [self.id_parts[k] for k in keep]
        self.columns = {name: [values[k] for k in keep] for name, values in self.columns.items()}

    def rows(self) -> list[tuple[int, dict[str, Any]]]:
        """(line, {field: value}) per row, for importers that work row by row."""
        names = list(self.columns)
        return [(line, dict(zip(names, values))) for line, *values in zip(self.lines, *self.columns.values())]

    def each_row(self, prepare: Callable[[dict[str, Any]], dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
        """`prepare` applied to every row's values; a row it raises RowError for is rejected."""
        out = []
        for line, values in self.rows():
            try:
                out.append((line, prepare(values)))
            except RowError as exc:
                self.rejected.append(Rejected(line, exc.field, exc.reason))
        return out


@dataclass
class BatchResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def digest(*parts: object) -> str:
    """A short stable hash of values (the row hash that tells an unchanged row)."""
    return digests(["\x1f".join("" if p is None else str(p) for p in parts)])[0]


def digests(lines: list[str]) -> list[str]:
    """digest() of many rows at once, each given as its parts already joined with "\x1f" (the one hash both use)."""
    blake2b = hashlib.blake2b
    return [blake2b(line.encode(), digest_size=16).hexdigest() for line in lines]


def signed64(*parts: object) -> int:
    """A 64-bit signed integer hash of values (ActivityEvent.ext_key)."""
    raw = hashlib.blake2b("\x1f".join("" if p is None else str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(raw, "big", signed=True)
