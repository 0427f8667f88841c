"""B4r: B4 with the {{ recommendations }} block in the message, against B4's own message, in the same run.

Both sides send the same recipients from the same scratch copy of a demo library to the same sink; the
block's side has a catalogue feed of 180 new items (four per genre, over the branches and the whole library)
and a body ending in the block, so each batch works out its patrons' interests (opted-in borrowing, stated
interests) and picks their items. The ratio is what the block adds to sending.

Up to --size 999,999: B4's 10,000 messages from B4's 25,000-patron library. At --size 1000000: 100,000
messages from the 1,000,000-patron library, the issue's "100,000 recipients".

Before each send the earlier sends' messages are deleted and a fresh campaign is launched on the one copy
(a 1,000,000-patron library is too large to copy for every repetition); the sides take turns, one warm-up
each first, so that a busy spell of a shared machine falls on both; the result is the median of the rounds'
ratios.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from bench import b4_sending as b4
from bench.common import Context, Row, check_agree, say, scratch_copy
from bench.smtp_sink import Sink

WHAT = "sending 10,000 messages with the recommendations block"
TARGET = "≤ 1.2× B4's time"
BODY = b4.BODY + "\nNew for you:\n\n{{ recommendations }}\n"
LARGE = 1_000_000  # from this size on: 100,000 recipients
NAME = "b4r"


def add_feed(db) -> int:
    """Four new items per genre of the vocabulary, over the branches and the whole library; how many."""
    from sqlalchemy import insert, select

    from crmcore.library import categories
    from crmcore.models import Branch, CatalogueItem, utcnow

    with db.write() as session:
        genres = sorted(name for name, _g in categories.vocabulary(session, group="genre").values())
        branches = [*session.scalars(select(Branch.id).order_by(Branch.id)), None]
        today = utcnow().date()
        rows = [
            {"link": f"https://catalogue.bench.test/{g}/{k}", "title": f"New {g} title {k}", "author": f"Author {k}", "material_type": "Book",
             "categories": [g], "branch_id": branches[(i * 4 + k) % len(branches)], "cover_url": None, "added_on": today - timedelta(days=k),
             "is_pick": k == 0 and i < 3, "imported_at": utcnow()}
            for i, g in enumerate(genres) for k in range(4)
        ]
        session.execute(insert(CatalogueItem), rows)
    return len(rows)


def relaunch(db, *, body: str, messages: int, name: str) -> None:
    """Delete the messages of earlier B4r campaigns, then launch a new one of `messages` queued messages."""
    from sqlalchemy import delete, select

    from crmcore.models import Campaign, Message

    with db.write() as session:
        session.execute(delete(Message).where(Message.campaign_id.in_(select(Campaign.id).where(Campaign.name.like(f"{NAME} %")))))
    b4.launch(db, body=body, messages=messages, name=name)


def listing_items(received: list[tuple[str, bytes]]) -> int:
    """How many messages list items (the text part says why for each one)."""
    return sum(b"Because you like" in data or b"One of the library's picks" in data for _to, data in received)


def run(ctx: Context) -> list[Row]:
    import os

    from crmcore.campaigns import sending

    large = ctx.size >= LARGE
    messages = 100_000 if large else b4.MESSAGES
    library = ctx.db() if large else ctx.db(b4.LIBRARY)
    say(f"  {messages:,} recipients from the {'run' if large else 'B4'}'s library; a scratch copy …")
    db = scratch_copy(library, "b4r-sending.db")
    add_feed(db)  # read only by the block's side (a body without the block never reads the feed)
    with Sink() as sink:
        os.environ.update({"CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(sink.port), "CRM_SMTP_STARTTLS": "false", "CRM_MAIL_FROM": "library@bench.test"})
        for name in ("CRM_SMTP_USER", "CRM_SMTP_PASSWORD"):
            os.environ.pop(name, None)
        times: dict[str, list[float]] = {"plain": [], "block": []}
        received: dict[str, list] = {}
        totals: dict = {}
        for rep in range(ctx.reps + 1):  # the first round is the warm-up
            for side in ("plain", "block"):
                relaunch(db, body=BODY if side == "block" else b4.BODY, messages=messages, name=f"{NAME} {side} {rep}")
                sink.take()
                start = time.perf_counter()
                totals[side] = sending.send_pending(db, budget_seconds=36_000)
                elapsed = time.perf_counter() - start
                received[side] = sink.take()
                say(f"  {side}, round {rep}: {elapsed:.2f} s{' (warm-up)' if rep == 0 else ''}")
                if rep:
                    times[side].append(elapsed)
        plain_s, block_s = statistics.median(times["plain"]), statistics.median(times["block"])
    check_agree("B4r messages received", b4.answer(received["block"]), b4.answer(received["plain"]))
    with_items = listing_items(received["block"])
    what = WHAT if not large else WHAT.replace("10,000", f"{messages:,}")
    row = Row("B4r", what, block_s, plain_s, TARGET, extra={"messages": messages, "messages_with_items": with_items, "totals": totals["block"],
                                                            "plain_s": times["plain"], "block_s": times["block"]})
    # The rounds are pairs (the sides take turns): the median of their ratios is what the block adds, whatever
    # the machine was doing in a round; the table's ratio of medians can mix a quiet round with a busy one.
    rounds = [b / p for p, b in zip(times["plain"], times["block"])]
    paired = statistics.median(rounds)
    row.extra["round_ratios"] = rounds
    row.met = paired <= 1.2
    row.note = f"{paired:.2f}× B4's time, the median of the rounds' {', '.join(f'{r:.2f}' for r in rounds)}; {with_items:,} of {messages:,} messages list items"
    return [row]
