"""Every page and every crmcore function, for every role: allowed exactly when the role has the permission.

- pages: a role reaches a page iff it has the page's permission; switching to a forbidden page does not
  render it (app.py never registers it for that role);
- functions: every crmcore function that takes an `actor` has a row in tests/test_permissions.py CASES
  (session-level) or in DB_CASES below (functions over the whole Database: backup, retention);
- the viewer sees no patron name, e-mail or phone anywhere, downloads included, even right after an
  admin filled the caches, on the demo library;
- the audit log is append-only: nothing in crmcore updates or deletes its rows.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from sqlalchemy import select

import crmcore
import ui
from crmcore import imports
from crmcore.admin import backup, restore
from crmcore.admin.permissions import Perm, PermissionDenied, Role, allowed
from crmcore.campaigns import drafts
from crmcore.insights import refresh as insights_refresh
from crmcore.journeys import definitions as journey_definitions, editing as journey_editing
from crmcore.library import patrons
from crmcore.models import Patron
from crmcore.privacy import retention
from tests.campaign_fixtures import case_campaign, with_temp_mail
from tests.test_permissions import CASES

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"

def new_case_campaign(db) -> tuple[int, int]:
    with db.write() as session:
        return case_campaign(session)


# Functions over a Database rather than a session: (label, permission, call(db, actor, tmp_path)).
DB_CASES = [
    ("admin.backup.create_backup", Perm.BACKUP, lambda db, a, tmp: backup.create_backup(db, actor=a, path=tmp / "b")),
    ("admin.backup.list_backups", Perm.BACKUP, lambda db, a, tmp: backup.list_backups(actor=a)),
    ("admin.backup.backup_file", Perm.BACKUP, lambda db, a, tmp: backup.backup_file(actor=a, name=backup.create_backup(db, actor=None).name)),
    ("admin.backup.health", Perm.BACKUP, lambda db, a, tmp: backup.health(actor=a)),
    ("admin.restore.restore", Perm.BACKUP, lambda db, a, tmp: restore.restore(db, actor=a, path=backup.create_backup(db, actor=None, path=tmp / "r"))),
    ("imports.choose_mapping", Perm.IMPORT_DATA, lambda db, a, tmp: imports.choose_mapping(db, actor=a, kind="patrons", path=SAMPLES / "koha_borrowers.csv")),
    ("imports.runner.run_import", Perm.IMPORT_DATA, lambda db, a, tmp: imports.run_import(
        db, actor=a, kind="zones", path=SAMPLES / "zones.csv", dry_run=True,
        mapping={"columns": {"code": "zip", "name": "name", "population": "population"}})),
    ("privacy.retention.run", Perm.MANAGE_SETTINGS, lambda db, a, tmp: retention.run(db, actor=a)),
    ("library.patrons.search_shown", Perm.VIEW_PATRONS, lambda db, a, tmp: patrons.search_shown(db, actor=a, by="ils_id", query="PRIV-1")),
    ("insights.refresh.run", Perm.MANAGE_SETTINGS, lambda db, a, tmp: insights_refresh.run(db, actor=a)),
    ("campaigns.drafts.preview", Perm.COMPOSE_CAMPAIGNS, lambda db, a, tmp: with_temp_mail(lambda: drafts.preview(db, actor=a, campaign_id=(c := new_case_campaign(db))[0], patron_id=c[1]))),
    ("journeys.editing.preview", Perm.MANAGE_SEGMENTS, lambda db, a, tmp: with_temp_mail(lambda: journey_editing.preview(
        db, actor=a, step=journey_definitions.template("welcome")["steps"][0], patron_id=new_case_campaign(db)[1]))),
    ("journeys.editing.send_test", Perm.MANAGE_SEGMENTS, lambda db, a, tmp: with_temp_mail(lambda: journey_editing.send_test(
        db, actor=a, step=journey_definitions.template("welcome")["steps"][0], patron_id=new_case_campaign(db)[1]))),
    ("campaigns.drafts.send_test", Perm.COMPOSE_CAMPAIGNS, lambda db, a, tmp: with_temp_mail(lambda: drafts.send_test(db, actor=a, campaign_id=(c := new_case_campaign(db))[0], patron_id=c[1]))),
]

# Functions that take an actor only to name who acted, not to authorise anything. (downloads.offer keeps a file
# for the staff member it names: what goes in was authorised where it was made.)
# sessions.start: the actor is the staff member who has just signed in. auth.change_own_password: every role
# changes its own password, proven by the current one (tests/test_sessions.py). auth.own_phone / set_own_phone: every
# role reads and sets its own phone number for test texts, and nobody else's (tests/test_text_test_send.py).
# changes its own password, proven by the current one (tests/test_sessions.py). auth.own_phone / set_own_phone:
# every role reads and sets its own mobile number (where its test texts go), nobody else's.
NOT_AUTHORISING = {"privacy.audit.record", "admin.permissions.require", "privacy.downloads.offer", "admin.sessions.start", "admin.auth.change_own_password",
                   "admin.auth.own_phone", "admin.auth.set_own_phone"}


# --- the public surface without an actor -----------------------------------------------------------

# Left out of the enumeration below, with why.
SKIPPED_MODULES = {
    "crmcore.migrations": "Alembic revisions: run by `migrate`, never called as functions",
    "crmcore.demo": "fills an empty database with fictitious people; run by the CLI operator (`demo`), never by a page",
}
# crmcore.cli's cmd_* handlers are skipped too: each is one CLI command run by the operator at the server's
# shell, who holds the database file and the configuration already (the account commands act as auth.CLI_ACTOR).

PURE = "pure function over its arguments: no data access"
PARSE = "parses or checks one value or file the caller already holds: no data access"
WORKER = "the worker's job (worker.JOBS or its send loop): runs with no staff member"
PLUMBING = "database plumbing (engine, migrations, bulk writes): no records returned"
CONFIG = "reads deployment configuration or run-time settings only"
AGGREGATE = "takes a Session and returns only aggregate counts; kpis.dashboard.dashboard checks the actor and suppresses small cells before a page shows them"
IMPORTER = "the importers' machinery: rows of a file the operator supplied, run under imports.run_import (which checks the actor) or the CLI"
INBOUND = "the inbound mail listener: answers mail providers and patrons, no staff member"
TOKEN_ROUTE = "public route: the patron's signed token authorises, and it reaches only that patron's own record"
SIGNIN = "the sign-in gate: a session, cookie or ticket the browser holds reaches only its own staff member"
FILES = "makes files and folders owner-only: no records"
SIGNUP_FORM = "the public sign-up form (no sign-in): a signed form token, the honeypot and the rate limit guard it; it keeps one unconfirmed address, shows none"
SIGNUP_LINK = "the sign-up's confirmation link: its signed token authorises, and it reaches only that one sign-up"
UPLOAD = "the Imports page's uploaded file, kept for imports.run_import (which checks the actor): no records returned"
HELPER = "a helper of its package's service functions, called after their require(); returns no name, address or note"

# Every public crmcore function that takes no `actor`, and why it needs none. A new one fails
# test_every_public_function_without_an_actor_is_listed: give it `actor` and require(), make it private,
# or add it here with an honest reason.
NO_ACTOR: dict[str, str] = {
    # Text messages (crmcore/texts)
    "campaigns.templates.render_text": PURE,
    "texts.delivery.report": "public route: Kannel's delivery report, authorised by the shared secret CRM_SMS_SECRET; records delivered or failed, returns words only",
    "texts.do_not_text.add": HELPER,
    "texts.do_not_text.blocked": HELPER,
    "texts.gateway.outbox_directory": CONFIG,
    "texts.gateway.sendsms_params": PURE,
    "texts.gateway.transport": CONFIG,
    "texts.keywords.keyword": PURE,
    "texts.keywords.receive": "public route: a text a phone sent in, through Kannel with the shared secret; changes only that number's own text consent",
    "texts.phones.normalise": PARSE,
    "texts.phones.phone_hash": PURE,
    "texts.phones.region": CONFIG,
    "texts.phones.suffix": PURE,
    "texts.quiet_hours.is_quiet": PURE,
    "texts.quiet_hours.opens_at": PURE,
    "texts.quiet_hours.window": CONFIG,
    "texts.segments.is_gsm7": PURE,
    "texts.segments.length": PURE,
    "texts.sending.send_batch": WORKER,
    "texts.sending.send_pending": WORKER,
    "texts.wording.campaign_text": PURE,
    "texts.wording.check_length": HELPER,
    "texts.wording.help_reply": CONFIG,
    "texts.wording.start_reply": CONFIG,
    "texts.wording.stop_reply": CONFIG,
    "web.routes.sms_dlr": "public route (no sign-in): Kannel's delivery reports, refused without the shared secret CRM_SMS_SECRET",
    "web.routes.sms_inbound": "public route (no sign-in): texts sent in through Kannel, refused without the shared secret CRM_SMS_SECRET",
    "admin.backup.check_database": "checks a database file's integrity and schema (restore, the daily check): no records returned",
    "admin.restore.pg_archive_problems": PARSE,
    "admin.schemas.deferrable_indexes": PLUMBING,
    "admin.schemas.differences": PURE,
    "admin.schemas.pg_schema": PLUMBING,
    "admin.schemas.pg_scratch": PLUMBING,
    "admin.schemas.sqlite_schema": PLUMBING,
    "admin.sessions.cookie_value": PURE,
    "admin.sessions.current": SIGNIN,
    "admin.sessions.end": SIGNIN,
    "admin.sessions.end_everyone": "called by restore.restore (which checks the actor): ends every session, returns nothing",
    "admin.sessions.resume": SIGNIN,
    "admin.sessions.take_ticket": SIGNIN,
    "admin.sessions.token_from_cookie": PURE,
    "admin.settings.version": CONFIG,
    "campaigns.outbox.writable": WORKER,
    "db.is_busy": PURE,
    "files.private_dir": FILES,
    "files.private_file": FILES,
    "files.write_private": FILES,
    "imports.reading.file_encoding": PARSE,
    "imports.reading.too_long_reason": PARSE,
    "imports.uploads.directory": CONFIG,
    "imports.uploads.discard": UPLOAD,
    "imports.uploads.remove_stale": UPLOAD,
    "imports.uploads.save": UPLOAD,
    "models.admin.new_epoch": PURE,
    "web.routes.session_cookie": "public route: the one-use ticket the sign-in page just made authorises; sets that session's cookie only",
    # admin
    "admin.auth.actor_for": "turns a StaffUser row already loaded by sign-in into an Actor: no data access",
    "admin.auth.check_password_strength": PURE,
    "admin.auth.ensure_admin": "`init` on first start: creates the `admin` account when there is no account at all; returns its generated password to show once",
    "admin.auth.hash_password": PURE,
    "admin.auth.sign_in": "public: the password authorises; returns only the signed-in staff member's own Actor",
    "admin.backup.backup_dir": CONFIG,
    "admin.restore.check_revision": PARSE,
    "admin.restore.check_sqlite_file": PARSE,
    "admin.backup.daily_backup": WORKER,
    "admin.backup.prune": WORKER,
    "admin.backup.save_upload": "stores a file uploaded on the Backup page for restore.restore (which checks the actor); returns its path only",
    "admin.config.database_url": CONFIG,
    "admin.config.get": CONFIG,
    "admin.permissions.allowed": PURE,
    "admin.settings.get": CONFIG,
    "admin.settings.get_all": CONFIG,
    "admin.settings.library_zone": CONFIG,
    "admin.settings.branding": CONFIG,
    "bulk.indexes_deferred": PLUMBING,
    "bulk.restore_indexes": PLUMBING,
    # campaigns: addresses, MIME, the do-not-mail list
    "campaigns.addresses.bounce_address": PURE,
    "campaigns.addresses.inbound_domain": CONFIG,
    "campaigns.addresses.mail_domain": CONFIG,
    "campaigns.addresses.mail_from": CONFIG,
    "campaigns.addresses.token_in": PURE,
    "campaigns.addresses.unsubscribe_address": PURE,
    "campaigns.do_not_mail.email_hash": PURE,
    "campaigns.do_not_mail.is_suppressed": "answers yes/no for an address the caller already holds (sending, imports)",
    "campaigns.do_not_mail.prepare": PLUMBING,
    "campaigns.do_not_mail.suppress": "adds a hash of an address the caller holds (erasure, hard bounces); returns nothing",
    "campaigns.do_not_mail.suppressed": "which of the addresses the caller passed are on the list: reveals none it did not pass",
    "campaigns.mime.build": PURE,
    "campaigns.mime.header": PURE,
    "campaigns.mime.quoted_printable": PURE,
    # campaigns: drafts, segments, templates, sending, outbox
    "campaigns.drafts.get": "one campaign row (its templates and state), no patron data; drafts' and results' service functions call it after require()",
    "campaigns.drafts.in_holdout": PURE,
    "campaigns.segments.ensure_presets": "inserts the preset segments (rules only, no patron data) if missing, when the Segments page opens",
    "campaigns.segments.presets_missing": "whether a preset segment is missing (rules only, no patron data): a yes or no",
    "campaigns.templates.check": PURE,
    "campaigns.templates.contexts": "merge fields (names, preference links), only through sending.contexts_for: the worker's send loop, and drafts.preview after it checks the actor and audits",
    "campaigns.templates.render": PURE,
    "campaigns.templates.insert_field": PURE,
    "campaigns.templates.preview_address": PURE,
    "campaigns.sending.build": PURE,
    "campaigns.sending.claim": WORKER,
    "campaigns.sending.contexts_for": WORKER + "; also drafts.preview, after it checks the actor and audits; holds names, addresses and preference links — TODO-lead: take the actor or go private",
    "campaigns.sending.message_id": PURE,
    "campaigns.sending.public_url": CONFIG,
    "campaigns.sending.recover": WORKER,
    "campaigns.sending.send_batch": WORKER,
    "campaigns.sending.send_pending": WORKER,
    "campaigns.sending.send_test_message": "called only by drafts.send_test, which checks the actor; sends to the staff member's own address",
    "texts.sending.send_test_text": "called only by drafts.send_test, which checks the actor; texts the staff member's own number",
    "campaigns.sending.transport": CONFIG,
    "campaigns.sending.update_campaigns": WORKER,
    "campaigns.sending.worker_id": PURE,
    "campaigns.outbox.directory": CONFIG,
    "campaigns.outbox.write": "the outbox transport of the worker's send loop: writes one message, returns its path",
    # campaigns: tokens and what patrons reach with them (no staff code may make one: see the test below)
    "campaigns.preference_tokens.key_file": CONFIG,
    "campaigns.preference_tokens.secret_key": "the signing key of patrons' tokens, for unsubscribe's signatures; pages and ui never reach it (tested below)",
    "campaigns.preference_tokens.make": "a patron's preference token, for the worker's messages (through maker); pages and ui never call it (tested below)",
    "campaigns.preference_tokens.maker": WORKER + ": each message's preference link; pages and ui never call it (tested below)",
    "campaigns.preference_tokens.read": "public route: checks a token's signature and age, returns the patron id it names",
    "campaigns.preferences.view": TOKEN_ROUTE,
    "campaigns.preferences.save": TOKEN_ROUTE,
    "campaigns.preferences.unsubscribe_all": TOKEN_ROUTE,
    "campaigns.preferences.withdraw_everything": "the patron's own 'no' to everything, for the preference page (by token) and the inbound listener (a complaint); returns a count",
    "campaigns.unsubscribe.maker": WORKER + ": each message's unsubscribe token; pages and ui never call it (tested below)",
    "campaigns.unsubscribe.token": "one message's unsubscribe token, as the worker makes them; pages and ui never call it (tested below)",
    "campaigns.unsubscribe.read": "public route: checks a token's signature, returns the message id it names",
    "campaigns.unsubscribe.subject": TOKEN_ROUTE + " (the message's channel and topic, no name or address)",
    "campaigns.unsubscribe.withdraw": TOKEN_ROUTE,
    "campaigns.inbound.listen": INBOUND,
    "campaigns.inbound.process": INBOUND,
    "campaigns.inbound.start": INBOUND,
    # campaigns: results (statistics) and the rule language
    "campaigns.results.newcombe": PURE,
    "campaigns.results.relative_lift": PURE,
    "campaigns.results.sent_on": PURE,
    "campaigns.results.wilson": PURE,
    "campaigns.rules.compiler.compile_rules": "rules to a SQL expression: builds a query, runs none",
    "campaigns.rules.compiler.lifecycle_clause": "rules to a SQL expression: builds a query, runs none",
    "campaigns.rules.compiler.months_back": PURE,
    "campaigns.rules.compiler.patron_ids_select": "rules to a SQL expression: builds a query, runs none (segments.count/sample run it after require())",
    "campaigns.rules.language.leaves": PURE,
    "campaigns.rules.language.validate": PURE,
    **dict.fromkeys(
        [f"campaigns.rules.tree.{n}" for n in ("append", "children", "default_leaf", "describe", "group_kind", "is_group", "items_path",
                                               "mode_of", "node_at", "normalize", "remove", "replace", "set_mode", "with_mode")],
        PURE + " (the rule builder's tree edits)",
    ),
    # database, exports, validation
    "db.alembic_config": PLUMBING,
    "db.current_revision": PLUMBING,
    "db.describe": PURE,
    "db.head_revision": PLUMBING,
    "db.is_sqlite": PURE,
    "db.make_engine": PLUMBING,
    "db.migrate": PLUMBING,
    "db.open_database": PLUMBING,
    "db.shared": PLUMBING,
    "exports.neutralise": PURE,
    "labels.column": PURE,
    "labels.frame": PURE,
    "labels.plural": PURE,
    "labels.value": PURE,
    "exports.safe_frame": PURE,
    "exports.to_csv": PURE,
    "exports.to_xlsx": PURE,
    "validation.email": PURE,
    "validation.phone": PURE,
    "models.base.utcnow": PURE,
    "cli.build_parser": PURE,
    "cli.main": "the CLI's entry point: the operator at the server's shell",
    # imports
    "imports.inspect": "the first rows of a file the caller uploaded itself, to map its columns",
    "imports.first_rows": "the first rows of the mapped columns of a file the caller uploaded itself",
    "imports.activity_rows.activity_kind": PARSE,
    "imports.attendance.split_labels": PARSE,
    "imports.batch.digest": PURE,
    "imports.batch.digests": PURE,
    "imports.batch.signed64": PURE,
    "imports.batches.batches": IMPORTER,
    "imports.batches.prepared": IMPORTER,
    "imports.cleaning.attribute": PARSE,
    "imports.cleaning.column_parser": PURE,
    "imports.cleaning.parser": PURE,
    "imports.koha_sample.row": "fictitious sample rows for tests and benchmarks",
    "imports.koha_sample.write": "writes a fictitious sample file for tests and benchmarks",
    "imports.mapping.check_kind": PARSE,
    "imports.mapping.clean_mapping": PARSE,
    "imports.mapping.fit_preset": PURE,
    "imports.mapping.mapped_columns": PURE,
    "imports.mapping.mapping_notes": PURE,
    "imports.mapping.preset": PURE,
    "imports.mapping.suggest_preset": PURE,
    "imports.patrons.notice_channel": PARSE,
    "imports.patrons.parse_stated": PARSE,
    "imports.patrons.stated_text": PURE,
    "imports.reading.check_text": PARSE,
    "imports.reading.check_size": PARSE,
    "imports.reading.detect_delimiter": PARSE,
    "imports.reading.detect_encoding": PARSE,
    "imports.reading.max_bytes": CONFIG,
    "imports.reading.open_text": PARSE,
    "imports.reading.preview": PARSE,
    "imports.reading.rows": IMPORTER,
    "imports.reading.sha256": PARSE,
    "imports.reading.sniff": PARSE,
    **dict.fromkeys(
        [f"imports.values.{n}" for n in ("bool_column", "count_column", "date_column", "email_column", "is_missing", "last_year", "parse_bool", "parse_date",
                                         "parse_email", "parse_int", "parse_month", "parse_phone", "phone_column", "text_column", "year_column", "year_month")],
        PARSE,
    ),
    "imports.zones.features_by_code": "reads a zone boundary file the caller supplied (no personal data)",
    "imports.zones.geojson_properties": "reads a zone boundary file the caller supplied (no personal data)",
    # kpis
    "kpis.dashboard.dashboard_data": "the suppressed dashboard behind kpis.dashboard.dashboard (which checks the actor), for its cache and the benchmark",
    "kpis.dashboard.partition": PURE,
    "kpis.dashboard.zone_shapes": "the zone boundaries stored by the zones import: no personal data",
    **dict.fromkeys(
        [f"kpis.figures.{n}" for n in ("activity_by_month", "age_band_by_branch", "branch_comparison", "cohort_retention", "earliest_month", "latest_month",
                                       "lifecycle_counts", "lifecycle_flows", "new_registrations", "outreach_by_month", "penetration_by_zone",
                                       "population", "registrations_by_month")],
        AGGREGATE,
    ),
    **dict.fromkeys(
        [f"kpis.figures.{n}" for n in ("active_patrons", "activity_per_capita", "activity_total", "at_risk_patrons", "by_month", "lapsed_patrons",
                                       "outreach_interactions", "program_attendance", "registered_patrons")],
        PURE + " (a figure from counts already computed)",
    ),
    **dict.fromkeys(
        [f"kpis.figures.{n}" for n in ("first_data_month", "last_data_month", "first_outreach_month")]
        + [f"kpis.programs.{n}" for n in ("first_program_month", "last_program_month", "program_totals", "programs_by_branch", "programs_by_label",
                                          "programs_by_month", "programs_by_zone")]
        + ["kpis.lifetime.lifetime_bands"],
        AGGREGATE,
    ),
    "kpis.incremental.catch_up": WORKER,
    "kpis.incremental.few_enough": "a count of patrons against a share, for the refresh after an import: returns a yes or no",
    "kpis.incremental.patrons_changing": "keeps the aggregate summary tables in step around a change its caller is authorised for: returns nothing",
    "kpis.summaries.age_band": PURE,
    "kpis.summaries.forget_window": "marks the aggregate summaries for the worker's full rebuild: returns nothing",
    "kpis.summaries.patrons": "patrons' ids, home branch, zone, type, age band and dates for the summaries (no names or addresses)",
    "kpis.summaries.stored_window": "the months the aggregate summaries cover",
    "kpis.summaries.window": "the months the aggregate summaries should cover",
    "kpis.summaries.classify": PURE,
    "kpis.summaries.compute_summaries": "builds the dashboard's aggregate summary tables (counts only) for refresh_summaries",
    "kpis.summaries.month_end": PURE,
    "kpis.summaries.month_index": PURE,
    "kpis.summaries.month_of": PURE,
    "kpis.summaries.refresh_summaries": "rewrites the aggregate summary tables after an import or a rollup rebuild: returns nothing",
    # library
    "library.activity.first_of_month": PURE,
    "library.categories.not_a_term": PURE,
    "library.categories.vocabulary": IMPORTER + "; the item-category terms, no patron data",
    "library.activity.last_month_column": PURE,
    "library.activity.add_events": IMPORTER + "; adds an import's new counts to the rollups, returns nothing",
    "library.activity.rebuild_rollups": IMPORTER + "; rewrites monthly counts, returns nothing",
    "library.activity.widen_last_months": IMPORTER + "; returns nothing",
    "library.consent.applies": PURE,
    "library.consent.check": PURE,
    "library.consent.current": "one patron's consent flags by id (no name, address or token), for patrons.profile (checked, audited) and the patron's own page",
    "library.consent.has_consent": "yes/no for one patron id, channel and topic: for sending and the public routes",
    "library.consent.history": "one patron's consent records by id (no name, address or token), for patrons.profile and rights.access_export (both checked)",
    "library.consent.patron_withdraws": "the patron's own 'no' (preference page, unsubscribe, complaint), reached by their token: returns a flag",
    "library.consent.record": "the one way consent changes: callers (imports, the patron's page, patrons.record_patron_request) authorise; returns the record",
    "library.patrons.full_name": PURE,
    "library.patrons.mask_email": PURE,
    "library.patrons.mask_name": PURE,
    "library.patrons.mask_phone": PURE,
    # outreach
    "outreach.calendar.feed": "public route: the feed's secret token authorises; built as its own staff member, checked (disabled or not allowed: nothing)",
    "outreach.calendar.feed_url": "the address for a feed token the caller already holds: public URL setting + path",
    "outreach.cleaning.full_name": PURE,
    "outreach.cleaning.normal_name": PURE,
    "outreach.cleaning.text": PURE,
    "outreach.cleaning.website": PURE,
    "outreach.duplicates.name_key": PURE,
    "outreach.interactions.as_utc": PURE,
    "outreach.interactions.export_frame": PURE + " (rows from search_interactions, which checks the actor)",
    "outreach.tags.replace_tags": HELPER,
    "outreach.tags.tag_ids": HELPER,
    "outreach.tags.tag_name": PURE,
    "outreach.tags.tags_of": HELPER,
    "outreach.tasks.check_assignee": HELPER + " (checks an assignee id, returns it)",
    "outreach.tasks.overdue_count": "takes a Session and returns one count, for outreach_kpis (which checks the actor)",
    # privacy
    "privacy.downloads.take": "public route: the one-use link's secret token authorises, once, before it expires (offer() names who it was made for)",
    "privacy.retention.add_months": PURE,
    "privacy.retention.cutoff": CONFIG,
    "privacy.retention.daily": WORKER,
    "privacy.retention.preview": "what retention would delete: a date and a count, for the CLI operator",
    "privacy.rights.to_html": PURE + " (an export access_export made after checking the actor)",
    "privacy.rights.to_json": PURE + " (an export access_export made after checking the actor)",
    **dict.fromkeys(
        [f"privacy.small_cells.{n}" for n in ("apply", "change", "complementary", "count", "is_small", "label", "numeric", "primary", "remainder",
                                              "suppress_column", "suppress_grid")],
        PURE + " (small-cell suppression)",
    ),
    # the public routes and the worker
    "web.pages.page": PURE,
    # requests from patrons and partners (crmcore.inbox)
    "campaigns.addresses.help_address": CONFIG,
    "campaigns.addresses.is_help_address": CONFIG,
    "inbox.references.make": "a request's reference from its number and the signing key: no data access",
    "inbox.references.found_in": "checks reference-like text the caller holds against the signing key: no data access",
    "inbox.topics.public_topics": "the public request form's topic names: no personal data",
    "inbox.topics.target_hours": HELPER,
    "inbox.tickets.open_request": "opens a request for the inbound listener, the public form or tickets.log_request (which checks the actor); returns the new request only",
    "inbox.tickets.add_incoming": INBOUND,
    "inbox.tickets.help_sender": CONFIG,
    "inbox.tickets.for_access_export": "a helper of privacy.rights.access_export, called after its require(PRIVACY_REQUESTS)",
    "inbox.tickets.erase_patron": "a helper of privacy.rights.erase, called after its require(PRIVACY_REQUESTS): deletes, returns a count",
    "inbox.tickets.delete_expired": WORKER,
    "inbox.incoming.html_text": PURE,
    "inbox.incoming.read": PARSE,
    "inbox.incoming.receive": INBOUND,
    "inbox.form.make_token": "public route: signs one showing of the request form, no data access",
    "inbox.form.submit": "public route (no sign-in): the request form's signed token, honeypot and rate limits; opens a request, returns its reference only",
    "web.pages.request_form": PURE,
    "web.public_forms.request_page": "public route: the request form with the topics' names, no personal data",
    "web.public_forms.request_send": "public route (no sign-in): calls inbox.form.submit",
    "web.pages.shell": PURE,
    "web.pages.escaped": "reads the translation catalogues in the repository: no records",
    "web.pages.language_field": PURE,
    "web.context.db": "the process's one database, for the public routes (each authorises by its token or secret)",
    "web.context.plain": PURE,
    "web.context.language": "reads the request's ?lang= and Accept-Language: no records",
    "web.context.footer": "the library's name and postal address, which every message shows: no patron data",
    "web.context.client": "the request's client address, for rate limits: no records",
    "web.context.posted": PARSE,
    "web.context.form": PARSE,
    "web.routes.calendar_feed": "public route (no sign-in): calls outreach.calendar.feed, which the feed's token authorises",
    "web.routes.download": "public route (no sign-in): calls privacy.downloads.take, which the link's token authorises",
    "web.routes.health": "public route: says whether the database answers, no data",
    "web.routes.logo": "public route: the library's logo, which every message shows; no patron data",
    "web.routes.routes": PURE,
    "web.routes.unsubscribe_now": "public route (no sign-in): the message's unsubscribe token authorises",
    "web.routes.unsubscribe_page": "public route (no sign-in): the message's unsubscribe token authorises",
    # surveys
    "surveys.definitions.get": HELPER + " (a survey's definition: questions, no answers)",
    "surveys.followups.assignee": HELPER + " (a staff id for a new follow-up task)",
    "surveys.followups.needs_follow_up": PURE,
    "surveys.followups.open_or_update": "called by surveys.responses.answer, which the patron's survey token authorises: makes the follow-up task",
    "surveys.qr.svg": PURE,
    "surveys.questions.checked": PARSE,
    "surveys.questions.contact_of": PURE,
    "surveys.questions.described": PURE,
    "surveys.questions.nps_of": PURE,
    "surveys.questions.read_answers": PARSE,
    "surveys.responses.answer": TOKEN_ROUTE + " (a survey link: that patron's own answers, or a new anonymous one)",
    "surveys.responses.form": TOKEN_ROUTE + " (a survey link: that patron's own answers)",
    "surveys.responses.stage": HELPER + " (one patron's lifecycle stage, for the answer being recorded)",
    "surveys.responses.for_patron": "called by privacy.rights.access_export, which checks the actor and audits",
    "surveys.responses.erase_patron": "called by privacy.rights.erase, which checks the actor and audits",
    "surveys.responses.purge_texts": WORKER + " (retention.run)",
    "surveys.results.interval": PURE,
    **dict.fromkeys([f"surveys.tokens.{n}" for n in ("anonymous", "check_form", "form_token", "link_maker", "maker", "read")], PURE + " (signing and reading survey links)"),
    "campaigns.sending.with_survey_links": HELPER + " (fills in {{ survey_link }} for a campaign or journey step; its caller checked the actor)",
    "campaigns.templates.uses_survey_link": PURE,
    "web.public_forms.survey_page": "public route (no sign-in): the survey link's token authorises",
    "web.public_forms.survey_answer": "public route (no sign-in): the survey link's token and the page's form token authorise",
    "surveys.responses.patron_language": "a public route's read: the language of the patron the survey link's signed token names, nothing else",
    "web.survey_form.page": PURE,
    "worker.chosen_jobs": "pure: the worker command's --job names checked against worker.JOBS",
    "worker.housekeeping": WORKER,
    "worker.run": WORKER,
    "worker.run_forever": WORKER,
    # journeys
    "campaigns.drafts.at_frequency_cap": HELPER,
    "campaigns.drafts.check_survey": HELPER,
    "journeys.definitions.blank": PURE,
    "journeys.definitions.first_send": PURE,
    "journeys.definitions.send_steps": PURE,
    "journeys.definitions.step_label": PURE,
    "journeys.definitions.template": PURE,
    "journeys.definitions.validate": PARSE,
    "journeys.definitions.with_words": PARSE,
    "journeys.definitions.words_for": PURE,
    "journeys.definitions.words_of": PURE,
    "journeys.editing.get": "one journey row (its name and state), no patron data; editing's service functions call it after require()",
    "journeys.enrolment.enrol": WORKER,
    "journeys.enrolment.plus_days": PURE,
    "journeys.enrolment.trigger_clause": HELPER,
    "journeys.evaluation.after_imports": WORKER,
    "journeys.evaluation.evaluate": WORKER,
    "journeys.evaluation.evaluate_journey": WORKER,
    "journeys.evaluation.latest_version": HELPER,
    "journeys.steps.advance": WORKER,
    "journeys.steps.exits": WORKER,
    "journeys.steps.step_campaigns": WORKER,
    "journeys.steps.hold": "called by editing.pause, which checks the actor, and by the worker's evaluation when it pauses a journey",
    "journeys.steps.release": "called by editing.resume, which checks the actor",
    "journeys.steps.held": "called by editing.held_messages, which checks the actor: a count, no patron data",
    "journeys.definitions.subject_of": PURE,
    # Languages (hL): the catalogues are files of the repository (no records); the codes parse one value.
    "languages.catalogues.N_": PURE,
    "languages.catalogues.gettext": "reads the translation catalogues in the repository: no records",
    "languages.catalogues.choose": "reads which catalogues the repository holds: no records",
    "languages.catalogues.names": "reads which catalogues the repository holds: no records",
    "languages.catalogues.negotiate": PARSE,
    "languages.catalogues.for_page": "reads which catalogues the repository holds: no records",
    "languages.catalogues.said": "reads the translation catalogues in the repository: no records",
    "languages.codes.name": PURE,
    "languages.codes.normalise": PARSE,
    "languages.variants.for_owners": "the send loop's and the preview's read of a message's words per language (after require()): no names or addresses",
    "languages.variants.pick": PURE,
    # Peers, personas and lapse risk.
    "imports.library_survey.check_year": PARSE,
    "imports.library_survey.year_from_name": PARSE,
    "insights.features.compute": "a helper of the weekly job: numbers per patron id from the rollups, never shown to staff",
    "insights.features.read": "a helper of the weekly job: the rollups as numbers per patron id, never shown to staff",
    "insights.features.last_complete_month": PURE,
    "insights.lapse.coefficients": PURE,
    "insights.lapse.fit": "a helper of the weekly job (insights.refresh): fits a model, returns no patron",
    "insights.lapse.score": PURE,
    "insights.lapse.sample_every": "a helper of insights.lapse.fit: a count of patrons made a sampling step, no personal data",
    "insights.personas.cluster": PURE,
    "insights.personas.describe": PURE,
    "insights.personas.merge_small": PURE,
    "insights.refresh.recompute": WORKER,
    "insights.refresh.weekly": WORKER,
    "insights.reports.last_run": HELPER,
    "peers.choice.band_of": PURE,
    "peers.choice.distances": PURE,
    "peers.choice.peers": PURE,
    "peers.choice.standardised": PURE,
    "peers.comparison.per_capita": PURE,
    "peers.comparison.standing": PURE,
    "peers.survey.own_key": CONFIG,
    # New materials you may like (recommendations)
    "imports.catalogue.web_address": PARSE,
    "campaigns.sending.recommendations_for": WORKER + "; also the preview, inside drafts.preview after its require(); categories and new items, no names",
    "campaigns.preferences.topic_choices": "the vocabulary's genre names for the public preference page: no patron data",
    "campaigns.preferences.choose_topics": TOKEN_ROUTE,
    "campaigns.preferences.clear_interests": TOKEN_ROUTE,
    "campaigns.preferences.stop_history": TOKEN_ROUTE,
    "recommendations.block.uses_block": PURE,
    "recommendations.block.feed": "the catalogue feed (new items in the library's stock): no patron data",
    "recommendations.block.blocks": WORKER + "; also the preview (drafts.preview, after its require()); new items per patron id, no names",
    "recommendations.interests.chunks": PURE,
    "recommendations.interests.spelling": "reads the item-category vocabulary (no patron data) to spell a stored category as its term",
    "recommendations.interests.borrowed": HELPER + " (categories per patron id, never titles: the block, results after require(), the patron's own page)",
    "recommendations.interests.stated": HELPER + " (categories per patron id: the block, results after require(), the patron's own page)",
    "recommendations.interests.top_categories": HELPER + " (categories per patron id: the block, results after require(), the patron's own page)",
    "recommendations.interests.choose": "writes the patron's own topics for the preference page only (campaigns.preferences, by token)",
    "recommendations.interests.clear": "clears the patron's own interests for the preference page only (campaigns.preferences, by token)",
    "recommendations.interests.stop_history": "the patron's own history opt-out for the preference page only (campaigns.preferences, by token)",
    # sign-up forms for prospects (crmcore.signups): the public form, its confirmation link, the worker, the import
    "campaigns.sending.prospect_contexts": WORKER,
    "signups.confirmation.build": SIGNUP_FORM,
    "signups.confirmation.link": SIGNUP_FORM,
    "signups.confirmation.send": SIGNUP_FORM,
    "signups.form.submit": SIGNUP_FORM,
    "signups.prospects.audience": "builds the SQL of a campaign's prospect audience, run by drafts.plan/launch (which check the actor)",
    "signups.prospects.branch_choices": "the public form's branch list: codes and names, no personal data",
    "signups.prospects.clean": PARSE,
    "signups.prospects.confirm": SIGNUP_LINK,
    "signups.prospects.forget_patron": "called by privacy.rights.erase (which checks the actor): deletes, returns a count",
    "signups.prospects.link_patrons": IMPORTER,
    "signups.prospects.linked": "called by privacy.rights.access_export (which checks the actor and audits): that patron's own sign-ups",
    "signups.prospects.named": SIGNUP_LINK,
    "signups.prospects.purge": WORKER,
    "signups.prospects.store": SIGNUP_FORM,
    "signups.prospects.topic_words": PURE,
    "signups.prospects.withdraw_everything": INBOUND,
    "signups.prospects.withdraw": "called by campaigns.unsubscribe.withdraw: the message's unsubscribe token authorises, for its own prospect",
    "signups.snippet.fields_html": PURE,
    "signups.spam.admit": SIGNUP_FORM,
    "signups.spam.client_hash": PURE,
    "signups.spam.forget_old": WORKER,
    "signups.tokens.check_form_token": PARSE,
    "signups.tokens.confirm_token": PURE,
    "signups.tokens.form_token": PURE,
    "signups.tokens.matches": PURE,
    "signups.tokens.read_confirm_token": PARSE,
    "web.public_forms.signup_confirm": SIGNUP_LINK,
    "web.public_forms.signup_page": "public route: the empty sign-up form with a fresh form token; no data",
    "web.public_forms.signup_post": SIGNUP_FORM,
}


# --- pages ---------------------------------------------------------------------------------------


def page_text(at) -> str:
    """Everything the page put on screen, as text: every element's content, dataframe cells included."""
    parts = []

    def walk(node):
        if getattr(node, "type", None) == "arrow_data_frame":
            parts.append(node.value.to_csv())
        elif getattr(node, "proto", None) is not None:
            parts.append(text_format.MessageToString(node.proto, as_utf8=True))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def own_titles(at) -> set[str]:
    return {t.value for t in at.title} | {h.value for h in at.header}


