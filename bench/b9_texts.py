"""B9: 10,000 campaign texts sent by the worker's text job through a real Kannel (bearerbox, smsbox) to its
fake SMSC vs a bare loop posting the same texts to the same Kannel's sendsms over one kept-alive connection.

Each product repetition launches a fresh text campaign on a scratch copy of the demo library, every patron
with a phone number consenting to texts about library services (set in the copy before the clock starts);
texts past the MESSAGES-th are cancelled. The text rate setting is at its maximum and quiet hours are off,
so neither the throttle nor the clock decides. No delivery reports are asked for on either side (no
CRM_SMS_SECRET): both measure the sendsms exchange plus, for the product, rendering, consent re-checks,
number normalisation and bookkeeping. Both sides' texts are counted as received by fakesmsc.
B9_MESSAGES in the environment measures fewer (2,000 on a busy machine).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert, literal, select, update

from bench.common import Context, Row, check_agree, median_time, scratch_copy
from crmcore.admin.permissions import Actor, Role

WHAT = "sending 10,000 text messages through Kannel"
TARGET = "throughput ≥ 0.7× baseline"
MESSAGES = int(os.environ.get("B9_MESSAGES", "10000"))
LIBRARY = 25_000  # patrons: about 68 % have a phone number
ADMIN = Actor(id=None, username="bench", role=Role.ADMIN)
RULES = {"all": [{"field": "consent", "op": "granted", "channel": "sms", "topic": "services"}]}
BODY = "Hi {{ first_name }}, {{ branch }} has new study rooms and longer opening hours."


def launch(db) -> None:
    """Every patron with a phone consenting to texts about services; a launched text campaign of MESSAGES."""
    from crmcore.admin import settings
    from crmcore.campaigns import drafts, segments
    from crmcore.models import CurrentConsent, Message, Patron, utcnow

    with db.write() as session:
        session.execute(update(CurrentConsent).where(CurrentConsent.channel == "sms", CurrentConsent.topic == "services").values(granted=True))
        have = select(CurrentConsent.patron_id).where(CurrentConsent.channel == "sms", CurrentConsent.topic == "services")
        session.execute(insert(CurrentConsent).from_select(
            ["patron_id", "channel", "topic", "granted", "updated_at", "source_class"],
            select(Patron.id, literal("sms"), literal("services"), literal(True), literal(utcnow(), CurrentConsent.__table__.c.updated_at.type), literal("staff"))
            .where(Patron.phone.is_not(None), Patron.id.not_in(have)),
        ))
        for key, value in {"text_rate_per_minute": 100_000, "quiet_hours_start": 0, "quiet_hours_end": 0, "frequency_cap_per_7_days": 50}.items():
            settings.put(session, actor=ADMIN, key=key, value=value)
        segment = segments.save(session, actor=ADMIN, name="bench: services by text", rules=RULES)
        campaign = drafts.compose(session, actor=ADMIN, name="bench texts", segment_id=segment.id, topic="services", subject="", body=BODY, holdout_pct=0.0, channel="sms")
        drafts.launch(session, actor=ADMIN, campaign_id=campaign.id)
        queued = session.scalars(select(Message.id).where(Message.campaign_id == campaign.id, Message.status == "queued").order_by(Message.id)).all()
        if len(queued) < MESSAGES:
            raise RuntimeError(f"only {len(queued)} texts queued; B9 needs {MESSAGES}")
        session.execute(update(Message).where(Message.id.in_(queued[MESSAGES:])).values(status="cancelled"))


def answer(received: list[tuple[str, str, str]]) -> dict:
    """What the fake SMSC got: how many texts, and (as a digest) to whom and what."""
    lines = sorted(f"{to}\t{text}" for _sender, to, text in received)
    return {"texts": len(received), "texts (sha256)": hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]}


def run(ctx: Context) -> list[Row]:
    from crmcore.texts import gateway
    from crmcore.texts import sending as text_sending
    from tests.campaign_fixtures import free_port
    from tests.kannel import PASSWORD, SHORT_CODE, USER, start_kannel

    library = ctx.db(LIBRARY)
    folder = Path(tempfile.mkdtemp(prefix="b9-kannel-"))
    kannel, boxes = start_kannel(folder, app_port=free_port())
    try:
        os.environ.update({k: v for k, v in kannel.env.items() if k not in ("CRM_SMS_SECRET",)})
        os.environ.pop("CRM_SMS_SECRET", None)
        state: dict = {}

        def take(count: int) -> list:
            """The texts the phones received since the last restart (waits for `count` of them), then a fresh fakesmsc."""
            kannel.runs = kannel.runs[-1:]  # the last repetition's fakesmsc only
            got = kannel.wait_for(count, timeout=600)
            kannel.start_phones()
            return got[-count:]

        def fresh_campaign():
            state["db"] = scratch_copy(library, "b9-texts.db")
            launch(state["db"])
            kannel.start_phones()

        def product():
            return text_sending.send_pending(state["db"], budget_seconds=3600)

        product_s, totals = median_time(product, reps=ctx.reps, setup=fresh_campaign)
        state["product"] = take(MESSAGES)
        texts = [(to, body) for _sender, to, body in state["product"]]

        def baseline():
            with httpx.Client(timeout=30) as client:
                for to, body in texts:
                    params = gateway.sendsms_params(gateway.Text(to=to, body=body, name=""), user=USER, password=PASSWORD, sender=SHORT_CODE)
                    if client.get(kannel.sendsms_url, params=params).status_code != 202:
                        raise RuntimeError("Kannel refused a text")

        baseline_s, _ = median_time(baseline, reps=ctx.reps, setup=kannel.start_phones)
        time.sleep(1)
        state["baseline"] = take(MESSAGES)
    finally:
        kannel.stop_phones()
        for box in reversed(boxes):
            box.terminate()
            box.wait(timeout=20)
    check_agree("B9 texts received", answer(state["product"]), answer(state["baseline"]))
    row = Row("B9", WHAT.replace("10,000", f"{MESSAGES:,}"), product_s, baseline_s, TARGET,
              extra={"product_per_s": MESSAGES / product_s, "baseline_per_s": MESSAGES / baseline_s, "totals": totals, "messages": MESSAGES})
    share = baseline_s / product_s
    row.met = share >= 0.7
    row.note = f"{MESSAGES / product_s:,.0f} vs {MESSAGES / baseline_s:,.0f} texts/s ({share:.2f}×)"
    return [row]
