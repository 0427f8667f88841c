"""kill -9 the worker at random points while it evaluates journeys and sends their messages, again and
again, then finish: nobody enters twice, no step is sent twice, nobody is lost."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crmcore.admin import settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.campaigns import sending
from crmcore.campaigns.drafts import in_holdout
from crmcore.journeys import evaluation
from crmcore.models import JourneyEnrolment, Message
from tests.campaign_fixtures import _isolated_mail_config, smtp  # noqa: F401
from tests.conftest import ROOT
from tests.journey_records import moment
from tests.test_journeys import add_many, welcome

N = 3000
KILLS = 20
LEASE_SECONDS = 2
DAYS = 34  # the welcome journey's three messages: days 0, 7 and 30
WORKER = f"""
import sys
from datetime import timedelta
from crmcore.campaigns import sending
from crmcore.db import Database
from crmcore.journeys import evaluation
from tests.journey_records import moment
db = Database(sys.argv[1])
lease = timedelta(seconds={LEASE_SECONDS})
while True:
    for n in range({DAYS}):
        evaluation.evaluate(db, now=moment(n))
        sending.send_pending(db, claim_lease=lease, send_lease=lease, budget_seconds=0.3)
"""


@pytest.mark.slow
def test_kill_9_during_evaluation_and_sending_never_enrols_or_sends_twice(db, smtp):
    pids = add_many(db, N)
    with db.write() as s:
        settings.put(s, actor=CLI_ACTOR, key="send_rate_per_minute", value=100_000)
    jid = welcome(db, holdout_pct=10.0)
    rng = random.Random(19)
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-c", WORKER, db.url], cwd=ROOT, env=dict(os.environ), stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8, 3.0))  # somewhere in an evaluation or a send
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(LEASE_SECONDS + 0.5)  # the dead workers' leases run out
    lease = timedelta(seconds=LEASE_SECONDS)
    for n in range(DAYS):
        evaluation.evaluate(db, now=moment(n))
    while sending.send_pending(db, claim_lease=lease, send_lease=lease):
        pass
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(JourneyEnrolment)) == N
        assert s.scalar(select(func.count(func.distinct(JourneyEnrolment.patron_id)))) == N
        per_patron = dict(s.execute(select(Message.patron_id, func.count()).where(Message.status.in_(("sent", "unknown"))).group_by(Message.patron_id)).all())
        statuses = dict(s.execute(select(Message.status, func.count()).group_by(Message.status)).all())
    received = smtp.message_ids()
    assert max(received.values()) == 1, "a patron received a step twice"
    recipients = [p for p in pids if not in_holdout(jid, p, 10.0)]
    assert {per_patron.get(p, 0) for p in recipients} == {3}, "a step was lost or doubled"
    assert set(statuses) <= {"sent", "unknown", "holdout"} and statuses["holdout"] == 3 * (N - len(recipients))
    assert statuses.get("unknown", 0) <= KILLS * sending.Throttle(per_minute=100_000).window


@pytest.mark.slow
def test_several_workers_at_once_never_enrol_or_send_twice(db, smtp):
    """Three workers evaluate and send the same days side by side (PostgreSQL: SKIP LOCKED on the journey and the
    messages; SQLite: one writer at a time): every patron enters once and gets each step once."""
    n = 600
    pids = add_many(db, n)
    with db.write() as s:
        settings.put(s, actor=CLI_ACTOR, key="send_rate_per_minute", value=100_000)
    jid = welcome(db, holdout_pct=10.0)
    # No one is killed here: leases long enough that a busy machine never lets one run out mid-send ("unknown").
    once = WORKER.replace("while True:", "for _round in range(1):").replace(f"timedelta(seconds={LEASE_SECONDS})", "timedelta(minutes=5)")
    procs = [subprocess.Popen([sys.executable, "-c", once, db.url], cwd=ROOT, env=dict(os.environ)) for _ in range(3)]
    assert [proc.wait(timeout=600) for proc in procs] == [0, 0, 0]
    while sending.send_pending(db):  # what the workers' short budgets left
        pass
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(JourneyEnrolment)) == s.scalar(select(func.count(func.distinct(JourneyEnrolment.patron_id)))) == n
        statuses = dict(s.execute(select(Message.status, func.count()).group_by(Message.status)).all())
    recipients = [p for p in pids if not in_holdout(jid, p, 10.0)]
    assert statuses == {"sent": 3 * len(recipients), "holdout": 3 * (n - len(recipients))}
    received = smtp.message_ids()
    assert len(received) == 3 * len(recipients) and max(received.values()) == 1, "a patron received a step twice"