@pytest.fixture
def rendered_as_admin(app):
    """The titles each page shows to an admin (who may see them all): what marks the page as reached."""
    cache: dict[str, set[str]] = {}

    def titles(path: str) -> set[str]:
        if path not in cache:
            at = app(role="admin", page=path).run()
            assert not at.exception, [e.value for e in at.exception]
            cache[path] = own_titles(at)
        return cache[path]

    return titles


@pytest.mark.parametrize("spec", ui.PAGES, ids=[s.path for s in ui.PAGES])
def test_each_role_reaches_a_page_iff_it_has_the_permission(app, spec, rendered_as_admin):
    marker = rendered_as_admin(spec.path)
    assert marker, f"{spec.path} shows no title: nothing marks it as reached"
    for role in Role:
        at = app(role=role.value, page=spec.path).run()
        assert not at.exception, (role, [e.value for e in at.exception])
        shown = own_titles(at)
        if spec.perm is None or allowed(role, spec.perm):
            assert marker <= shown, f"{role} may use {spec.path} but did not reach it"
        else:
            assert not (marker & shown), f"{role} reached {spec.path} without {spec.perm}"


def test_a_visitor_reaches_no_staff_page(app):
    for spec in ui.PAGES:
        at = app(page=spec.path).run()
        assert [b.label for b in at.button] == ["Sign in"], spec.path


