"""What staff see of texts: the ones sent lately with their delivery reports, and the keywords patrons sent in."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.models import Campaign, InboundText, Message, utcnow

KEYWORD_LABELS = {"stop": "Stop", "start": "Start again", "help": "Help", "unknown": "Not a keyword"}
DELIVERY_LABELS = {None: "no report yet", "delivered": "delivered", "failed": "not delivered"}


def recent(session: Session, *, actor: Actor, limit: int = 200) -> dict:
    """The latest text messages (campaign, patron number in the directory, state, parts, delivery report; no phone
    numbers) and the last 30 days' keywords, counted."""
    require(actor, Perm.COMPOSE_CAMPAIGNS)
    rows = session.execute(
        select(Campaign.name, Message.patron_id, Message.status, Message.sent_at, Message.parts, Message.delivery, Message.delivery_at)
        .join(Campaign, Campaign.id == Message.campaign_id)
        .where(Campaign.channel == "sms", Message.status.in_(("sent", "failed", "unknown", "sending")))
        .order_by(Message.id.desc())
        .limit(limit)
    ).all()
    texts = [{"campaign": name, "patron": f"#{pid}" if pid else "(erased)", "state": status, "sent": sent_at, "parts": parts,
              "delivery": DELIVERY_LABELS.get(delivery, delivery), "reported": delivery_at} for name, pid, status, sent_at, parts, delivery, delivery_at in rows]
    since = utcnow() - timedelta(days=30)
    counts = dict(session.execute(select(InboundText.keyword, func.count()).where(InboundText.received_at >= since).group_by(InboundText.keyword)).all())
    return {"texts": texts, "keywords": {label: int(counts.get(key, 0)) for key, label in KEYWORD_LABELS.items()}}
