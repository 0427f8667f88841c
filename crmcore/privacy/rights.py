"""Patrons' rights: access (everything held about one patron, as JSON and a readable HTML page) and erasure.

Erasure removes the personal data and the consent history of one patron and keeps the anonymous rest:
the patron row stays (anonymised, with `erased_at`) so activity rollups, dashboard figures and campaign
results keep counting it; its messages keep pointing at it. The e-mail address survives only as a
SHA-256 hash in `suppression`, so the address is never mailed again, whatever a later import brings.
"""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime
from typing import Any

from jinja2 import Environment
from sqlalchemy import delete, func, or_, select, update
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import do_not_mail, outbox
from crmcore.inbox import tickets
from crmcore.kpis import incremental
from crmcore.library import consent
from crmcore.models import (
    ActivityEvent,
    ActivityMonthly,
    AuditLog,
    Branch,
    Campaign,
    ConsentRecord,
    Contact,
    CurrentConsent,
    Interaction,
    InteractionContact,
    Journey,
    JourneyEnrolment,
    Message,
    Organization,
    Patron,
    PatronInsight,
    Persona,
    PatronInterest,
    Zone,
    utcnow,
)
from crmcore.privacy import audit
from crmcore.surveys import responses as survey_responses
from crmcore.signups import prospects
from crmcore.texts import do_not_text, phones

PERSONAL_FIELDS = ("first_name", "last_name", "email", "phone", "birth_year", "interests", "language")
PATRON_FIELDS = (
    "id", "ils_id", "first_name", "last_name", "email", "phone", "birth_year", "age_band", "patron_type",
    "registered_on", "expires_on", "interests", "history_opt_in", "first_activity_on", "last_activity_on",
    "last_checkout_month", "last_renewal_month", "last_digital_loan_month", "last_pc_session_month",
    "last_event_attendance_month", "last_visit_month", "last_survey_response_month",
    "has_email", "resident", "lifetime_checkouts", "lifetime_renewals", "ils_last_activity_on", "language",
    "created_at", "updated_at", "erased_at",
)  # fmt: skip


def find_patrons(session: Session, *, actor: Actor, query: str, limit: int = 20) -> list[dict]:
    """Patrons whose ILS id or e-mail is `query`, or whose last name starts with it; the view is audited."""
    require(actor, Perm.PRIVACY_REQUESTS)
    text = query.strip()
    if not text:
        return []
    rows = session.execute(
        select(Patron)
        .where(or_(Patron.ils_id == text, func.lower(Patron.email) == text.lower(), func.lower(Patron.last_name).startswith(text.lower())))
        .order_by(Patron.last_name, Patron.id)
        .limit(limit)
    ).scalars()
    found = [{"id": p.id, "ils_id": p.ils_id, "first_name": p.first_name, "last_name": p.last_name, "email": p.email, "erased": p.erased_at is not None} for p in rows]
    if found:
        audit.record(session, actor=actor, action="pii.view", entity="patron", detail={"ids": [p["id"] for p in found], "via": "privacy lookup"})
    return found


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _rows(result, columns: list[str]) -> list[dict]:
    return [{c: _plain(v) for c, v in zip(columns, row)} for row in result]


