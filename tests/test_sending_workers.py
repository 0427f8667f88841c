"""Two worker processes (`python -m crmcore worker --job "send campaigns"`) send one campaign together to an
SMTP server that takes a few milliseconds per message: every message goes out exactly once, none is lost,
and both workers take part (on PostgreSQL they claim with FOR UPDATE SKIP LOCKED; on SQLite they queue
for the write lock)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from crmcore.admin import settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.models import Message
from tests.campaign_fixtures import _isolated_mail_config, add_campaign, add_patrons, smtp  # noqa: F401
from tests.conftest import ROOT

N = 300
RATE = 1200  # a minute, per worker: claims of 100 (5 s of sending), so that the second worker finds work
SENT = re.compile(r"job send campaigns: \{[^}]*'sent': (\d+)")


def wait_for(what, check, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_two_worker_processes_send_a_campaign_once_each_with_none_lost(db, smtp, tmp_path):
    smtp.delay = 0.005
    with db.write() as s:
        settings.put(s, actor=CLI_ACTOR, key="send_rate_per_minute", value=RATE)
    env = {**os.environ, "DATABASE_URL": db.url, "CRM_DATA_DIR": str(tmp_path / "data")}
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    procs = []
    try:
        for log in logs:
            with open(log, "wb") as out:
                procs.append(subprocess.Popen([sys.executable, "-m", "crmcore", "worker", "--job", "send campaigns"], cwd=ROOT, env=env,
                                              stdout=out, stderr=subprocess.STDOUT))
        wait_for("both workers started", lambda: all("worker started" in log.read_text() for log in logs), seconds=60)
        with db.write() as s:
            cid = add_campaign(s, patron_ids=add_patrons(s, N))

        def done() -> bool:
            assert all(p.poll() is None for p in procs), "a worker stopped: " + " / ".join(log.read_text()[-500:] for log in logs)
            with db.read() as s:
                return not s.scalar(select(func.count()).where(Message.campaign_id == cid, Message.status.in_(("queued", "sending"))))

        wait_for("the campaign sent", done, seconds=180)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
    received = smtp.message_ids()
    assert len(received) == N and max(received.values()) == 1  # none lost, none twice
    with db.read() as s:
        assert dict(s.execute(select(Message.status, func.count()).where(Message.campaign_id == cid).group_by(Message.status)).all()) == {"sent": N}
        recorded = set(s.scalars(select(Message.message_id).where(Message.campaign_id == cid)))
    assert recorded == set(received)
    per_worker = [sum(int(n) for n in SENT.findall(log.read_text())) for log in logs]
    assert sum(per_worker) == N and min(per_worker) > 0, per_worker  # both took part


def test_the_worker_runs_only_the_jobs_named_and_names_the_jobs_for_a_wrong_one(sqlite_db, monkeypatch, capsys):
    from crmcore import cli, worker

    monkeypatch.setenv("DATABASE_URL", sqlite_db.url)
    ran = []
    monkeypatch.setattr(worker, "JOBS", [worker.Job(name, worker.JOBS[0].every, lambda db, name=name: ran.append(name)) for name in ("one", "two")])
    assert cli.main(["worker", "--once", "--job", "two"]) == 0
    assert ran == ["two"]
    assert cli.main(["worker", "--once", "--job", "send everything"]) == 1
    err = capsys.readouterr().err
    assert "No worker job is called 'send everything'. The jobs are: one, two." in err and "Traceback" not in err
    assert ran == ["two"]
