"""The permission matrix, function by function: each service function is allowed for exactly the
roles whose permissions include the one it requires, and refused with PermissionDenied for the rest.

Add a row to CASES for every crmcore function that takes an actor.
"""

from collections.abc import Callable
from datetime import date

import pytest

from crmcore import auth, settings
from crmcore import outreach, outreach_calendar, outreach_contacts, outreach_duplicates, outreach_interactions, outreach_kpis, tasks
from tests.outreach_records import contact_id, interaction_id, org_id, task_id
from crmcore import segments
from tests.segment_records import segment_id
from crmcore import audit_search, privacy
from crmcore import patrons
from tests.privacy_records import patron_id
from crmcore import campaign_results, campaigns, outbox
from tests.campaign_fixtures import case_campaign, read_missing_outbox_message, with_temp_mail
from crmcore import kpis
from crmcore.imports import mapping as import_mapping, runner as import_runner
from crmcore.permissions import ROLE_PERMISSIONS, Perm, PermissionDenied, Role, allowed

# (label, permission it requires, call(session, actor)) — the call must succeed on an empty database with staff.
CASES: list[tuple[str, Perm, Callable]] = [
    ("auth.list_users", Perm.MANAGE_STAFF, lambda s, a: auth.list_users(s, actor=a)),
    ("auth.create_user", Perm.MANAGE_STAFF, lambda s, a: auth.create_user(s, actor=a, username="made-by-test", password="long enough pw", role="viewer")),
    ("auth.set_role", Perm.MANAGE_STAFF, lambda s, a: auth.set_role(s, actor=a, username="viewer", role="outreach")),
    ("auth.set_active", Perm.MANAGE_STAFF, lambda s, a: auth.set_active(s, actor=a, username="viewer", active=False)),
    ("auth.set_password(other)", Perm.MANAGE_STAFF, lambda s, a: auth.set_password(s, actor=a, username="viewer" if a.username != "viewer" else "outreach", password="another long pw")),
    ("settings.put", Perm.MANAGE_SETTINGS, lambda s, a: settings.put(s, actor=a, key="small_cell_k", value=7)),
    ("privacy.find_patrons", Perm.PRIVACY_REQUESTS, lambda s, a: privacy.find_patrons(s, actor=a, query="PRIV-1")),
    ("privacy.access_export", Perm.PRIVACY_REQUESTS, lambda s, a: privacy.access_export(s, actor=a, patron_id=patron_id(s))),
    ("privacy.erase", Perm.PRIVACY_REQUESTS, lambda s, a: privacy.erase(s, actor=a, patron_id=patron_id(s))),
    ("audit_search.choices", Perm.VIEW_AUDIT, lambda s, a: audit_search.choices(s, actor=a)),
    ("audit_search.search", Perm.VIEW_AUDIT, lambda s, a: audit_search.search(s, actor=a, action="login")),
    ("audit_search.export_csv", Perm.VIEW_AUDIT, lambda s, a: audit_search.export_csv(s, actor=a)),
    ("outreach.create_organization", Perm.EDIT_OUTREACH, lambda s, a: outreach.create_organization(s, actor=a, name="PTA")),
    ("outreach.update_organization", Perm.EDIT_OUTREACH, lambda s, a: outreach.update_organization(s, actor=a, organization_id=org_id(s), name="Renamed")),
    ("outreach.archive_organization", Perm.EDIT_OUTREACH, lambda s, a: outreach.archive_organization(s, actor=a, organization_id=org_id(s))),
    ("outreach.get_organization", Perm.VIEW_OUTREACH, lambda s, a: outreach.get_organization(s, actor=a, organization_id=org_id(s))),
    ("outreach.find_organization", Perm.VIEW_OUTREACH, lambda s, a: outreach.find_organization(s, actor=a, name="PTA")),
    ("outreach.list_organizations", Perm.VIEW_OUTREACH, lambda s, a: outreach.list_organizations(s, actor=a)),
    ("outreach.organization_choices", Perm.VIEW_OUTREACH, lambda s, a: outreach.organization_choices(s, actor=a)),
    ("outreach.all_tags", Perm.VIEW_OUTREACH, lambda s, a: outreach.all_tags(s, actor=a)),
    ("outreach_contacts.create_contact", Perm.EDIT_OUTREACH, lambda s, a: outreach_contacts.create_contact(s, actor=a, last_name="Lee")),
    ("outreach_contacts.update_contact", Perm.EDIT_OUTREACH, lambda s, a: outreach_contacts.update_contact(s, actor=a, contact_id=contact_id(s), first_name="Al")),
    ("outreach_contacts.archive_contact", Perm.EDIT_OUTREACH, lambda s, a: outreach_contacts.archive_contact(s, actor=a, contact_id=contact_id(s))),
    ("outreach_contacts.get_contact", Perm.VIEW_OUTREACH, lambda s, a: outreach_contacts.get_contact(s, actor=a, contact_id=contact_id(s))),
    ("outreach_contacts.find_contact", Perm.VIEW_OUTREACH, lambda s, a: outreach_contacts.find_contact(s, actor=a, last_name="Lee")),
    ("outreach_contacts.list_contacts", Perm.VIEW_OUTREACH, lambda s, a: outreach_contacts.list_contacts(s, actor=a)),
    ("outreach_contacts.contact_choices", Perm.VIEW_OUTREACH, lambda s, a: outreach_contacts.contact_choices(s, actor=a)),
    ("outreach_duplicates.organization_duplicates", Perm.VIEW_OUTREACH, lambda s, a: outreach_duplicates.organization_duplicates(s, actor=a)),
    ("outreach_duplicates.contact_duplicates", Perm.VIEW_OUTREACH, lambda s, a: outreach_duplicates.contact_duplicates(s, actor=a)),
    ("outreach_duplicates.similar_organizations", Perm.VIEW_OUTREACH, lambda s, a: outreach_duplicates.similar_organizations(s, actor=a, name="PTA")),
    ("outreach_duplicates.similar_contacts", Perm.VIEW_OUTREACH, lambda s, a: outreach_duplicates.similar_contacts(s, actor=a, first_name=None, last_name="Lee")),
    ("outreach_duplicates.merge_organizations", Perm.EDIT_OUTREACH, lambda s, a: outreach_duplicates.merge_organizations(s, actor=a, keep_id=org_id(s), merge_id=org_id(s))),
    ("outreach_duplicates.merge_contacts", Perm.EDIT_OUTREACH, lambda s, a: outreach_duplicates.merge_contacts(s, actor=a, keep_id=contact_id(s), merge_id=contact_id(s))),
    ("outreach_interactions.log_interaction", Perm.EDIT_OUTREACH, lambda s, a: outreach_interactions.log_interaction(s, actor=a, kind="visit", new_organizations=["PTA"])),
    ("outreach_interactions.update_interaction", Perm.EDIT_OUTREACH, lambda s, a: outreach_interactions.update_interaction(s, actor=a, interaction_id=interaction_id(s, a.id), notes="n")),
    ("outreach_interactions.timeline", Perm.VIEW_OUTREACH, lambda s, a: outreach_interactions.timeline(s, actor=a, organization_id=org_id(s))),
    ("outreach_interactions.search_interactions", Perm.VIEW_OUTREACH, lambda s, a: outreach_interactions.search_interactions(s, actor=a)),
    ("outreach_kpis.outreach_kpis", Perm.VIEW_DASHBOARD, lambda s, a: outreach_kpis.outreach_kpis(s, actor=a, date_from=date(2024, 1, 1), date_to=date(2024, 12, 31))),
    ("tasks.assignable_staff", Perm.VIEW_OUTREACH, lambda s, a: tasks.assignable_staff(s, actor=a)),
    ("tasks.create_task", Perm.EDIT_OUTREACH, lambda s, a: tasks.create_task(s, actor=a, title="Call")),
    ("tasks.my_followups", Perm.VIEW_OUTREACH, lambda s, a: tasks.my_followups(s, actor=a)),
    ("tasks.complete", Perm.EDIT_OUTREACH, lambda s, a: tasks.complete(s, actor=a, kind="task", item_id=task_id(s, a.id))),
    ("tasks.snooze", Perm.EDIT_OUTREACH, lambda s, a: tasks.snooze(s, actor=a, kind="follow_up", item_id=interaction_id(s, a.id, follow_up_on=date.today()), until=date.today())),
    ("tasks.reassign", Perm.EDIT_OUTREACH, lambda s, a: tasks.reassign(s, actor=a, kind="task", item_id=task_id(s, a.id), assignee_id=a.id)),
    ("outreach_calendar.my_calendar", Perm.VIEW_OUTREACH, lambda s, a: outreach_calendar.my_calendar(s, actor=a)),
    ("outreach_calendar.feed_token", Perm.VIEW_OUTREACH, lambda s, a: outreach_calendar.feed_token(s, actor=a)),
    ("outreach_calendar.subscribe", Perm.VIEW_OUTREACH, lambda s, a: outreach_calendar.subscribe(s, actor=a)),
    ("outreach_calendar.unsubscribe", Perm.VIEW_OUTREACH, lambda s, a: outreach_calendar.unsubscribe(s, actor=a)),
    ("segments.count", Perm.MANAGE_SEGMENTS, lambda s, a: segments.count(s, actor=a, rules={"all": []})),
    ("segments.sample", Perm.MANAGE_SEGMENTS, lambda s, a: segments.sample(s, actor=a, rules={"all": []})),
    ("segments.save", Perm.MANAGE_SEGMENTS, lambda s, a: segments.save(s, actor=a, name="Everyone", rules={"all": []})),
    ("segments.update", Perm.MANAGE_SEGMENTS, lambda s, a: segments.update(s, actor=a, segment_id=segment_id(s), name="Renamed")),
    ("segments.duplicate", Perm.MANAGE_SEGMENTS, lambda s, a: segments.duplicate(s, actor=a, segment_id=segment_id(s))),
    ("segments.delete", Perm.MANAGE_SEGMENTS, lambda s, a: segments.delete(s, actor=a, segment_id=segment_id(s))),
    ("segments.get", Perm.MANAGE_SEGMENTS, lambda s, a: segments.get(s, actor=a, segment_id=segment_id(s))),
    ("segments.list_segments", Perm.MANAGE_SEGMENTS, lambda s, a: segments.list_segments(s, actor=a)),
    ("segments.choices", Perm.MANAGE_SEGMENTS, lambda s, a: segments.choices(s, actor=a)),
    ("campaigns.list_campaigns", Perm.COMPOSE_CAMPAIGNS, lambda s, a: campaigns.list_campaigns(s, actor=a)),
    ("campaigns.segment_choices", Perm.COMPOSE_CAMPAIGNS, lambda s, a: campaigns.segment_choices(s, actor=a)),
    ("campaigns.compose", Perm.COMPOSE_CAMPAIGNS, lambda s, a: campaigns.compose(s, actor=a, name="C", segment_id=segment_id(s), topic="events", subject="Hi", body="Hello")),
    ("campaigns.sample_patrons", Perm.COMPOSE_CAMPAIGNS, lambda s, a: campaigns.sample_patrons(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaigns.preview", Perm.COMPOSE_CAMPAIGNS, lambda s, a: with_temp_mail(lambda: campaigns.preview(s, actor=a, campaign_id=(c := case_campaign(s))[0], patron_id=c[1]))),
    ("campaigns.send_test", Perm.COMPOSE_CAMPAIGNS, lambda s, a: with_temp_mail(lambda: campaigns.send_test(s, actor=a, campaign_id=(c := case_campaign(s))[0], patron_id=c[1]))),
    ("campaigns.plan", Perm.LAUNCH_CAMPAIGNS, lambda s, a: campaigns.plan(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaigns.launch", Perm.LAUNCH_CAMPAIGNS, lambda s, a: campaigns.launch(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaigns.cancel", Perm.LAUNCH_CAMPAIGNS, lambda s, a: campaigns.cancel(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaign_results.results", Perm.VIEW_DASHBOARD, lambda s, a: campaign_results.results(s, actor=a, campaign_id=case_campaign(s)[0])),
    ("campaign_results.dashboard_rows", Perm.VIEW_DASHBOARD, lambda s, a: campaign_results.dashboard_rows(s, actor=a)),
    ("outbox.list_messages", Perm.COMPOSE_CAMPAIGNS, lambda s, a: with_temp_mail(lambda: outbox.list_messages(actor=a))),
    ("outbox.read", Perm.COMPOSE_CAMPAIGNS, read_missing_outbox_message),
    ("kpis.dashboard.dashboard", Perm.VIEW_DASHBOARD, lambda s, a: kpis.dashboard(s, actor=a, filters=kpis.Filters(date(2025, 6, 1)), today=date(2025, 6, 15))),
    ("kpis.dashboard.filter_options", Perm.VIEW_DASHBOARD, lambda s, a: kpis.filter_options(s, actor=a)),
    ("patrons.choices", Perm.VIEW_PATRONS, lambda s, a: patrons.choices(s, actor=a)),
    ("patrons.search", Perm.VIEW_PATRONS, lambda s, a: patrons.search(s, actor=a, by="ils_id", query="PRIV-1")),
    ("patrons.profile", Perm.VIEW_PATRONS, lambda s, a: patrons.profile(s, actor=a, patron_id=patron_id(s, "DIR-1"))),
    ("imports.mapping.save", Perm.IMPORT_DATA, lambda s, a: import_mapping.save(s, actor=a, kind="zones", name="census", mapping={"columns": {"code": "zip"}})),
    ("imports.mapping.find", Perm.IMPORT_DATA, lambda s, a: import_mapping.find(s, actor=a, kind="patrons", name="Koha borrowers")),
    ("imports.mapping.saved", Perm.IMPORT_DATA, lambda s, a: import_mapping.saved(s, actor=a, kind="patrons")),
    ("imports.runner.recent_runs", Perm.IMPORT_DATA, lambda s, a: import_runner.recent_runs(s, actor=a)),
]


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
