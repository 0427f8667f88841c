"""Faults an unlucky administrator meets, against real parts: the way out is down (an unwritable
outbox folder, an SMTP server refusing connections), files made under a loose umask.

Sending and outbox faults are here in functions named test_sending_* and test_outbox_*; other areas
add theirs beside them."""

from __future__ import annotations

import os
import stat
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from crmcore.campaigns import sending
from crmcore.models import Message, utcnow
from tests.campaign_fixtures import Sink, _isolated_mail_config, add_campaign, add_patrons, free_port  # noqa: F401

needs_permissions = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into any folder")


def statuses(db, campaign_id) -> dict[str, int]:
    with db.read() as s:
        return dict(s.execute(select(Message.status, func.count()).where(Message.campaign_id == campaign_id).group_by(Message.status)).all())


def make_due(db) -> None:
    """The worker tries again a minute after an outage: move that minute into the past."""
    with db.write() as s:
        s.execute(update(Message).where(Message.status == "queued").values(next_attempt_at=utcnow() - timedelta(seconds=1)))


@needs_permissions
def test_sending_with_an_unwritable_outbox_keeps_messages_queued_and_says_why(db, staff, tmp_path):
    with db.write() as s:
        ids = add_patrons(s, 3)
        cid = add_campaign(s, patron_ids=ids)
    folder = tmp_path / "outbox"
    folder.mkdir(mode=0o700)
    folder.chmod(0o500)  # readable, not writable
    try:
        for _ in range(3):  # worker cycles during the outage: nothing becomes unknown or failed
            assert sending.send_pending(db) == {}
            make_due(db)
        assert statuses(db, cid) == {"queued": 3}
        with db.read() as s:
            attempts = set(s.scalars(select(Message.attempts).where(Message.campaign_id == cid)))
            status = sending.status(s, actor=staff["manager"])
        assert attempts == {0}  # an outage is not an attempt
        assert status["waiting"] == 3
        assert f"the outbox folder {folder} cannot be written (Permission denied)" == status["paused"]
        assert list(folder.iterdir()) == []
        assert stat.S_IMODE(folder.stat().st_mode) == 0o500  # Liaison does not grant itself what was taken away
    finally:
        folder.chmod(0o700)
    make_due(db)
    assert sending.send_pending(db) == {"sent": 3}
    assert statuses(db, cid) == {"sent": 3}
    assert len(list(folder.glob("*.eml"))) == 3
    with db.read() as s:
        assert sending.status(s, actor=staff["manager"])["paused"] is None


def test_sending_with_the_outbox_under_a_file_keeps_messages_queued_and_says_why(db, staff, tmp_path, monkeypatch):
    """The same outage as an unwritable folder, in a form that stops root too: the outbox's parent is a file."""
    (tmp_path / "data").write_text("not a folder")
    monkeypatch.setenv("CRM_OUTBOX_DIR", str(tmp_path / "data" / "outbox"))
    with db.write() as s:
        cid = add_campaign(s, patron_ids=add_patrons(s, 2))
    assert sending.send_pending(db) == {}
    make_due(db)
    assert sending.send_pending(db) == {}
    assert statuses(db, cid) == {"queued": 2}
    with db.read() as s:
        status = sending.status(s, actor=staff["manager"])
    assert status == {**status, "waiting": 2, "paused": f"the outbox folder {tmp_path / 'data' / 'outbox'} cannot be written (Not a directory)"}
    (tmp_path / "data").unlink()
    make_due(db)
    assert sending.send_pending(db) == {"sent": 2}
    assert len(list((tmp_path / "data" / "outbox").glob("*.eml"))) == 2


def test_sending_when_the_outbox_turns_unwritable_mid_batch_gives_the_rest_back(db, staff, tmp_path):
    """The folder check passes, then a write fails (a read-only file where the message goes): that message
    and the rest wait; none is unknown."""
    with db.write() as s:
        ids = add_patrons(s, 3)
        cid = add_campaign(s, patron_ids=ids)
    folder = tmp_path / "outbox"
    folder.mkdir(mode=0o700)
    blocker = folder / f".campaign-{cid}.patron-{ids[1]}_library.test.eml.{os.getpid()}.tmp"
    blocker.mkdir()  # a folder where the message's temporary file must go: the write fails
    assert sending.send_pending(db) == {"sent": 1}
    assert statuses(db, cid) == {"sent": 1, "queued": 2}
    with db.read() as s:
        assert "cannot be written" in sending.status(s, actor=staff["manager"])["paused"]
    blocker.rmdir()
    make_due(db)
    assert sending.send_pending(db) == {"sent": 2}
    assert statuses(db, cid) == {"sent": 3}


def test_sending_with_smtp_refusing_connections_keeps_messages_queued_until_it_answers(db, staff, monkeypatch):
    port = free_port()  # nothing listens there yet
    monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_SMTP_PORT", str(port))
    with db.write() as s:
        ids = add_patrons(s, 2)
        cid = add_campaign(s, patron_ids=ids)
    assert sending.send_pending(db) == {}
    make_due(db)
    assert sending.send_pending(db) == {}
    assert statuses(db, cid) == {"queued": 2}
    with db.read() as s:
        status = sending.status(s, actor=staff["admin"])
    assert status["paused"] == f"the mail server 127.0.0.1:{port} cannot be reached (Connection refused)"
    assert status["waiting"] == 2
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        make_due(db)
        assert sending.send_pending(db) == {"sent": 2}
    finally:
        controller.stop()
    assert len(sink.messages) == 2 and statuses(db, cid) == {"sent": 2}
    with db.read() as s:
        assert sending.status(s, actor=staff["admin"]) == {"waiting": 0, "due": 0, "paused": None, "paused_at": None}


def test_sending_status_shows_on_the_sent_mail_page(db, app, monkeypatch):
    monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_SMTP_PORT", str(free_port()))
    with db.write() as s:
        add_campaign(s, patron_ids=add_patrons(s, 2))
    sending.send_pending(db)
    at = app(role="manager", page="pages/sent_mail.py").run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any(w.startswith("Sending is paused: the mail server 127.0.0.1:") and "2 messages wait" in w for w in warnings), warnings


@pytest.mark.parametrize("existing", [None, 0o755])
def test_outbox_files_are_owner_only_whatever_the_umask(db, tmp_path, existing):
    folder = tmp_path / "outbox"
    if existing is not None:
        folder.mkdir()
        folder.chmod(existing)
    with db.write() as s:
        add_campaign(s, patron_ids=add_patrons(s, 2))
    old = os.umask(0o022)
    try:
        assert sending.send_pending(db) == {"sent": 2}
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert len(files) == 2 and {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
