"""Staff work on journeys: list, start from a template or from scratch, edit (a new version once patrons
have entered), activate, pause (holding what is queued), resume; preview a step's message (a mail or a
text) for a sample patron and test-send it to one's own address or mobile number."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from crmcore.admin.permissions import Actor, Perm, require
from crmcore.campaigns import drafts, sending, templates
from crmcore.campaigns.templates import Rendered
from crmcore.db import Database
from crmcore.journeys import definitions, steps
from crmcore.journeys.enrolment import trigger_clause
from crmcore.journeys.evaluation import latest_version
from crmcore.languages import codes
from crmcore.models import Campaign, Journey, JourneyEnrolment, JourneyVersion, Patron, Segment, StaffUser, utcnow
from crmcore.privacy import audit
from crmcore.recommendations import block
from crmcore.texts import segments, sending as text_sending, wording

STATUSES = ("draft", "active", "paused")


def get(session: Session, journey_id: int) -> Journey:
    found = session.get(Journey, journey_id)
    if found is None:
        raise LookupError(f"There is no journey {journey_id}.")
    return found


def _check(session: Session, definition: Any, *, launching: bool = False) -> None:
    definitions.validate(definition, segment_exists=lambda sid: session.get(Segment, sid) is not None)
    for number, step in definitions.send_steps(definition):  # a step sending a survey's link names an open survey
        where = definitions.step_label(number + 1, step)
        for code, (subject, body) in [(None, (definitions.subject_of(step), step.get("body") or "")), *definitions.words_of(step).items()]:
            try:  # the step's own words, then each language's (a text: each one as long as the longest names make it)
                drafts.check_survey(session, step.get("survey_id"), subject, body, launching=launching)
                if step["channel"] == "sms":  # as a text campaign: no longer than the setting's parts with the longest names
                    drafts._text_length(session, body)
            except ValueError as exc:
                raise ValueError(f"{where}{'' if code is None else f', the words in {codes.name(code)} ({code})'}: {exc}") from None


def text_length(session: Session, *, actor: Actor, body: str) -> segments.Length:
    """A text step's message with the longest merge values on record (encoding, length, parts), as the
    builder shows it; ValueError past the setting's number of parts."""
    require(actor, Perm.MANAGE_SEGMENTS)
    return drafts._text_length(session, body)