# --- functions -----------------------------------------------------------------------------------


def public_functions(*, skipping: bool = True) -> dict[str, inspect.Signature]:
    """Every public (no leading underscore) function defined in a crmcore module, by module.function; with
    `skipping`, not those of SKIPPED_MODULES nor the CLI's cmd_* handlers."""
    found = {}
    for info in pkgutil.walk_packages(crmcore.__path__, "crmcore."):
        if info.name.startswith("crmcore.migrations") or info.name == "crmcore.__main__":
            continue
        if skipping and any(info.name == m or info.name.startswith(m + ".") for m in SKIPPED_MODULES):
            continue
        module = importlib.import_module(info.name)
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or func.__module__ != info.name:
                continue
            if skipping and info.name == "crmcore.cli" and name.startswith("cmd_"):
                continue
            found[f"{info.name.removeprefix('crmcore.')}.{name}"] = inspect.signature(func)
    return found


def actor_functions() -> list[str]:
    """Every public crmcore function (module.function) with an `actor` parameter, defined in crmcore."""
    return sorted(f for f, sig in public_functions(skipping=False).items() if "actor" in sig.parameters)


def no_actor_functions() -> list[str]:
    return sorted(f for f, sig in public_functions().items() if "actor" not in sig.parameters)


def test_every_function_that_takes_an_actor_has_a_permission_case():
    labels = {label.split("(")[0] for label, _, _ in CASES} | {label for label, _, _ in DB_CASES}
    # A row may name a function by its module's last part (imports.patrons.run as patrons.run).
    short = {label.rsplit(".", 2)[-2] + "." + label.rsplit(".", 1)[-1] for label in labels if label.count(".") >= 1}
    missing = [f for f in actor_functions() if f not in NOT_AUTHORISING and f not in labels and ".".join(f.split(".")[-2:]) not in short]
    assert missing == [], "add rows to CASES in tests/test_permissions.py for: " + ", ".join(missing)


