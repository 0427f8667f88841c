"""kill -9 the sending worker at random points during a 2,000-message campaign, then finish it:
nobody gets two messages, and every recipient ends up sent or unknown (never silently lost)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from crmcore.admin import settings
from crmcore.admin.auth import CLI_ACTOR
from crmcore.campaigns import sending
from crmcore.models import Branch, Campaign, CurrentConsent, Message, Patron, utcnow
from tests.campaign_fixtures import _isolated_mail_config, smtp  # noqa: F401
from tests.conftest import ROOT

N = 2000
KILLS = 20
LEASE_SECONDS = 2
WORKER = f"""
import sys
from datetime import timedelta
from crmcore.campaigns import sending
from crmcore.db import Database
db = Database(sys.argv[1])
lease = timedelta(seconds={LEASE_SECONDS})
while True:
    sending.send_pending(db, claim_lease=lease, send_lease=lease)
"""


def bulk_campaign(db, n: int) -> int:
    now = utcnow()
    with db.write() as s:
        branch = Branch(code="MAIN", name="Main")
        s.add(branch)
        s.flush()
        s.execute(insert(Patron), [{"ils_id": f"P{i}", "first_name": f"P{i}", "email": f"p{i}@example.test", "branch_id": branch.id} for i in range(n)])
        ids = list(s.scalars(select(Patron.id)))
        s.execute(insert(CurrentConsent), [{"patron_id": p, "channel": "email", "topic": "events", "granted": True, "updated_at": now} for p in ids])
        campaign = Campaign(name="Crash test", topic="events", subject_template="Hi {{ first_name }}", body_template="Hello", status="sending", launched_at=now)
        s.add(campaign)
        s.flush()
        s.execute(insert(Message), [{"campaign_id": campaign.id, "patron_id": p, "status": "queued", "next_attempt_at": now, "created_at": now} for p in ids])
        settings.put(s, actor=CLI_ACTOR, key="send_rate_per_minute", value=100_000)
        return campaign.id


@pytest.mark.slow
def test_kill_9_during_a_campaign_never_sends_twice(db, smtp):
    cid = bulk_campaign(db, N)
    rng = random.Random(6)
    for _ in range(KILLS):
        before = len(smtp.messages)
        proc = subprocess.Popen([sys.executable, "-c", WORKER, db.url], cwd=ROOT, env=dict(os.environ), stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while len(smtp.messages) == before and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.4))  # somewhere in the middle of sending
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(LEASE_SECONDS + 0.5)  # the dead workers' leases run out
    lease = timedelta(seconds=LEASE_SECONDS)
    while sending.send_pending(db, claim_lease=lease, send_lease=lease):
        pass
    with db.read() as s:
        by_status = dict(s.execute(select(Message.status, func.count()).where(Message.campaign_id == cid).group_by(Message.status)).all())
        sent_ids = {str(m) for m in s.scalars(select(Message.message_id).where(Message.campaign_id == cid, Message.status == "sent"))}
    received = smtp.message_ids()
    assert max(received.values()) == 1, "a recipient received two messages"
    assert set(by_status) <= {"sent", "unknown"} and sum(by_status.values()) == N
    window = sending.Throttle(per_minute=100_000).window  # messages marked "sending" together at this rate
    assert by_status.get("unknown", 0) <= KILLS * window  # at most one window per kill
    assert sent_ids <= set(received)  # "sent" means the server has it
    assert len(received) >= by_status["sent"]
    assert by_status["sent"] >= N - KILLS * window
