"""B12: two worker processes sending 20,000 messages of a launched campaign to an SMTP sink that answers
each message after 10 ms, against one worker sending the same, on the same database (PostgreSQL: `--db
postgres`; on SQLite it runs the same way and is reported, the target is PostgreSQL's).

The workers are real processes, `python -m crmcore worker --job "send campaigns"` (only the sending job: the
daily jobs would otherwise run first on start), started together on the run's database with the sink (a
process of its own on loopback, `bench/smtp_sink.py`) as their SMTP server. Once they have started (their
"worker started" logged: importing under load takes seconds), a campaign is launched and timed from its
launch to the moment none of its messages is queued or sending, then the workers are stopped. Throughput is
messages over that time, which includes the workers' first look for work (the sending job runs every 5 s).

The answer checked: every message of the campaign is "sent" and the sink received each one exactly once
(counted per recipient and Message-ID), for one worker and for two; a duplicate or a loss is a wrong answer.

The library is the run's (at least 100,000 patrons: about 43 % consent to email about services); before each
send the earlier B12 messages are deleted and a fresh campaign is launched on one scratch copy. The two sides
take turns (one worker, then two), after a warm-up round of `B12_WARMUP` messages (default 1,000) each; the
result is the median of the rounds' ratios. `B12_MESSAGES` (default 20,000) and `B12_DELAY_MS` (default 10)
change the load.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager

from bench import b4_sending as b4
from bench.common import ROOT, Context, Row, check_agree, say, scratch_copy
from bench.smtp_sink import Sink

WHAT = "two workers sending 20,000 messages (sink answers in 10 ms)"
TARGET = "≥ 1.6× one worker, 0 duplicates"
MESSAGES = int(os.environ.get("B12_MESSAGES", "20000"))
WARMUP = int(os.environ.get("B12_WARMUP", "1000"))
DELAY = int(os.environ.get("B12_DELAY_MS", "10")) / 1000
LIBRARY = 100_000  # at least: 20,000 of about 43,000 consenting patrons
NAME = "b12"
TIMEOUT = 3600.0  # seconds one send may take before the run is abandoned
_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def relaunch(db, *, messages: int, name: str) -> int:
    """Delete the messages of earlier B12 campaigns, then launch a new one of `messages` queued messages; its id."""
    from sqlalchemy import delete, select

    from crmcore.models import Campaign, Message

    with db.write() as session:
        session.execute(delete(Message).where(Message.campaign_id.in_(select(Campaign.id).where(Campaign.name.like(f"{NAME} %")))))
    b4.launch(db, messages=messages, name=name)
    with db.read() as session:
        return session.scalar(select(Campaign.id).where(Campaign.name == name))


def pending(db, campaign_id: int) -> int:
    from sqlalchemy import func, select

    from crmcore.models import Message

    with db.read() as session:
        return session.scalar(select(func.count()).where(Message.campaign_id == campaign_id, Message.status.in_(("queued", "sending"))))


def worker_env(db, sink_port: int) -> dict[str, str]:
    """The environment of a worker process: the run's database, the sink as SMTP server."""
    env = {k: v for k, v in os.environ.items() if k not in ("CRM_SMTP_USER", "CRM_SMTP_PASSWORD")}
    env.update({"DATABASE_URL": db.url, "CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(sink_port), "CRM_SMTP_STARTTLS": "false",
                "CRM_MAIL_FROM": "library@bench.test", "CRM_SECRET_KEY": env.get("CRM_SECRET_KEY", "bench-secret-key-not-for-production")})
    return env


@contextmanager
def running(workers: int, *, env: dict[str, str], log_path):
    """`workers` worker processes, started and past their start-up (their "worker started" logged); stopped after."""
    command = [sys.executable, "-m", "crmcore", "worker", "--job", "send campaigns"]
    before = log_path.read_bytes().count(b"worker started") if log_path.exists() else 0
    with open(log_path, "ab") as log:
        procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT) for _ in range(workers)]
        try:
            deadline = time.perf_counter() + 300
            while log_path.read_bytes().count(b"worker started") < before + workers:
                if any(p.poll() is not None for p in procs) or time.perf_counter() > deadline:
                    raise RuntimeError(f"a worker did not start (exit {[p.poll() for p in procs]}); see {log_path}")
                time.sleep(0.1)
            yield procs
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()