def test_every_public_function_without_an_actor_is_listed_with_a_reason():
    unlisted = [f for f in no_actor_functions() if f not in NO_ACTOR]
    assert unlisted == [], "take `actor` and require() it, make it private, or list it in NO_ACTOR with a reason: " + ", ".join(unlisted)


def test_the_no_actor_list_names_only_functions_that_exist_without_an_actor():
    current = set(no_actor_functions())
    stale = sorted(f for f in NO_ACTOR if f not in current)
    assert stale == [], "remove from NO_ACTOR (gone, renamed, made private or given an actor): " + ", ".join(stale)


def test_every_no_actor_reason_says_why():
    vague = sorted(f for f, reason in NO_ACTOR.items() if len(reason.split()) < 4)
    assert vague == []


def test_the_enumeration_sees_functions_with_and_without_an_actor():
    """The two lists above are not vacuous: both kinds are found, in crmcore's own modules only."""
    functions = public_functions()
    assert "library.patrons.search" in functions and "actor" in functions["library.patrons.search"].parameters
    assert "campaigns.preferences.view" in functions and "actor" not in functions["campaigns.preferences.view"].parameters
    assert not any(f.startswith(("migrations.", "demo.")) or f.startswith("cli.cmd_") for f in functions)
    assert not any(f.rsplit(".", 1)[-1].startswith("_") for f in functions)


