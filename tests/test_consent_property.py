"""Whatever happens in whatever order — imports of changing ILS rows, preference-page choices, one-click
unsubscribes, bounces and complaints — no message is ever sent to a patron after their own withdrawal for
that channel and topic, until they grant it again themselves."""

from __future__ import annotations

import csv
import itertools

from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st
from sqlalchemy import select

from crmcore import imports
from crmcore.campaigns import inbound, preference_tokens, preferences, sending, unsubscribe
from crmcore.library import consent
from crmcore.models import Message, Patron
from tests.campaign_fixtures import _isolated_mail_config, add_campaign  # noqa: F401

TOPICS = ("events", "newsletter")
MAPPING = {"columns": {"ils_id": "card", "email": "mail", "expires_on": "expires", "contact_method": "notice", "consent_email": "news"},
           "consent_topics": list(TOPICS)}
cards = itertools.count(1)

ILS_ROW = st.tuples(st.just("import"), st.sampled_from(["email", "sms", "none"]), st.sampled_from(["yes", "no"]), st.sampled_from(["2027-01-01", "2028-01-01"]))
actions = st.lists(
    st.one_of(
        ILS_ROW,
        ILS_ROW,  # imports twice as often: the ILS changes its mind far more often than a patron does
        ILS_ROW,
        st.tuples(st.just("page_save"), st.sampled_from(TOPICS), st.booleans()),
        st.tuples(st.just("page_unsubscribe_all")),
        st.tuples(st.just("one_click"), st.sampled_from(TOPICS)),
        st.tuples(st.just("complaint"), st.sampled_from(TOPICS)),
        st.tuples(st.just("soft_bounce"), st.sampled_from(TOPICS)),
    ),
    min_size=1,
    max_size=10,
)


def _import(db, actor, tmp_path, card: str, notice: str, news: str, expires: str) -> None:
    path = tmp_path / f"ils-{card}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["card", "mail", "expires", "notice", "news"], [card, f"p{card}@example.org", expires, notice, news]])
    imports.run_import(db, actor=actor, kind="patrons", path=path, mapping=MAPPING)


def _message(db, pid: int, topic: str) -> int:
    """A message of a campaign on `topic` that reached the patron (for the token of its links)."""
    with db.write() as s:
        cid = add_campaign(s, patron_ids=[pid], topic=topic)
        message = s.scalar(select(Message).where(Message.campaign_id == cid))
        message.status = "sent"
        return message.id


def _report(kind: str, message_id: int, status: str = "4.2.2") -> bytes:
    machine = ("message/feedback-report", "Feedback-Type: abuse\nVersion: 1\n") if kind == "feedback-report" else \
        ("message/delivery-status", f"Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; x@example.org\nAction: delayed\nStatus: {status}\n")
    return (f'Subject: report\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type={kind}; boundary="b"\n\n'
            f"--b\nContent-Type: text/plain\n\nreport\n--b\nContent-Type: {machine[0]}\n\n{machine[1]}\n--b--\n").encode()


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=actions)
@example(steps=[("page_unsubscribe_all",), ("import", "email", "no", "2027-01-01"), ("import", "email", "yes", "2027-01-01")])
@example(steps=[("one_click", "events"), ("import", "sms", "no", "2028-01-01"), ("import", "email", "yes", "2027-01-01")])
@example(steps=[("complaint", "newsletter"), ("import", "none", "no", "2027-01-01"), ("import", "email", "yes", "2028-01-01")])
def test_no_message_after_the_patrons_own_withdrawal(db, staff, tmp_path, steps):
    card = f"H{next(cards)}"
    _import(db, staff["admin"], tmp_path, card, "email", "yes", "2027-01-01")
    with db.read() as s:
        pid = s.scalar(select(Patron.id).where(Patron.ils_id == card))
    token = preference_tokens.make(pid)
    withdrawn = {t: False for t in TOPICS}  # the patron's own latest word, per topic on email
    for step in steps:
        kind = step[0]
        if kind == "import":
            _import(db, staff["admin"], tmp_path, card, *step[1:])
        elif kind == "page_save":
            with db.write() as s:
                shown = preferences.view(s, token=token).consent
                preferences.save(s, token=token, choices={**shown, ("email", step[1]): step[2]}, shown=shown)
            if shown[("email", step[1])] != step[2]:
                withdrawn[step[1]] = not step[2]
        elif kind == "page_unsubscribe_all":
            with db.write() as s:
                preferences.unsubscribe_all(s, token=token)
            withdrawn = {t: True for t in TOPICS}
        elif kind == "one_click":
            mid = _message(db, pid, step[1])
            with db.write() as s:
                unsubscribe.withdraw(s, token=unsubscribe.token(mid), source="one-click")
            withdrawn[step[1]] = True
        else:
            mid = _message(db, pid, step[1])
            report = "feedback-report" if kind == "complaint" else "delivery-status"
            with db.write() as s:
                inbound.process(s, recipients=[f"bounce+{unsubscribe.token(mid)}@library.test"], data=_report(report, mid))
            if kind == "complaint":
                withdrawn = {t: True for t in TOPICS}
        with db.read() as s:
            for topic, gone in withdrawn.items():
                assert not (gone and consent.has_consent(s, patron_id=pid, channel="email", topic=topic)), (step, topic)
    campaigns = {}
    with db.write() as s:
        for topic in TOPICS:
            campaigns[topic] = add_campaign(s, patron_ids=[pid], topic=topic)
    sending.send_pending(db)
    with db.read() as s:
        for topic, cid in campaigns.items():
            status = s.scalar(select(Message.status).where(Message.campaign_id == cid))
            assert not (withdrawn[topic] and status == "sent"), (steps, topic, status)