def access_export(session: Session, *, actor: Actor, patron_id: int) -> dict:
    """Everything held about one patron, as plain data (dates as ISO text); audited."""
    require(actor, Perm.PRIVACY_REQUESTS)
    patron = session.get(Patron, patron_id)
    if patron is None:
        raise LookupError(f"No patron with id {patron_id}.")
    record = {field: _plain(getattr(patron, field)) for field in PATRON_FIELDS}
    record["zone"] = session.get(Zone, patron.zone_id).name if patron.zone_id else None
    record["home_branch"] = session.get(Branch, patron.branch_id).name if patron.branch_id else None
    branch = Branch.name.label("branch")
    data: dict[str, Any] = {"patron": record, "exported_at": utcnow().isoformat()}
    data["current_consent"] = _rows(
        session.execute(select(CurrentConsent.channel, CurrentConsent.topic, CurrentConsent.granted, CurrentConsent.updated_at).where(CurrentConsent.patron_id == patron_id).order_by(CurrentConsent.channel, CurrentConsent.topic)),
        ["channel", "topic", "granted", "since"],
    )
    data["consent_history"] = [
        {"channel": r.channel, "topic": r.topic, "granted": r.granted, "recorded_at": _plain(r.recorded_at), "source": r.source, "wording_version": r.wording_version}
        for r in consent.history(session, patron_id)
    ]
    data["activity"] = _rows(
        session.execute(
            select(ActivityEvent.occurred_on, ActivityEvent.kind, branch, ActivityEvent.count, ActivityEvent.category)
            .outerjoin(Branch, Branch.id == ActivityEvent.branch_id)
            .where(ActivityEvent.patron_id == patron_id)
            .order_by(ActivityEvent.occurred_on, ActivityEvent.id)
        ),
        ["date", "kind", "branch", "count", "category"],
    )
    data["chosen_topics"] = _rows(  # the topics they chose for "new materials you may like"
        session.execute(select(PatronInterest.category, PatronInterest.chosen_at).where(PatronInterest.patron_id == patron_id).order_by(PatronInterest.category)),
        ["category", "chosen_at"],
    )
    data["activity_by_month"] = _rows(
        session.execute(
            select(ActivityMonthly.month, ActivityMonthly.kind, branch, ActivityMonthly.count)
            .outerjoin(Branch, Branch.id == ActivityMonthly.branch_id)
            .where(ActivityMonthly.patron_id == patron_id)
            .order_by(ActivityMonthly.month, ActivityMonthly.kind)
        ),
        ["month", "kind", "branch", "count"],
    )
    data["persona_and_lapse_risk"] = _rows(
        session.execute(
            select(Persona.name, PatronInsight.lapse_risk, PatronInsight.computed_at)
            .outerjoin(Persona, Persona.id == PatronInsight.persona_id)
            .where(PatronInsight.patron_id == patron_id)
        ),
        ["persona", "lapse_risk", "computed_at"],
    )
    data["messages"] = _rows(
        session.execute(
            select(Campaign.name, Campaign.channel, Message.status, Message.is_holdout, Message.sent_at)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(Message.patron_id == patron_id)
            .order_by(Message.id)
        ),
        ["campaign", "channel", "status", "holdout", "sent_at"],
    )
    data["journeys"] = _rows(
        session.execute(
            select(Journey.name, JourneyEnrolment.entered_on, JourneyEnrolment.state, JourneyEnrolment.exit_reason, JourneyEnrolment.ended_on, JourneyEnrolment.is_holdout)
            .join(Journey, Journey.id == JourneyEnrolment.journey_id)
            .where(JourneyEnrolment.patron_id == patron_id)
            .order_by(JourneyEnrolment.id)
        ),
        ["journey", "entered_on", "state", "exit_reason", "ended_on", "holdout"],
    )
    data["contact_records"] = _rows(
        session.execute(
            select(Contact.id, Contact.first_name, Contact.last_name, Contact.email, Contact.phone, Contact.job_title, Organization.name, Contact.notes)
            .outerjoin(Organization, Organization.id == Contact.organization_id)
            .where(Contact.patron_id == patron_id)
        ),
        ["id", "first_name", "last_name", "email", "phone", "job_title", "organization", "notes"],
    )
    data["interactions"] = _rows(
        session.execute(
            select(Interaction.occurred_at, Interaction.kind, Interaction.notes, Interaction.outcome)
            .join(InteractionContact, InteractionContact.interaction_id == Interaction.id)
            .join(Contact, Contact.id == InteractionContact.contact_id)
            .where(Contact.patron_id == patron_id)
            .order_by(Interaction.occurred_at)
        ),
        ["when", "kind", "notes", "outcome"],
    )
    data["survey_answers"] = survey_responses.for_patron(session, patron_id)
    data["requests"] = tickets.for_access_export(session, patron_id=patron_id, email=patron.email)
    data["sign_ups"] = prospects.linked(session, patron_id=patron_id)  # signed up for news before their card
    data["record_views_and_changes"] = _rows(
        session.execute(
            select(AuditLog.at, AuditLog.actor_name, AuditLog.action)
            .where(AuditLog.entity == "patron", AuditLog.entity_id == str(patron_id))
            .order_by(AuditLog.at)
        ),
        ["at", "staff", "action"],
    )
    audit.record(session, actor=actor, action="privacy.access", entity="patron", entity_id=patron_id)
    return data


def to_json(data: dict) -> bytes:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8")