# Functions without an actor that staff code (pages, ui, app.py) must never call: what makes or signs a
# patron's working token, the worker's jobs (merge fields with names and addresses, sending), the inbound
# listener, unsuppressed figures and the importers' machinery. Each is reached through a checked function.
TOKEN_MAKERS = {"campaigns.preference_tokens.make", "campaigns.preference_tokens.maker", "campaigns.preference_tokens.secret_key",
                "campaigns.unsubscribe.token", "campaigns.unsubscribe.maker"}
# Writes a patron's consent or the do-not-mail list with no actor and no audit entry: staff record a patron's
# request through patrons.record_patron_request, erase through rights.erase.
UNCHECKED_WRITERS = {"library.consent.record", "library.consent.patron_withdraws", "campaigns.preferences.withdraw_everything", "campaigns.do_not_mail.suppress"}
# Return names or addresses with no actor (TODO-lead in NO_ACTOR): the worker's until they take one.
UNCHECKED_READERS = {"campaigns.templates.contexts", "campaigns.sending.contexts_for", "admin.auth.staff_names"}
NOT_FOR_STAFF_CODE = TOKEN_MAKERS | UNCHECKED_WRITERS | UNCHECKED_READERS | {f for f, reason in NO_ACTOR.items() if reason.startswith((WORKER, INBOUND, AGGREGATE, IMPORTER))}


