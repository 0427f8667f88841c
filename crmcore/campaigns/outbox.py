"""The outbox: with no SMTP server configured, every message is written as a real .eml file here.

The demo works offline, and the "Sent mail" page shows what would have gone out.
"""

from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path

from sqlmodel import Session

from crmcore import files
from crmcore.admin import config
from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns.mime import Mail
from crmcore.privacy import audit

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def directory() -> Path:
    return Path(config.get("CRM_OUTBOX_DIR", str(config.DATA_DIR / "outbox")))


def writable() -> Path:
    """The outbox folder, or OSError (e.g. PermissionError) if messages cannot be written there."""
    folder = files.private_dir(directory())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
    return folder


def write(mail: Mail) -> Path:
    """Write one message atomically, named after its Message-ID (so a rewrite replaces, never duplicates);
    the file is owner-only (0600) whatever the umask."""
    name = _UNSAFE.sub("_", mail.message_id.strip("<>") or "message") + ".eml"
    return files.write_private(files.private_dir(directory()) / name, mail.data)


def remove_patron(*, actor: Actor, patron_id: int) -> int:
    """Delete every outbox file for this patron (their campaign messages and texts, and staff tests previewing them),
    as their erasure requires; returns how many."""
    require(actor, Perm.PRIVACY_REQUESTS)
    folder = directory()
    if not folder.is_dir():
        return 0
    # Names come from Message-IDs: <campaign-C.patron-P@domain> and <test-C.patron-P.random@domain>; texts'
    # files are campaign-C.patron-P.json.
    mine = re.compile(rf"\.patron-{int(patron_id)}[._]")
    removed = 0
    for path in [*folder.glob("*.eml"), *folder.glob("sms/*.json")]:  # mail, and texts (crmcore.texts.gateway)
        if mine.search(path.name):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


@dataclass(frozen=True)
class OutboxEntry:
    name: str
    written_at: datetime
    to: str
    subject: str


def list_messages(session: Session, *, actor: Actor, limit: int = 200) -> list[OutboxEntry]:
    """The newest messages in the outbox (audited when it lists any: their To addresses are patrons')."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    folder = directory()
    if not folder.is_dir():
        return []
    files = sorted((p for p in folder.glob("*.eml")), key=lambda p: p.stat().st_mtime, reverse=True)[:limit]
    entries = []
    for path in files:
        with path.open("rb") as f:
            headers = BytesHeaderParser(policy=policy.default).parse(f)
        written = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        entries.append(OutboxEntry(name=path.name, written_at=written, to=str(headers["To"] or ""), subject=str(headers["Subject"] or "")))
    if entries:
        audit.record(session, actor=actor, action="outbox.list", entity="outbox", detail={"shown": len(entries)})
    return entries


def read(session: Session, *, actor: Actor, name: str) -> EmailMessage:
    """One message from the outbox (audited: it holds a patron's address and details)."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    path = directory() / Path(name).name  # never outside the outbox
    if path.suffix != ".eml" or not path.is_file():
        raise LookupError(f"There is no message {name!r} in the outbox.")
    audit.record(session, actor=actor, action="outbox.view", entity="outbox", entity_id=path.name[:64])
    with path.open("rb") as f:
        return BytesParser(policy=policy.default).parse(f)
