"""Files that may hold personal data are readable by their owner only, whatever the umask: 0600 files in
0700 folders (the database and its WAL, backups, the outbox, uploads, the secret key)."""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) owner-only; an existing folder Liaison owns is made owner-only too."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for folder in [*missing, path]:
        if folder.exists() and folder.stat().st_uid == os.geteuid():
            os.chmod(folder, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists (empty if new) with mode 0600; SQLite gives its -wal and -shm files the
    database file's mode, so they follow."""
    if not path.parent.exists():
        private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.close(fd)
    if path.stat().st_uid == os.geteuid():
        os.chmod(path, FILE_MODE)
    return path


def write_private(path: Path, data: bytes) -> Path:
    """Write `data` to a new or existing file at `path`, mode 0600 from the moment it exists."""
    if not path.parent.exists():
        private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, FILE_MODE)
    return path