def crmcore_calls(path: Path) -> set[str]:
    """The crmcore functions (module.function, where they are defined) a page or ui module refers to."""
    tree = ast.parse(path.read_text())
    names: dict[str, object] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("crmcore"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                names[alias.asname or alias.name] = getattr(module, alias.name, None) or importlib.import_module(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("crmcore"):
                    names[alias.asname or alias.name.split(".")[0]] = importlib.import_module(alias.asname and alias.name or alias.name.split(".")[0])
    found = set()
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
            target = getattr(names[node.value.id], node.attr, None)
        elif isinstance(node, ast.Name) and node.id in names:
            target = names[node.id]
        if inspect.isfunction(target) and target.__module__.startswith("crmcore."):
            found.add(f"{target.__module__.removeprefix('crmcore.')}.{target.__name__}")
    return found


def staff_code() -> list[Path]:
    return sorted([*(ROOT / "pages").glob("*.py"), *(ROOT / "ui").rglob("*.py"), ROOT / "app.py"])


def test_no_staff_code_calls_what_only_the_worker_or_a_patrons_token_may():
    """NO_ACTOR's "pages and ui never call it" holds: no page, ui module or app.py refers to a token maker, an
    unchecked consent writer, a worker job, the inbound listener, an unsuppressed figure or the importers' machinery."""
    offenders = sorted(f"{path.relative_to(ROOT)}: {f}" for path in staff_code() for f in crmcore_calls(path) & NOT_FOR_STAFF_CODE)
    assert offenders == []


def test_the_staff_code_scan_resolves_what_pages_call(tmp_path):
    """The scan above sees through `from crmcore.x import module` and package re-exports, so it can fail."""
    page = tmp_path / "page.py"
    page.write_text("from crmcore import kpis\nfrom crmcore.campaigns import preference_tokens, sending\n"
                    "kpis.dashboard(None)\npreference_tokens.make(1)\nsending.contexts_for(None, [])\n")
    assert crmcore_calls(page) & NOT_FOR_STAFF_CODE == {"campaigns.preference_tokens.make", "campaigns.sending.contexts_for"}
    assert "kpis.dashboard.dashboard" in crmcore_calls(page)
    assert any(crmcore_calls(path) for path in staff_code())

@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("label,perm,call", DB_CASES, ids=[c[0] for c in DB_CASES])
def test_database_level_function_is_allowed_exactly_for_roles_with_its_permission(db, staff, tmp_path, role, label, perm, call):
    if allowed(role, perm):
        call(db, staff[role.value], tmp_path)
    else:
        with pytest.raises(PermissionDenied):
            call(db, staff[role.value], tmp_path)


# --- the viewer and personal data ----------------------------------------------------------------


@pytest.fixture
def downloads(monkeypatch):
    """Everything offered for download while pages render (deferred downloads generated at once)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    captured: list[bytes] = []
    original_add, original_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def add(self, path_or_data, *args, **kwargs):
        if isinstance(path_or_data, (bytes, str)):
            captured.append(path_or_data.encode() if isinstance(path_or_data, str) else path_or_data)
        return original_add(self, path_or_data, *args, **kwargs)

    def add_deferred(self, data_callable, *args, **kwargs):
        data = data_callable()
        captured.append(data.encode() if isinstance(data, str) else bytes(data if isinstance(data, bytes) else data.read()))
        return original_deferred(self, data_callable, *args, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", add)
    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return captured


def personal_data(db) -> set[str]:
    with db.read() as s:
        rows = s.execute(select(Patron.first_name, Patron.last_name, Patron.email, Patron.phone).where(Patron.erased_at.is_(None))).all()
    values = set()
    for first, last, email, phone in rows:
        if first and last:
            values.add(f"{first} {last}")
            values.add(f"{last}, {first}")
        values |= {v for v in (email, phone) if v}
    return values


def test_the_viewer_sees_no_patron_name_email_or_phone_anywhere(app, db, demo, downloads):
    secrets = personal_data(db)
    assert len(secrets) > 100
    for spec in ui.PAGES:  # an admin first, so that any cache a viewer could be served is full
        assert not app(role="admin", page=spec.path).run().exception
    downloads.clear()
    seen = []
    for spec in ui.PAGES:
        if spec.perm is None or allowed(Role.VIEWER, spec.perm):
            at = app(role="viewer", page=spec.path).run()
            assert not at.exception, (spec.path, [e.value for e in at.exception])
            seen.append(page_text(at))
    text = "\n".join(seen) + "\n".join(d.decode("utf-8", "replace") for d in downloads)
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == [], f"the viewer saw personal data: {leaked[:5]}"


def test_personal_data_shows_for_an_admin_so_the_scan_can_fail(app, db, demo):
    """The viewer scan above would catch a leak: the same scan finds personal data on a page that shows it."""
    secrets = personal_data(db)
    at = app(role="admin", page="pages/privacy_requests.py").run()
    with db.read() as s:
        patron = s.execute(select(Patron).where(Patron.email.is_not(None)).limit(1)).scalar_one()
    at.text_input(key="privacy-query").input(patron.ils_id).run()
    assert patron.email in page_text(at) and any(s in page_text(at) for s in secrets)


# --- the audit log is append-only -----------------------------------------------------------------


def test_nothing_in_crmcore_updates_or_deletes_audit_entries():
    offenders = []
    for path in (ROOT / "crmcore").rglob("*.py"):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call):
                call = ast.unparse(node)
                head = call.split("(")[0]
                touches = "AuditLog" in call or "audit_log" in call
                if touches and (head.endswith(("delete", "update")) or "session.delete" in call):
                    offenders.append(f"{path.name}: {call[:80]}")
        lowered = source.lower()
        for verb in ("delete from audit_log", "update audit_log", "truncate audit_log"):
            if verb in lowered:
                offenders.append(f"{path.name}: {verb}")
    assert offenders == []
