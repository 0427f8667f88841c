"""Files holding personal data, handed to one staff member through a one-use link that expires in a minute.

Streamlit serves its download buttons' files at /media/… URLs that any request can fetch for as long as
the session lives, with no check of who asks. An access export, a list of names or a sent message goes
through here instead: `offer` keeps the file in the database under a random token (only its hash is
stored) for DOWNLOAD_SECONDS; the app's route `/downloads/<token>` (crmcore.web) hands it out once
(`take`) and forgets it. Every offer is audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session

from crmcore.admin.permissions import Actor
from crmcore.models import Download, utcnow
from crmcore.privacy import audit

DOWNLOAD_SECONDS = 60
GONE = "This download link was already used or has expired. Go back to Liaison and download the file again."


@dataclass(frozen=True)
class File:
    name: str
    content_type: str
    data: bytes


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def offer(session: Session, *, actor: Actor, file_name: str, content_type: str, data: bytes, now: datetime | None = None) -> str:
    """Keep `data` for one download by `actor` within a minute; returns the link's path (/downloads/<token>)."""
    now = now or utcnow()
    session.execute(delete(Download).where(Download.expires_at < now))  # housekeeping: expired offers go
    token = secrets.token_urlsafe(32)
    session.add(Download(token_hash=_hash(token), staff_id=actor.id, file_name=file_name[:200], content_type=content_type, data=data,
                         expires_at=now + timedelta(seconds=DOWNLOAD_SECONDS)))
    audit.record(session, actor=actor, action="download.offer", entity="download", detail={"file": file_name[:200], "bytes": len(data)})
    return f"/downloads/{token}"


def take(session: Session, *, token: str, now: datetime | None = None) -> File:
    """The file behind a link, once: the offer is deleted; ValueError (GONE) when used, expired or unknown."""
    found = session.get(Download, _hash(token))
    if found is None:
        raise ValueError(GONE)
    session.delete(found)
    if found.expires_at < (now or utcnow()):
        raise ValueError(GONE)
    return File(name=found.file_name, content_type=found.content_type, data=found.data)