def wait_sent(db, campaign_id: int, procs, *, log_path) -> float:
    """Seconds until the campaign has nothing queued or sending."""
    start = time.perf_counter()
    while pending(db, campaign_id):
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a worker stopped early (exit {[p.poll() for p in procs]}); see {log_path}")
        if time.perf_counter() - start > TIMEOUT:
            raise RuntimeError(f"not sent within {TIMEOUT:.0f} s; see {log_path}")
        time.sleep(0.05)
    return time.perf_counter() - start


def check(db, campaign_id: int, received: list[tuple[str, bytes]], *, what: str) -> dict:
    """Every message of the campaign sent, and received by the sink exactly once; the counts (WrongAnswer if not)."""
    from sqlalchemy import func, select

    from crmcore.models import Message

    with db.read() as session:
        mine = (Message.campaign_id == campaign_id, Message.status != "cancelled")  # those past the count were cancelled at launch
        statuses = dict(session.execute(select(Message.status, func.count()).where(*mine).group_by(Message.status)).all())
        # the Message-ID each one was sent with (recorded when marked "sending"), or one no message can have
        expected = {header or f"never sent: {mid}" for mid, header in session.execute(select(Message.id, Message.message_id).where(*mine))}
    got = Counter()
    for to, data in received:
        found = _MESSAGE_ID.search(data)
        got[(to, found.group(1).decode() if found else None)] += 1
    duplicates = sum(n - 1 for n in got.values() if n > 1)
    ids = {mid for _to, mid in got}
    answer = {"statuses": statuses, "received": len(received), "duplicates": duplicates, "missing": len(expected - ids), "unexpected": len(ids - expected)}
    check_agree(what, answer, {"statuses": {"sent": len(expected)}, "received": len(expected), "duplicates": 0, "missing": 0, "unexpected": 0})
    return answer


def run(ctx: Context) -> list[Row]:
    library = ctx.db(max(ctx.size, LIBRARY))
    say(f"  {MESSAGES:,} messages, sink answering in {DELAY * 1000:.0f} ms; a scratch copy of the library …")
    db = scratch_copy(library, "b12-workers.db")
    log_path = ROOT / "bench" / "data" / "scratch" / "b12-workers.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_bytes(b"")
    times: dict[int, list[float]] = {1: [], 2: []}
    answers: dict[int, dict] = {}
    with Sink(delay=DELAY) as sink:
        env = worker_env(db, sink.port)
        for rep in range(ctx.reps + 1):  # the first round is the warm-up, with fewer messages
            count = WARMUP if rep == 0 else MESSAGES
            for workers in (1, 2):
                with running(workers, env=env, log_path=log_path) as procs:
                    sink.take()
                    campaign_id = relaunch(db, messages=count, name=f"{NAME} {workers} worker(s) {rep}")
                    load = os.getloadavg()[0]
                    elapsed = wait_sent(db, campaign_id, procs, log_path=log_path)
                answers[workers] = check(db, campaign_id, sink.take(), what=f"B12 {workers} worker(s), round {rep}")
                say(f"  {workers} worker(s), round {rep}: {count:,} in {elapsed:.2f} s, {count / elapsed:,.0f}/s, load {load:.1f}"
                    f"{' (warm-up)' if rep == 0 else ''}")
                if rep:
                    times[workers].append(elapsed)
    one_s, two_s = statistics.median(times[1]), statistics.median(times[2])
    rounds = [one / two for one, two in zip(times[1], times[2])]  # throughput of two over one, per round
    paired = statistics.median(rounds)
    row = Row("B12", WHAT.replace("20,000", f"{MESSAGES:,}"), two_s, one_s, TARGET,
              extra={"messages": MESSAGES, "sink_delay_ms": DELAY * 1000, "one_worker_s": times[1], "two_workers_s": times[2], "round_speedups": rounds,
                     "one_worker_per_s": MESSAGES / one_s, "two_workers_per_s": MESSAGES / two_s, "answers": answers})
    row.met = paired >= 1.6 and all(a["duplicates"] == 0 for a in answers.values())
    row.note = (f"{paired:.2f}× one worker's throughput (rounds {', '.join(f'{r:.2f}' for r in rounds)}); "
                f"{MESSAGES / two_s:,.0f} vs {MESSAGES / one_s:,.0f} msg/s; 0 duplicates, none lost")
    return [row]
