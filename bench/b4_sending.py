"""B4: 10,000 campaign messages rendered and sent by the worker's sending job to a local aiosmtpd sink vs a
bare smtplib loop sending the same messages, pre-rendered, over one connection.

The baseline replays the exact bytes the sink received from the product (same recipients, same size and
shape: text and HTML parts, headers), so the ratio is what rendering, consent checks and bookkeeping add
to the SMTP exchange itself.

Each product repetition launches a fresh campaign on one scratch copy of the run's demo library (at least
25,000 patrons, so that 10,000 consent to email about library services), the earlier repetitions' messages
deleted first (a 1,000,000-patron library is too large to copy for every repetition); messages past the
10,000th are cancelled before the clock starts. The send-rate setting is raised to its maximum so the throttle does not decide.
The sides take turns, a product send then the baseline replaying it, one warm-up round first; the result is
the median of the rounds' ratios.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import statistics
import time

from sqlalchemy import update
from sqlmodel import select

from bench.common import Context, Row, check_agree, say, scratch_copy
from bench.smtp_sink import Sink
from crmcore.admin.permissions import Actor, Role

WHAT = "sending 10,000 messages"
TARGET = "throughput ≥ 0.9× baseline"
MESSAGES = 10_000
LIBRARY = 25_000  # patrons at least: about 43 % consent to email about services
ADMIN = Actor(id=None, username="bench", role=Role.ADMIN)
RULES = {"all": [{"field": "consent", "op": "granted", "channel": "email", "topic": "services"}]}
SUBJECT = "New at the library, {{ first_name }}"
BODY = "Dear {{ first_name }},\n\nYour branch, {{ branch }}, has new study rooms and longer opening hours.\n"


def launch(db, *, body: str = BODY, messages: int = MESSAGES, name: str = "bench") -> None:
    """A launched campaign (called `name`) of exactly `messages` queued messages."""
    from crmcore.admin import settings
    from crmcore.campaigns import drafts, segments
    from crmcore.models import Message

    with db.write() as session:
        settings.put(session, actor=ADMIN, key="send_rate_per_minute", value=100_000)
        segment = segments.save(session, actor=ADMIN, name=f"{name}: services by email", rules=RULES)
        campaign = drafts.compose(session, actor=ADMIN, name=name, segment_id=segment.id, topic="services", subject=SUBJECT, body=body, holdout_pct=0.0)
        drafts.launch(session, actor=ADMIN, campaign_id=campaign.id)
        queued = session.exec(select(Message.id).where(Message.status == "queued").order_by(Message.id)).all()
        if len(queued) < messages:
            raise RuntimeError(f"only {len(queued)} messages queued; {messages} are needed")
        if len(queued) > messages:  # by id, not by an IN list: a large library queues hundreds of thousands
            session.execute(update(Message).where(Message.status == "queued", Message.id > queued[messages - 1]).values(status="cancelled"))


def answer(received: list[tuple[str, bytes]]) -> dict:
    """What the sink got: how many messages, and (as a digest) to whom."""
    recipients = sorted(to for to, _data in received)
    return {"messages": len(received), "recipients (sha256)": hashlib.sha256("\n".join(recipients).encode()).hexdigest()[:16]}


def run(ctx: Context) -> list[Row]:
    from crmcore.campaigns import sending

    library = ctx.db(max(ctx.size, LIBRARY))
    with Sink() as sink:
        os.environ.update({"CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(sink.port), "CRM_SMTP_STARTTLS": "false", "CRM_MAIL_FROM": "library@bench.test"})
        for name in ("CRM_SMTP_USER", "CRM_SMTP_PASSWORD"):
            os.environ.pop(name, None)
        state: dict = {"db": scratch_copy(library, "b4-sending.db"), "round": 0}

        def fresh_campaign():
            from sqlalchemy import delete, select

            from crmcore.models import Campaign, Message

            with state["db"].write() as session:
                session.execute(delete(Message).where(Message.campaign_id.in_(select(Campaign.id).where(Campaign.name.like("bench%")))))
            state["round"] += 1
            launch(state["db"], name=f"bench {state['round']}")
            sink.take()

        def product():
            totals = sending.send_pending(state["db"], budget_seconds=3600)
            state["product"] = sink.take()
            return totals

        def baseline():
            with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
                for to, data in state["product"]:  # pre-rendered: the bytes the product sent in this round
                    smtp.sendmail("library@bench.test", [to], data)
            state["baseline"] = sink.take()

        # The sides take turns, round by round (the first round is the warm-up), so that a busy spell of a
        # shared machine falls on both; the result is the median of the rounds' ratios.
        times: dict[str, list[float]] = {"product": [], "baseline": []}
        for rep in range(ctx.reps + 1):
            fresh_campaign()
            start = time.perf_counter()
            totals = product()
            product_round = time.perf_counter() - start
            sink.take()
            start = time.perf_counter()
            baseline()
            baseline_round = time.perf_counter() - start
            check_agree("B4 messages received", answer(state["product"]), answer(state["baseline"]))
            say(f"  round {rep}: product {product_round:.2f} s, baseline {baseline_round:.2f} s, load {os.getloadavg()[0]:.1f}{' (warm-up)' if rep == 0 else ''}")
            if rep:
                times["product"].append(product_round)
                times["baseline"].append(baseline_round)
    product_s, baseline_s = statistics.median(times["product"]), statistics.median(times["baseline"])
    shares = [b / p for p, b in zip(times["product"], times["baseline"])]  # product throughput as a share of the baseline's
    share = statistics.median(shares)
    row = Row("B4", WHAT, product_s, baseline_s, TARGET, extra={"product_per_s": MESSAGES / product_s, "baseline_per_s": MESSAGES / baseline_s, "totals": totals,
                                                               "product_s": times["product"], "baseline_s": times["baseline"], "round_shares": shares})
    row.met = share >= 0.9
    row.note = f"{MESSAGES / product_s:,.0f} vs {MESSAGES / baseline_s:,.0f} msg/s ({share:.2f}×, the median of the rounds' {', '.join(f'{x:.2f}' for x in shares)})"
    return [row]
