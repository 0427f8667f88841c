"""The permission matrix, function by function: each service function is allowed for exactly the
roles whose permissions include the one it requires, and refused with PermissionDenied for the rest.

Add a row to CASES for every crmcore function that takes an actor.
"""

from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import select

from crmcore import kpis
from crmcore.admin import auth, branches, settings
from crmcore.admin.permissions import ROLE_PERMISSIONS, Perm, PermissionDenied, Role, allowed
from crmcore.surveys import definitions as survey_definitions
from crmcore.surveys import responses as survey_responses
from crmcore.surveys import results as survey_results
from tests.survey_records import QUESTIONS, case_survey
from crmcore.campaigns import drafts, inbound, outbox, results, saved_templates, segments, sending
from crmcore.imports import mapping as import_mapping
from crmcore.journeys import definitions as journey_definitions, editing as journey_editing, results as journey_results
from crmcore.kpis import circulation
from crmcore.imports import runner as import_runner
from crmcore.library import categories, patrons
from crmcore.models import CategoryTerm
from crmcore.outreach import calendar, contacts, duplicates, interactions, organizations, tags, tasks
from crmcore.outreach.kpis import outreach_kpis
from crmcore.privacy import audit, rights
from crmcore.languages import variants as language_variants
from crmcore.insights import reports as insight_reports
from crmcore.peers import comparison as peer_comparison
from crmcore.peers import survey as peer_survey
from crmcore.recommendations import catalogue
from crmcore.signups import figures, prospects, snippet
from crmcore.texts import sent as texts_sent
from tests.campaign_fixtures import case_campaign, read_missing_outbox_message, with_temp_mail
from tests.outreach_records import contact_id, interaction_id, org_id, task_id
from tests.privacy_records import patron_id
from tests.segment_records import segment_id
from crmcore.inbox import canned as inbox_canned
from crmcore.inbox import kpis as inbox_kpis
from crmcore.inbox import tickets as inbox_tickets
from crmcore.inbox import topics as inbox_topics
from tests.inbox_records import canned_id, request_id

def saved_template_id(session) -> int:
    from crmcore.models import SavedTemplate

    row = SavedTemplate(name="A template", subject="Hi", body="Hello {{ first_name }}")
    session.add(row)
    session.flush()
    return row.id


def new_branch_id(session) -> int:
    from crmcore.models import Branch

    branch = Branch(code="PERM", name="Branch")
    session.add(branch)
    session.flush()
    return branch.id


def journey_id(session, status: str = "draft") -> int:
    from crmcore.admin.auth import CLI_ACTOR
    from crmcore.journeys import editing as journey_editing

    journey = journey_editing.create(session, actor=CLI_ACTOR, name=f"Journey {status} {id(object())}", template="welcome")
    journey.status = status
    session.add(journey)
    session.flush()
    return journey.id
def survey_year(session) -> int:
    """Three library systems of survey year 2022 (the same state), once."""
    from crmcore.models import LibrarySurveyRow

    if session.get(LibrarySurveyRow, (2022, "AA0001")) is None:
        for i in (1, 2, 3):
            session.add(LibrarySurveyRow(fiscal_year=2022, fscs_key=f"AA000{i}", name=f"Library {i}", state="AA", population=1000 * i, visits=500 * i))
        session.flush()
    return 2022