_HTML = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your record at the library</title>
<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto}table{border-collapse:collapse;margin-bottom:1.5rem}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}</style></head><body>
<h1>Your record at the library</h1><p>Everything the library's relationship system holds about you, exported {{ data.exported_at }}.</p>
<h2>Your details</h2><table>{% for k, v in data.patron.items() %}<tr><th>{{ k|replace('_', ' ') }}</th><td>{{ v if v is not none else '' }}</td></tr>{% endfor %}</table>
{% for title, key in sections %}<h2>{{ title }}</h2>{% set rows = data[key] %}
{% if rows %}<table><tr>{% for c in rows[0] %}<th>{{ c|replace('_', ' ') }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for v in row.values() %}<td>{{ v if v is not none else '' }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}<p>None.</p>{% endif %}{% endfor %}
</body></html>"""
)
_SECTIONS = [
    ("Consent now", "current_consent"),
    ("Consent history", "consent_history"),
    ("Library use (individual)", "activity"),
    ("Library use (monthly counts)", "activity_by_month"),
    ("Messages", "messages"),
    ("Journeys", "journeys"),
    ("Community contact records", "contact_records"),
    ("Community interactions", "interactions"),
    ("Survey answers", "survey_answers"),
    ("Requests to the library", "requests"),
    ("Signed up for news before your card", "sign_ups"),
    ("Staff views and changes of your record", "record_views_and_changes"),
]


def to_html(data: dict) -> bytes:
    """A readable page of an access export; every value HTML-escaped."""
    return _HTML.render(data=data, sections=_SECTIONS).encode("utf-8")


def erase(session: Session, *, actor: Actor, patron_id: int) -> dict:
    """Erase one patron's personal data and consent history; keep anonymous aggregates; audited."""
    require(actor, Perm.PRIVACY_REQUESTS)
    patron = session.get(Patron, patron_id)
    if patron is None:
        raise LookupError(f"No patron with id {patron_id}.")
    if patron.erased_at is not None:
        raise ValueError(f"Patron {patron_id} was already erased on {patron.erased_at:%Y-%m-%d}.")
    suppressed = bool(patron.email)
    requests = tickets.erase_patron(session, patron_id=patron_id, email=patron.email)
    if patron.email:
        do_not_mail.suppress(session, email=patron.email, reason="erasure")
    number = phones.normalise(patron.phone, region=phones.region(session))
    if number:  # never texted again either, whatever a later import brings
        do_not_text.add(session, phone=number, reason="erasure")
    # The birth year goes, and with it an age band worked out from it: the dashboard counts them without one.
    with incremental.patrons_changing(session, [patron_id], rebuild_now=False):
        for field in PERSONAL_FIELDS:
            setattr(patron, field, None)
        patron.ils_id = "erased-" + secrets.token_hex(12)
        patron.history_opt_in, patron.row_hash = False, None
        patron.erased_at = patron.updated_at = utcnow()
        session.add(patron)
        session.flush()
    consents = session.execute(delete(ConsentRecord).where(ConsentRecord.patron_id == patron_id)).rowcount
    session.execute(delete(CurrentConsent).where(CurrentConsent.patron_id == patron_id))
    # What someone read is personal; that they used the library (kind, date, count) is kept anonymously.
    session.execute(update(ActivityEvent).where(ActivityEvent.patron_id == patron_id).values(category=None))
    session.execute(delete(PatronInsight).where(PatronInsight.patron_id == patron_id))  # persona and lapse risk
    session.execute(delete(PatronInterest).where(PatronInterest.patron_id == patron_id))  # what they like is as personal
    unlinked = session.execute(update(Contact).where(Contact.patron_id == patron_id).values(patron_id=None)).rowcount
    # Their journeys end now (the counts stay, anonymous, in the journeys' results).
    session.execute(update(JourneyEnrolment).where(JourneyEnrolment.patron_id == patron_id, JourneyEnrolment.state == "active")
                    .values(state="exited", exit_reason="erased", ended_on=utcnow().date(), due_on=None))
    # Their messages written to the outbox hold their name and address.
    files = outbox.remove_patron(actor=actor, patron_id=patron_id)
    # Their written survey answers go; their scores stay as anonymous figures.
    surveys = survey_responses.erase_patron(session, patron_id)
    sign_ups = prospects.forget_patron(session, patron_id=patron_id)
    result = {
        "consent_records_deleted": consents, "email_suppressed": suppressed, "contacts_unlinked": unlinked,
        "survey_answers_unlinked": surveys, "requests_deleted": requests, "sign_ups_deleted": sign_ups,
    }
    audit.record(session, actor=actor, action="privacy.erase", entity="patron", entity_id=patron_id, detail={**result, "outbox_files_deleted": files, "number_on_do_not_text": bool(number)})
    return result
