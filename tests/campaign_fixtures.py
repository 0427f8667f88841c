"""What the campaign tests share: a real SMTP server on loopback (aiosmtpd), and tiny data builders."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from crmcore.library import consent
from crmcore.models import Branch, Campaign, Message, Patron, Segment, utcnow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """An SMTP handler that keeps what it receives; `replies` maps a recipient to the code to answer,
    `hang_up_on` names recipients whose message is cut off by closing the connection during DATA."""

    def __init__(self):
        self.messages: list = []
        self.senders: list[str] = []  # the envelope sender (return path) of each message, in order
        self.replies: dict[str, str] = {}
        self.hang_up_on: set[str] = set()
        self.delay = 0.0  # seconds before answering each message (a slower server; each connection waits on its own)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            reply = self.replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hang_up_on & set(envelope.rcpt_tos):
            server.transport.close()
            return "421 Connection lost"
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            self.senders.append(envelope.mail_from)
        return "250 Message accepted for delivery"

    def message_ids(self) -> Counter:
        with self.lock:
            return Counter(str(m["Message-ID"]) for m in self.messages)


@pytest.fixture(autouse=True)
def _isolated_mail_config(monkeypatch, tmp_path):
    """Signing key and outbox of the test's own; no SMTP unless a test starts one."""
    monkeypatch.setenv("CRM_SECRET_KEY", "test-secret-key-not-for-production")
    monkeypatch.setenv("CRM_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("CRM_MAIL_FROM", "Library <news@library.test>")
    monkeypatch.delenv("CRM_SMTP_HOST", raising=False)
    monkeypatch.delenv("CRM_PUBLIC_URL", raising=False)


@pytest.fixture
def smtp(monkeypatch):
    """A real SMTP server on 127.0.0.1 at a free port; the sender is configured to use it."""
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_SMTP_PORT", str(port))
    sink.port = port
    yield sink
    controller.stop()


def add_patrons(session, n: int, *, branch: str = "MAIN", topic: str = "events", consented=True, email=True, start: int = 0) -> list[int]:
    """`n` patrons at one branch, with an address and consent for email × topic unless told otherwise."""
    b = session.query(Branch).filter(Branch.code == branch).first()
    if b is None:
        b = Branch(code=branch, name=f"{branch.title()} Library")
        session.add(b)
        session.flush()
    ids = []
    for i in range(start, start + n):
        p = Patron(ils_id=f"{branch}-{i}", first_name=f"Pat{i}", last_name="Test", email=f"pat{i}.{branch.lower()}@example.test" if email else None, branch_id=b.id)
        session.add(p)
        session.flush()
        ids.append(p.id)
        if consented:
            consent.record(session, patron_id=p.id, channel="email", topic=topic, granted=True, source="test")
    return ids


def add_campaign(session, *, patron_ids: list[int], topic: str = "events", subject: str = "Hello {{ first_name }}", body: str = "Dear {{ first_name }},\n\nSee you at {{ branch }}.") -> int:
    """A launched campaign with one queued message per patron (without going through segments)."""
    campaign = Campaign(name="Direct test", topic=topic, subject_template=subject, body_template=body, status="sending", launched_at=utcnow())
    session.add(campaign)
    session.flush()
    for pid in patron_ids:
        session.add(Message(campaign_id=campaign.id, patron_id=pid, status="queued", next_attempt_at=utcnow()))
    return campaign.id


def add_segment(session, *, branches: list[str], name: str = "Branch segment") -> int:
    segment = Segment(name=name, rules={"all": [{"field": "branch", "op": "in", "value": branches}]})
    session.add(segment)
    session.flush()
    return segment.id


def case_campaign(session) -> tuple[int, int]:
    """For permission CASES: a draft campaign to one patron, on an empty database. (campaign, patron)."""
    (pid,) = add_patrons(session, 1, branch="CASE")
    campaign = Campaign(name="Case", segment_id=add_segment(session, branches=["CASE"], name="Case segment"), topic="events", subject_template="Hi", body_template="Hello {{ first_name }}")
    session.add(campaign)
    session.flush()
    return campaign.id, pid


def with_temp_mail(call):
    """Run `call()` with a throw-away outbox and signing key (for permission CASES)."""
    import os
    import tempfile
    from unittest import mock

    with tempfile.TemporaryDirectory() as folder, mock.patch.dict(os.environ, {"CRM_OUTBOX_DIR": folder, "CRM_SECRET_KEY": "cases"}):
        os.environ.pop("CRM_SMTP_HOST", None)
        return call()


def read_missing_outbox_message(session, actor):
    """For permission CASES: the permission check passes, then the message is (rightly) not found."""
    from crmcore.campaigns import outbox

    try:
        with_temp_mail(lambda: outbox.read(session, actor=actor, name="none.eml"))
    except LookupError:
        pass
