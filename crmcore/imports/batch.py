"""What every kind of import shares: a batch's outcome and the rejected-row record."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rejected:
    line: int
    field: str
    reason: str


@dataclass
class BatchResult:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def digest(*parts: object) -> str:
    """A short stable hash of values (the row hash that tells an unchanged row)."""
    return hashlib.blake2b("\x1f".join("" if p is None else str(p) for p in parts).encode(), digest_size=16).hexdigest()


def signed64(*parts: object) -> int:
    """A 64-bit signed integer hash of values (ActivityEvent.ext_key)."""
    raw = hashlib.blake2b("\x1f".join("" if p is None else str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(raw, "big", signed=True)