def list_journeys(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Every journey: name, status, version, patrons in it now and in all."""
    require(actor, Perm.MANAGE_SEGMENTS)
    counts = dict(session.execute(select(JourneyEnrolment.journey_id, func.count()).group_by(JourneyEnrolment.journey_id)).all())
    active = dict(session.execute(
        select(JourneyEnrolment.journey_id, func.count()).where(JourneyEnrolment.state == "active").group_by(JourneyEnrolment.journey_id)).all())
    versions = dict(session.execute(select(JourneyVersion.journey_id, func.max(JourneyVersion.number)).group_by(JourneyVersion.journey_id)).all())
    return [{"id": j.id, "name": j.name, "status": j.status, "version": versions.get(j.id, 1), "in the journey now": int(active.get(j.id, 0)),
             "entered in all": int(counts.get(j.id, 0)), "holdout %": j.holdout_pct}
            for j in session.scalars(select(Journey).order_by(Journey.name))]


def create(session: Session, *, actor: Actor, name: str, template: str | None = None, definition: dict[str, Any] | None = None,
           holdout_pct: float = 10.0) -> Journey:
    """A new (inactive) journey from a template, or from `definition` (from scratch: `definitions.blank()`)."""
    require(actor, Perm.MANAGE_SEGMENTS)
    if not name or not name.strip():
        raise ValueError("Name: give the journey a name.")
    if session.scalar(select(Journey.id).where(Journey.name == name.strip())) is not None:
        raise ValueError(f"Name: there is already a journey called {name.strip()!r}.")
    if not 0 <= float(holdout_pct) <= 50:
        raise ValueError("Holdout: between 0 and 50 percent.")
    definition = definitions.template(template) if template else definition
    _check(session, definition)
    journey = Journey(name=name.strip()[:120], template=template, holdout_pct=float(holdout_pct), created_by_id=actor.id)
    session.add(journey)
    session.flush()
    session.add(JourneyVersion(journey_id=journey.id, number=1, definition=definition, created_by_id=actor.id))
    audit.record(session, actor=actor, action="journey.create", entity="journey", entity_id=journey.id, detail={"name": journey.name, "template": template})
    return journey


def definition_of(session: Session, *, actor: Actor, journey_id: int) -> tuple[Journey, JourneyVersion]:
    """The journey and its latest version."""
    require(actor, Perm.MANAGE_SEGMENTS)
    return get(session, journey_id), latest_version(session, journey_id)


def edit(session: Session, *, actor: Actor, journey_id: int, definition: dict[str, Any]) -> JourneyVersion:
    """Change the journey's definition: in place while no patron has entered its latest version, else as a
    new version (patrons already in it finish on the version they entered)."""
    require(actor, Perm.MANAGE_SEGMENTS)
    journey = get(session, journey_id)
    _check(session, definition)
    version = latest_version(session, journey_id)
    used = session.scalar(select(func.count()).where(JourneyEnrolment.version_id == version.id))
    if used:
        version = JourneyVersion(journey_id=journey_id, number=version.number + 1, definition=definition, created_by_id=actor.id)
    else:
        version.definition = definition
    session.add(version)
    journey.updated_at = utcnow()
    session.add(journey)
    session.flush()
    audit.record(session, actor=actor, action="journey.edit", entity="journey", entity_id=journey_id, detail={"version": version.number})
    return version


def _set_status(session: Session, actor: Actor, journey_id: int, status: str, allowed_from: tuple[str, ...]) -> Journey:
    journey = get(session, journey_id)
    if journey.status not in allowed_from:
        raise ValueError(f"Journey {journey.name!r} is {journey.status}.")
    journey.status, journey.updated_at = status, utcnow()
    session.add(journey)
    audit.record(session, actor=actor, action=f"journey.{status}", entity="journey", entity_id=journey_id)
    return journey


def activate(session: Session, *, actor: Actor, journey_id: int) -> Journey:
    """Start the journey (the worker enrols and sends from its next run); refused, staying inactive, when
    a message, a step or its segment is not right."""
    require(actor, Perm.LAUNCH_CAMPAIGNS)
    _check(session, latest_version(session, journey_id).definition, launching=True)
    return _set_status(session, actor, journey_id, "active", ("draft", "paused"))


def pause(session: Session, *, actor: Actor, journey_id: int) -> Journey:
    """Nobody enters or moves on until resumed, and the messages already queued are held (not sent, not lost)."""
    require(actor, Perm.LAUNCH_CAMPAIGNS)
    journey = _set_status(session, actor, journey_id, "paused", ("active",))
    held = steps.hold(session, journey_id=journey_id)
    audit.record(session, actor=actor, action="journey.hold", entity="journey", entity_id=journey_id, detail={"messages": held})
    return journey


def resume(session: Session, *, actor: Actor, journey_id: int) -> Journey:
    """Active again: the held messages go out (each still consent-checked when it is sent), those of patrons at
    the weekly frequency cap once the cap allows."""
    require(actor, Perm.LAUNCH_CAMPAIGNS)
    journey = activate(session, actor=actor, journey_id=journey_id)
    released = steps.release(session, journey_id=journey_id, now=utcnow())
    audit.record(session, actor=actor, action="journey.release", entity="journey", entity_id=journey_id,
                 detail={"messages": released, "still held (frequency cap)": steps.held(session, journey_id=journey_id)})
    return journey


def held_messages(session: Session, *, actor: Actor, journey_id: int) -> int:
    """How many of the journey's messages wait, held, for it to be resumed."""
    require(actor, Perm.MANAGE_SEGMENTS)
    return steps.held(session, journey_id=journey_id)


def sample_patrons(session: Session, *, actor: Actor, definition: dict[str, Any], limit: int = 20) -> list[tuple[int, str]]:
    """A few patrons the trigger would take today, to preview with (names only with VIEW_PII, audited)."""
    require(actor, Perm.MANAGE_SEGMENTS)
    clause = trigger_clause(session, definition["trigger"], utcnow().date())
    rows = session.execute(select(Patron.id, Patron.first_name, Patron.last_name).where(clause, Patron.erased_at.is_(None)).order_by(Patron.id).limit(limit)).all()
    if not rows:
        rows = session.execute(select(Patron.id, Patron.first_name, Patron.last_name).where(Patron.erased_at.is_(None)).order_by(Patron.id).limit(limit)).all()
    if not actor.can(Perm.VIEW_PII):
        return [(i, f"Patron #{i}") for i, _, _ in rows]
    if rows:
        audit.record(session, actor=actor, action="journey.sample", entity="patron", detail={"shown": len(rows), "patron_ids": [i for i, _, _ in rows]})
    return [(i, f"{first or ''} {last or ''} (#{i})".strip()) for i, first, last in rows]


def preview(db: Database, *, actor: Actor, step: dict[str, Any], patron_id: int, language: str | None = None) -> Rendered:
    """A send step's message as one patron would get it (audited: it shows their details): in their language's
    words, or in `language`'s when given (the step's own words where that language has none)."""
    require(actor, Perm.MANAGE_SEGMENTS)
    if step.get("kind") != "send":
        raise ValueError("Preview: choose a step that sends a message.")
    with db.read() as session:
        context = sending.with_survey_links(session, sending.contexts_for(session, [patron_id]), step.get("survey_id")).get(patron_id)
        patron_language = session.scalar(select(Patron.language).where(Patron.id == patron_id))
        subject, body = definitions.words_for(step, language or patron_language)
        if context is not None and block.uses_block(body):
            # As the step's campaign will send it (a step's campaign gives patrons without interests the library's picks).
            context["recommendations"] = block.blocks(session, [patron_id], fallback=Campaign().recommendations_fallback)[patron_id]
    if context is None:
        raise LookupError(f"There is no patron {patron_id}.")
    if step.get("channel") == "sms":  # the text as the phone shows it, with its stop line
        shown = Rendered(subject="", text=wording.campaign_text(body=body, context=context), html="")
    else:
        shown = templates.render(subject=subject, body=body, context=context)
    with db.write() as session:
        audit.record(session, actor=actor, action="journey.preview", entity="patron", entity_id=patron_id)
    return shown


def send_test(db: Database, *, actor: Actor, step: dict[str, Any], patron_id: int, language: str | None = None) -> str:
    """Send a step's preview (in `language`'s words, as `preview`) to the staff member's own address (a text: to
    their own mobile number); returns where it went. ValueError saying why not when the account has none."""
    rendered = preview(db, actor=actor, step=step, patron_id=patron_id, language=language)
    with db.read() as session:
        staff = session.get(StaffUser, actor.id) if actor.id is not None else None
        if step.get("channel") == "sms":
            return text_sending.send_test_text(session, phone=staff.phone if staff else None, body=rendered.text, campaign_id=0, patron_id=patron_id)
        if staff is None or not staff.email:
            raise ValueError("Test send: your staff account has no email address; ask an administrator to add one.")
        sending.send_test_message(session, to=staff.email, rendered=rendered, campaign_id=0, patron_id=patron_id)
    return staff.email
