"""B4r: B4 with the {{ recommendations }} block in the message, against B4's own message, in the same run.

Both sides send B4's 10,000 messages from the same demo library to the same sink; the block's side has a
catalogue feed of 180 new items (four per genre, over the branches and the whole library) and a body ending
in the block, so each batch works out its patrons' interests (opted-in borrowing, stated interests) and
picks their items. The ratio is what the block adds to sending.
"""

from __future__ import annotations

import os
import statistics
from datetime import timedelta
from email import message_from_bytes, policy

from bench import b4_sending as b4
from bench.common import Context, Row, check_agree, median_time, scratch_copy
from bench.smtp_sink import Sink

WHAT = "sending 10,000 messages with the recommendations block"
TARGET = "≤ 1.2× B4's time"
BODY = b4.BODY + "\nNew for you:\n\n{{ recommendations }}\n"


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


def run(ctx: Context) -> list[Row]:
    from crmcore.campaigns import sending

    library = ctx.db(b4.LIBRARY)
    with Sink() as sink:
        os.environ.update({"CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(sink.port), "CRM_SMTP_STARTTLS": "false", "CRM_MAIL_FROM": "library@bench.test"})
        for name in ("CRM_SMTP_USER", "CRM_SMTP_PASSWORD"):
            os.environ.pop(name, None)
        state: dict = {}

        def fresh(with_block: bool):
            def setup():
                state["db"] = scratch_copy(library, "b4r-sending.db")
                if with_block:
                    add_feed(state["db"])
                b4.launch(state["db"], body=BODY if with_block else b4.BODY)
                sink.take()
            return setup

        def send(key: str):
            def go():
                totals = sending.send_pending(state["db"], budget_seconds=3600)
                state[key] = sink.take()
                return totals
            return go

        # Interleaved, one repetition of each at a time, so that a busy spell of a shared machine falls on both sides.
        plain_times, block_times = [], []
        for _rep in range(ctx.reps):
            plain_times.append(median_time(send("plain"), reps=1, setup=fresh(False))[0])
            seconds, totals = median_time(send("block"), reps=1, setup=fresh(True))
            block_times.append(seconds)
        plain_s, block_s = statistics.median(plain_times), statistics.median(block_times)
    check_agree("B4r messages received", b4.answer(state["block"]), b4.answer(state["plain"]))
    texts = (message_from_bytes(data, policy=policy.default).get_body(("plain",)).get_content() for _to, data in state["block"])
    with_items = sum("Because you like" in t or "library's picks" in t for t in texts)
    row = Row("B4r", WHAT, block_s, plain_s, TARGET, extra={"messages_with_items": with_items, "totals": totals})
    row.met = block_s <= 1.2 * plain_s
    row.note = f"{block_s / plain_s:.2f}× B4's time; {with_items:,} of {b4.MESSAGES:,} messages list items"
    return [row]