# (label, permission it requires, call(session, actor)) — the call must succeed on an empty database with staff.
CASES: list[tuple[str, Perm, Callable]] = [
    ("admin.auth.list_users", Perm.MANAGE_STAFF, lambda s, a: auth.list_users(s, actor=a)),
    ("admin.auth.create_user", Perm.MANAGE_STAFF, lambda s, a: auth.create_user(s, actor=a, username="made-by-test", password="long enough pw", role="viewer")),
    ("admin.auth.set_role", Perm.MANAGE_STAFF, lambda s, a: auth.set_role(s, actor=a, username="viewer", role="outreach")),
    ("admin.auth.set_active", Perm.MANAGE_STAFF, lambda s, a: auth.set_active(s, actor=a, username="viewer", active=False)),
    ("admin.auth.set_password(other)", Perm.MANAGE_STAFF, lambda s, a: auth.set_password(s, actor=a, username="viewer" if a.username != "viewer" else "outreach", password="another long pw")),
    ("admin.settings.put", Perm.MANAGE_SETTINGS, lambda s, a: settings.put(s, actor=a, key="small_cell_k", value=7)),
    ("kpis.lifetime.lifetime_distributions", Perm.VIEW_DASHBOARD, lambda s, a: kpis.lifetime.lifetime_distributions(s, actor=a, filters=kpis.Filters(date(2025, 6, 1)))),
    ("admin.branches.list_branches", Perm.MANAGE_SETTINGS, lambda s, a: branches.list_branches(s, actor=a)),
    ("admin.branches.zone_names", Perm.MANAGE_SETTINGS, lambda s, a: branches.zone_names(s, actor=a)),
    ("admin.branches.update_branch", Perm.MANAGE_SETTINGS, lambda s, a: branches.update_branch(s, actor=a, branch_id=new_branch_id(s), name="Renamed", zone_id=None)),
    ("privacy.rights.find_patrons", Perm.PRIVACY_REQUESTS, lambda s, a: rights.find_patrons(s, actor=a, query="PRIV-1")),
    ("privacy.rights.access_export", Perm.PRIVACY_REQUESTS, lambda s, a: rights.access_export(s, actor=a, patron_id=patron_id(s))),
    ("privacy.rights.erase", Perm.PRIVACY_REQUESTS, lambda s, a: rights.erase(s, actor=a, patron_id=patron_id(s))),
    ("privacy.audit.choices", Perm.VIEW_AUDIT, lambda s, a: audit.choices(s, actor=a)),
    ("privacy.audit.search", Perm.VIEW_AUDIT, lambda s, a: audit.search(s, actor=a, action="login")),
    ("privacy.audit.export_csv", Perm.VIEW_AUDIT, lambda s, a: audit.export_csv(s, actor=a)),
    ("outreach.organizations.create_organization", Perm.EDIT_OUTREACH, lambda s, a: organizations.create_organization(s, actor=a, name="PTA")),
    ("outreach.organizations.update_organization", Perm.EDIT_OUTREACH, lambda s, a: organizations.update_organization(s, actor=a, organization_id=org_id(s), name="Renamed")),
    ("outreach.organizations.archive_organization", Perm.EDIT_OUTREACH, lambda s, a: organizations.archive_organization(s, actor=a, organization_id=org_id(s))),
    ("outreach.organizations.get_organization", Perm.VIEW_OUTREACH, lambda s, a: organizations.get_organization(s, actor=a, organization_id=org_id(s))),
    ("outreach.organizations.find_organization", Perm.VIEW_OUTREACH, lambda s, a: organizations.find_organization(s, actor=a, name="PTA")),
    ("outreach.organizations.list_organizations", Perm.VIEW_OUTREACH, lambda s, a: organizations.list_organizations(s, actor=a)),
    ("outreach.organizations.organization_choices", Perm.VIEW_OUTREACH, lambda s, a: organizations.organization_choices(s, actor=a)),
    ("outreach.tags.all_tags", Perm.VIEW_OUTREACH, lambda s, a: tags.all_tags(s, actor=a)),
    ("outreach.contacts.create_contact", Perm.EDIT_OUTREACH, lambda s, a: contacts.create_contact(s, actor=a, last_name="Lee")),
    ("outreach.contacts.update_contact", Perm.EDIT_OUTREACH, lambda s, a: contacts.update_contact(s, actor=a, contact_id=contact_id(s), first_name="Al")),
    ("outreach.contacts.archive_contact", Perm.EDIT_OUTREACH, lambda s, a: contacts.archive_contact(s, actor=a, contact_id=contact_id(s))),
    ("outreach.contacts.get_contact", Perm.VIEW_OUTREACH, lambda s, a: contacts.get_contact(s, actor=a, contact_id=contact_id(s))),
    ("outreach.contacts.find_contact", Perm.VIEW_OUTREACH, lambda s, a: contacts.find_contact(s, actor=a, last_name="Lee")),
    ("outreach.contacts.list_contacts", Perm.VIEW_OUTREACH, lambda s, a: contacts.list_contacts(s, actor=a)),
    ("outreach.contacts.contact_choices", Perm.VIEW_OUTREACH, lambda s, a: contacts.contact_choices(s, actor=a)),
    ("outreach.duplicates.organization_duplicates", Perm.VIEW_OUTREACH, lambda s, a: duplicates.organization_duplicates(s, actor=a)),
    ("outreach.duplicates.contact_duplicates", Perm.VIEW_OUTREACH, lambda s, a: duplicates.contact_duplicates(s, actor=a)),
    ("outreach.duplicates.suggestions", Perm.VIEW_OUTREACH, lambda s, a: duplicates.suggestions(s, actor=a, kind="organization")),
    ("outreach.duplicates.not_a_duplicate", Perm.EDIT_OUTREACH, lambda s, a: duplicates.not_a_duplicate(s, actor=a, kind="organization", first_id=org_id(s), second_id=org_id(s, "Other Org"))),
    ("outreach.duplicates.similar_organizations", Perm.VIEW_OUTREACH, lambda s, a: duplicates.similar_organizations(s, actor=a, name="PTA")),
    ("outreach.duplicates.similar_contacts", Perm.VIEW_OUTREACH, lambda s, a: duplicates.similar_contacts(s, actor=a, first_name=None, last_name="Lee")),
    ("outreach.duplicates.merge_organizations", Perm.EDIT_OUTREACH, lambda s, a: duplicates.merge_organizations(s, actor=a, keep_id=org_id(s), merge_id=org_id(s))),
    ("outreach.duplicates.merge_contacts", Perm.EDIT_OUTREACH, lambda s, a: duplicates.merge_contacts(s, actor=a, keep_id=contact_id(s), merge_id=contact_id(s))),
    ("outreach.interactions.log_interaction", Perm.EDIT_OUTREACH, lambda s, a: interactions.log_interaction(s, actor=a, kind="visit", new_organizations=["PTA"])),
    ("outreach.interactions.update_interaction", Perm.EDIT_OUTREACH, lambda s, a: interactions.update_interaction(s, actor=a, interaction_id=interaction_id(s, a.id), notes="n")),
    ("outreach.interactions.timeline", Perm.VIEW_OUTREACH, lambda s, a: interactions.timeline(s, actor=a, organization_id=org_id(s))),
    ("outreach.interactions.search_interactions", Perm.VIEW_OUTREACH, lambda s, a: interactions.search_interactions(s, actor=a)),
    ("outreach.kpis.outreach_kpis", Perm.VIEW_DASHBOARD, lambda s, a: outreach_kpis(s, actor=a, date_from=date(2024, 1, 1), date_to=date(2024, 12, 31))),
    ("outreach.tasks.assignable_staff", Perm.VIEW_OUTREACH, lambda s, a: tasks.assignable_staff(s, actor=a)),
    ("outreach.tasks.create_task", Perm.EDIT_OUTREACH, lambda s, a: tasks.create_task(s, actor=a, title="Call")),
    ("outreach.tasks.my_followups", Perm.VIEW_OUTREACH, lambda s, a: tasks.my_followups(s, actor=a)),
    ("outreach.tasks.interaction_names", Perm.VIEW_OUTREACH, lambda s, a: tasks.interaction_names(s, actor=a, ids=[interaction_id(s, a.id)])),
    ("outreach.tasks.complete", Perm.EDIT_OUTREACH, lambda s, a: tasks.complete(s, actor=a, kind="task", item_id=task_id(s, a.id))),
    ("outreach.tasks.snooze", Perm.EDIT_OUTREACH, lambda s, a: tasks.snooze(s, actor=a, kind="follow_up", item_id=interaction_id(s, a.id, follow_up_on=date.today()), until=date.today())),
    ("outreach.tasks.reassign", Perm.EDIT_OUTREACH, lambda s, a: tasks.reassign(s, actor=a, kind="task", item_id=task_id(s, a.id), assignee_id=a.id)),
    ("outreach.calendar.my_calendar", Perm.VIEW_OUTREACH, lambda s, a: calendar.my_calendar(s, actor=a)),
    ("outreach.calendar.feed_token", Perm.VIEW_OUTREACH, lambda s, a: calendar.feed_token(s, actor=a)),
    ("outreach.calendar.subscribe", Perm.VIEW_OUTREACH, lambda s, a: calendar.subscribe(s, actor=a)),
    ("outreach.calendar.unsubscribe", Perm.VIEW_OUTREACH, lambda s, a: calendar.unsubscribe(s, actor=a)),
    ("campaigns.segments.count", Perm.MANAGE_SEGMENTS, lambda s, a: segments.count(s, actor=a, rules={"all": []})),
    ("campaigns.segments.sample", Perm.MANAGE_SEGMENTS, lambda s, a: segments.sample(s, actor=a, rules={"all": []})),
    ("campaigns.segments.save", Perm.MANAGE_SEGMENTS, lambda s, a: segments.save(s, actor=a, name="Everyone", rules={"all": []})),
    ("campaigns.segments.update", Perm.MANAGE_SEGMENTS, lambda s, a: segments.update(s, actor=a, segment_id=segment_id(s), name="Renamed")),
    ("campaigns.segments.duplicate", Perm.MANAGE_SEGMENTS, lambda s, a: segments.duplicate(s, actor=a, segment_id=segment_id(s))),
    ("campaigns.segments.delete", Perm.MANAGE_SEGMENTS, lambda s, a: segments.delete(s, actor=a, segment_id=segment_id(s))),
    ("campaigns.segments.get", Perm.MANAGE_SEGMENTS, lambda s, a: segments.get(s, actor=a, segment_id=segment_id(s))),
    ("campaigns.segments.list_segments", Perm.MANAGE_SEGMENTS, lambda s, a: segments.list_segments(s, actor=a)),
    ("campaigns.segments.choices", Perm.MANAGE_SEGMENTS, lambda s, a: segments.choices(s, actor=a)),
    ("campaigns.drafts.list_campaigns", Perm.COMPOSE_CAMPAIGNS, lambda s, a: drafts.list_campaigns(s, actor=a)),
    ("campaigns.drafts.segment_choices", Perm.COMPOSE_CAMPAIGNS, lambda s, a: drafts.segment_choices(s, actor=a)),
    ("campaigns.drafts.compose", Perm.COMPOSE_CAMPAIGNS, lambda s, a: drafts.compose(s, actor=a, name="C", segment_id=segment_id(s), topic="events", subject="Hi", body="Hello")),
    ("campaigns.saved_templates.save", Perm.COMPOSE_CAMPAIGNS, lambda s, a: saved_templates.save(s, actor=a, name="Autumn", subject="Hi", body="Hello")),
    ("campaigns.saved_templates.list_templates", Perm.COMPOSE_CAMPAIGNS, lambda s, a: saved_templates.list_templates(s, actor=a)),
    ("campaigns.saved_templates.get", Perm.COMPOSE_CAMPAIGNS, lambda s, a: saved_templates.get(s, actor=a, template_id=saved_template_id(s))),
    ("campaigns.saved_templates.delete", Perm.COMPOSE_CAMPAIGNS, lambda s, a: saved_templates.delete(s, actor=a, template_id=saved_template_id(s))),
    ("campaigns.drafts.sample_patrons", Perm.COMPOSE_CAMPAIGNS, lambda s, a: drafts.sample_patrons(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("texts.sent.recent", Perm.COMPOSE_CAMPAIGNS, lambda s, a: texts_sent.recent(s, actor=a)),
    ("campaigns.drafts.text_length", Perm.COMPOSE_CAMPAIGNS, lambda s, a: drafts.text_length(s, actor=a, body="Hello {{ first_name }}")),
    ("campaigns.drafts.plan", Perm.LAUNCH_CAMPAIGNS, lambda s, a: drafts.plan(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaigns.drafts.launch", Perm.LAUNCH_CAMPAIGNS, lambda s, a: drafts.launch(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaigns.drafts.cancel", Perm.LAUNCH_CAMPAIGNS, lambda s, a: drafts.cancel(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaigns.results.results", Perm.VIEW_DASHBOARD, lambda s, a: results.results(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaigns.results.conversion_by_day", Perm.VIEW_DASHBOARD, lambda s, a: results.conversion_by_day(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaigns.results.dashboard_rows", Perm.VIEW_DASHBOARD, lambda s, a: results.dashboard_rows(s, actor=a)),
    ("campaigns.outbox.list_messages", Perm.COMPOSE_CAMPAIGNS, lambda s, a: with_temp_mail(lambda: outbox.list_messages(s, actor=a))),
    ("campaigns.outbox.read", Perm.COMPOSE_CAMPAIGNS, read_missing_outbox_message),
    ("campaigns.outbox.remove_patron", Perm.PRIVACY_REQUESTS, lambda s, a: with_temp_mail(lambda: outbox.remove_patron(actor=a, patron_id=1))),
    ("campaigns.sending.status", Perm.COMPOSE_CAMPAIGNS, lambda s, a: sending.status(s, actor=a)),
    ("campaigns.results.failures", Perm.COMPOSE_CAMPAIGNS, lambda s, a: results.failures(s, actor=a)),
    ("kpis.dashboard.dashboard", Perm.VIEW_DASHBOARD, lambda s, a: kpis.dashboard(s, actor=a, filters=kpis.Filters(date(2025, 6, 1)), today=date(2025, 6, 15))),
    ("kpis.dashboard.filter_options", Perm.VIEW_DASHBOARD, lambda s, a: kpis.filter_options(s, actor=a)),
    ("kpis.circulation.circulation_options", Perm.VIEW_DASHBOARD, lambda s, a: circulation.circulation_options(s, actor=a)),
    ("kpis.circulation.circulation_trends", Perm.VIEW_DASHBOARD, lambda s, a: circulation.circulation_trends(s, actor=a, first=date(2025, 1, 1), last=date(2025, 6, 1), by="branch")),
    ("library.patrons.choices", Perm.VIEW_PATRONS, lambda s, a: patrons.choices(s, actor=a)),
    ("library.patrons.search", Perm.VIEW_PATRONS, lambda s, a: patrons.search(s, actor=a, by="ils_id", query="PRIV-1")),
    ("library.patrons.record_patron_request", Perm.VIEW_PII, lambda s, a: patrons.record_patron_request(
        s, actor=a, patron_id=patron_id(s), channel="email", topic="events", granted=False, way="phone")),
    ("campaigns.inbound.recent", Perm.COMPOSE_CAMPAIGNS, lambda s, a: inbound.recent(s, actor=a)),
    ("campaigns.inbound.mark_reviewed", Perm.COMPOSE_CAMPAIGNS, lambda s, a: inbound.mark_reviewed(s, actor=a, inbound_id=kept_mail(s))),
    ("library.patrons.profile", Perm.VIEW_PATRONS, lambda s, a: patrons.profile(s, actor=a, patron_id=patron_id(s, "DIR-1"))),
    ("imports.mapping.save", Perm.IMPORT_DATA, lambda s, a: import_mapping.save(s, actor=a, kind="zones", name="census", mapping={"columns": {"code": "zip"}})),
    ("imports.mapping.find", Perm.IMPORT_DATA, lambda s, a: import_mapping.find(s, actor=a, kind="patrons", name="Koha borrowers")),
    ("imports.mapping.saved", Perm.IMPORT_DATA, lambda s, a: import_mapping.saved(s, actor=a, kind="patrons")),
    ("imports.runner.recent_runs", Perm.IMPORT_DATA, lambda s, a: import_runner.recent_runs(s, actor=a)),
    ("library.categories.list_terms", Perm.IMPORT_DATA, lambda s, a: categories.list_terms(s, actor=a, group="material")),
    ("library.categories.add_term", Perm.MANAGE_SETTINGS, lambda s, a: categories.add_term(s, actor=a, name="Zines", group="genre")),
    ("library.categories.remove_term", Perm.MANAGE_SETTINGS, lambda s, a: categories.remove_term(s, actor=a, term_id=term_id(s, "Kit"))),
    # journeys
    ("journeys.editing.list_journeys", Perm.MANAGE_SEGMENTS, lambda s, a: journey_editing.list_journeys(s, actor=a)),
    ("journeys.editing.create", Perm.MANAGE_SEGMENTS, lambda s, a: journey_editing.create(s, actor=a, name="A journey", template="card_renewal")),
    ("journeys.editing.definition_of", Perm.MANAGE_SEGMENTS, lambda s, a: journey_editing.definition_of(s, actor=a, journey_id=journey_id(s))),
    ("journeys.editing.edit", Perm.MANAGE_SEGMENTS, lambda s, a: journey_editing.edit(s, actor=a, journey_id=journey_id(s), definition=journey_definitions.template("welcome"))),
    ("journeys.editing.activate", Perm.LAUNCH_CAMPAIGNS, lambda s, a: journey_editing.activate(s, actor=a, journey_id=journey_id(s))),
    ("journeys.editing.pause", Perm.LAUNCH_CAMPAIGNS, lambda s, a: journey_editing.pause(s, actor=a, journey_id=journey_id(s, "active"))),
    ("journeys.editing.resume", Perm.LAUNCH_CAMPAIGNS, lambda s, a: journey_editing.resume(s, actor=a, journey_id=journey_id(s, "paused"))),
    ("journeys.editing.sample_patrons", Perm.MANAGE_SEGMENTS, lambda s, a: journey_editing.sample_patrons(s, actor=a, definition=journey_definitions.template("welcome"))),
    ("journeys.editing.text_length", Perm.MANAGE_SEGMENTS, lambda s, a: journey_editing.text_length(s, actor=a, body="Hello {{ first_name }}")),
    ("journeys.editing.held_messages", Perm.MANAGE_SEGMENTS, lambda s, a: journey_editing.held_messages(s, actor=a, journey_id=journey_id(s, "paused"))),
    ("journeys.results.journey_results", Perm.VIEW_DASHBOARD, lambda s, a: journey_results.journey_results(s, actor=a, journey_id=journey_id(s))),
    # surveys
    ("surveys.definitions.list_surveys", Perm.VIEW_DASHBOARD, lambda s, a: survey_definitions.list_surveys(s, actor=a)),
    ("surveys.definitions.choices", Perm.VIEW_DASHBOARD, lambda s, a: survey_definitions.choices(s, actor=a)),
    ("surveys.definitions.branch_choices", Perm.COMPOSE_CAMPAIGNS, lambda s, a: survey_definitions.branch_choices(s, actor=a)),
    ("surveys.definitions.save", Perm.COMPOSE_CAMPAIGNS, lambda s, a: survey_definitions.save(s, actor=a, name="Asked", questions=QUESTIONS, follow_up_role="outreach")),
    ("surveys.definitions.set_status", Perm.LAUNCH_CAMPAIGNS, lambda s, a: survey_definitions.set_status(s, actor=a, survey_id=case_survey(s), status="open")),
    ("surveys.responses.texts", Perm.VIEW_PII, lambda s, a: survey_responses.texts(s, actor=a, survey_id=case_survey(s))),
    ("surveys.results.summary", Perm.VIEW_DASHBOARD, lambda s, a: survey_results.summary(s, actor=a, survey_id=case_survey(s))),
    ("surveys.results.by_group", Perm.VIEW_DASHBOARD, lambda s, a: survey_results.by_group(s, actor=a, survey_id=case_survey(s), by="branch")),
    ("surveys.results.distributions", Perm.VIEW_DASHBOARD, lambda s, a: survey_results.distributions(s, actor=a, survey_id=case_survey(s))),
    # requests from patrons and partners (crmcore.inbox)
    ("inbox.topics.list_topics", Perm.VIEW_OUTREACH, lambda s, a: inbox_topics.list_topics(s, actor=a)),
    ("inbox.topics.save_topic", Perm.MANAGE_SETTINGS, lambda s, a: inbox_topics.save_topic(s, actor=a, name="Visits", target_hours=48)),
    ("inbox.canned.list_replies", Perm.VIEW_OUTREACH, lambda s, a: inbox_canned.list_replies(s, actor=a)),
    ("inbox.canned.save_reply", Perm.EDIT_OUTREACH, lambda s, a: inbox_canned.save_reply(s, actor=a, name="Thanks", body="Thank you.")),
    ("inbox.canned.delete_reply", Perm.EDIT_OUTREACH, lambda s, a: inbox_canned.delete_reply(s, actor=a, reply_id=canned_id(s))),
    ("inbox.tickets.log_request", Perm.EDIT_OUTREACH, lambda s, a: inbox_tickets.log_request(s, actor=a, channel="desk", subject="Card", body="Lost card", requester_name="Al")),
    ("inbox.tickets.choices", Perm.VIEW_OUTREACH, lambda s, a: inbox_tickets.choices(s, actor=a)),
    ("inbox.tickets.queue", Perm.VIEW_OUTREACH, lambda s, a: inbox_tickets.queue(s, actor=a)),
    ("inbox.tickets.thread", Perm.VIEW_OUTREACH, lambda s, a: inbox_tickets.thread(s, actor=a, request_id=request_id(s))),
    ("inbox.tickets.take", Perm.EDIT_OUTREACH, lambda s, a: inbox_tickets.take(s, actor=a, request_id=request_id(s))),
    ("inbox.tickets.assign", Perm.EDIT_OUTREACH, lambda s, a: inbox_tickets.assign(s, actor=a, request_id=request_id(s), owner_id=a.id)),
    ("inbox.tickets.add_note", Perm.EDIT_OUTREACH, lambda s, a: inbox_tickets.add_note(s, actor=a, request_id=request_id(s), text="Called back")),
    ("inbox.tickets.reply", Perm.EDIT_OUTREACH, lambda s, a: with_temp_mail(lambda: inbox_tickets.reply(s, actor=a, request_id=request_id(s), text="Done."))),
    ("inbox.tickets.close", Perm.EDIT_OUTREACH, lambda s, a: inbox_tickets.close(s, actor=a, request_id=request_id(s))),
    ("inbox.tickets.overdue", Perm.VIEW_OUTREACH, lambda s, a: inbox_tickets.overdue(s, actor=a)),
    ("inbox.kpis.request_kpis", Perm.VIEW_DASHBOARD, lambda s, a: inbox_kpis.request_kpis(s, actor=a, date_from=date(2026, 1, 1), date_to=date(2026, 12, 31))),
    # Languages: a message's words per language (hL).
    ("languages.variants.save", Perm.COMPOSE_CAMPAIGNS, lambda s, a: language_variants.save(
        s, actor=a, owner="campaign", owner_id=case_campaign(s)[0], language="es", subject="Hola", body="Hola {{ first_name }}")),
    ("languages.variants.remove", Perm.COMPOSE_CAMPAIGNS, lambda s, a: language_variants.remove(s, actor=a, owner="campaign", owner_id=case_campaign(s)[0], language="es")),
    ("languages.variants.variants", Perm.COMPOSE_CAMPAIGNS, lambda s, a: language_variants.variants(s, actor=a, owner="campaign", owner_id=case_campaign(s)[0])),
    ("languages.variants.languages_in_use", Perm.COMPOSE_CAMPAIGNS, lambda s, a: language_variants.languages_in_use(s, actor=a)),
    # Peers, personas and lapse risk.
    ("peers.survey.years", Perm.VIEW_DASHBOARD, lambda s, a: peer_survey.years(s, actor=a)),
    ("peers.survey.year_rows", Perm.VIEW_DASHBOARD, lambda s, a: peer_survey.year_rows(s, actor=a, year=2022)),
    ("peers.survey.library_rows", Perm.VIEW_DASHBOARD, lambda s, a: peer_survey.library_rows(s, actor=a, fscs_key="AA0001")),
    ("peers.survey.search", Perm.VIEW_DASHBOARD, lambda s, a: peer_survey.search(s, actor=a, query="library")),
    ("peers.survey.choose_own", Perm.MANAGE_SETTINGS, lambda s, a: peer_survey.choose_own(s, actor=a, fscs_key="")),
    ("peers.comparison.compare", Perm.VIEW_DASHBOARD, lambda s, a: peer_comparison.compare(s, actor=a, year=survey_year(s), own="AA0001", way="state")),
    ("peers.comparison.trend", Perm.VIEW_DASHBOARD, lambda s, a: peer_comparison.trend(s, actor=a, own="AA0001", way="state")),
    ("peers.comparison.live_figures", Perm.VIEW_DASHBOARD, lambda s, a: peer_comparison.live_figures(s, actor=a, year=2022, own="AA0001")),
    ("insights.reports.personas", Perm.VIEW_DASHBOARD, lambda s, a: insight_reports.personas(s, actor=a)),
    ("insights.reports.persona_places", Perm.VIEW_DASHBOARD, lambda s, a: insight_reports.persona_places(s, actor=a, by="zone")),
    ("insights.reports.lapse_risk", Perm.VIEW_DASHBOARD, lambda s, a: insight_reports.lapse_risk(s, actor=a)),
    # New materials you may like (recommendations)
    ("recommendations.catalogue.items", Perm.COMPOSE_CAMPAIGNS, lambda s, a: catalogue.items(s, actor=a)),
    ("recommendations.catalogue.set_picks", Perm.COMPOSE_CAMPAIGNS, lambda s, a: catalogue.set_picks(s, actor=a, item_ids=[])),
    # sign-up forms for prospects
    ("signups.figures.by_month", Perm.VIEW_DASHBOARD, lambda s, a: figures.by_month(s, actor=a)),
    ("signups.prospects.count_audience", Perm.MANAGE_SEGMENTS, lambda s, a: prospects.count_audience(s, actor=a, topic="events")),
    ("signups.prospects.list_prospects", Perm.COMPOSE_CAMPAIGNS, lambda s, a: prospects.list_prospects(s, actor=a)),
    ("signups.prospects.access", Perm.PRIVACY_REQUESTS, lambda s, a: prospects.access(s, actor=a, email="nobody@example.org")),
    ("signups.prospects.erase", Perm.PRIVACY_REQUESTS, lambda s, a: prospects.erase(s, actor=a, email="nobody@example.org")),
    ("signups.snippet.html", Perm.COMPOSE_CAMPAIGNS, lambda s, a: with_temp_mail(lambda: snippet.html(s, actor=a))),
]


def term_id(session, name: str) -> int:
    return session.execute(select(CategoryTerm.id).where(CategoryTerm.name == name)).scalar_one()


def kept_mail(session) -> int:
    """An inbound message Liaison did not understand, kept for review."""
    row = inbound.process(session, recipients=["news@library.test"], data=b"Subject: Out of office\n\nAway.")
    session.flush()
    return row.id


def test_every_role_has_a_row_in_the_matrix():
    assert set(ROLE_PERMISSIONS) == set(Role)
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Perm)


def test_viewer_sees_no_personal_data():
    assert not allowed(Role.VIEWER, Perm.VIEW_PII)
    assert not allowed(Role.VIEWER, Perm.VIEW_PATRONS)
    assert not allowed(Role.VIEWER, Perm.VIEW_OUTREACH)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("label,perm,call", CASES, ids=[c[0] for c in CASES])
def test_function_is_allowed_exactly_for_roles_with_its_permission(db, staff, role, label, perm, call):
    actor = staff[role.value]
    if allowed(role, perm):
        with db.write() as session:
            call(session, actor)
    else:
        with pytest.raises(PermissionDenied), db.write() as session:
            call(session, actor)


def test_anyone_may_change_their_own_password(db, staff):
    with db.write() as session:
        auth.set_password(session, actor=staff["viewer"], username="viewer", password="my own new password")
