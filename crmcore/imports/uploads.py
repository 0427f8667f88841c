"""Uploaded import files: kept owner-only in a private folder under the data folder, and not for long.

An uploaded export holds every column the library's system wrote (passwords and notes included), so
it lives only as long as its import: written 0600 in a 0700 folder whatever the umask, deleted when the
import ends or the upload is replaced, and any left behind (a closed tab, a crash) removed once older
than STALE_AFTER by `remove_stale`, which the worker's housekeeping and the import page call.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

from crmcore import files
from crmcore.admin import config

STALE_AFTER = timedelta(days=1)


def directory(root: Path | None = None) -> Path:
    """The private uploads folder (created 0700, and made so if it was not)."""
    folder = Path(root) if root is not None else config.DATA_DIR / "uploads"
    return files.private_dir(folder)


def save(data: bytes, *, name: str, root: Path | None = None) -> Path:
    """The upload on disk, named by its content (the same upload is written once), readable by this user only."""
    folder = directory(root)
    path = folder / (hashlib.sha256(data).hexdigest()[:32] + "".join(c for c in Path(name).suffix[:10] if c.isalnum() or c == "."))
    if path.exists():
        os.utime(path)  # in use again: not stale
        return path
    return files.write_private(path, data)


def discard(path: Path | None, *, root: Path | None = None) -> bool:
    """Delete an upload (only a file in the uploads folder); True if it was there."""
    if path is None:
        return False
    path = Path(path)
    if path.parent.resolve() != directory(root).resolve():
        return False
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def remove_stale(*, older_than: timedelta = STALE_AFTER, root: Path | None = None, now: float | None = None) -> int:
    """Delete uploads (and half-written ones) not touched for `older_than`; how many were deleted."""
    folder = directory(root)
    cutoff = (time.time() if now is None else now) - older_than.total_seconds()
    removed = 0
    for path in folder.iterdir():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # another process removed it meanwhile
    return removed
