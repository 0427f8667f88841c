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
from crmcore.admin import backup
from crmcore.admin.permissions import Perm, PermissionDenied, Role, allowed
from crmcore.campaigns import drafts
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
    ("admin.backup.health", Perm.BACKUP, lambda db, a, tmp: backup.health(actor=a)),
    ("admin.backup.restore", Perm.BACKUP, lambda db, a, tmp: backup.restore(db, actor=a, path=backup.create_backup(db, actor=None, path=tmp / "r"))),
    ("imports.choose_mapping", Perm.IMPORT_DATA, lambda db, a, tmp: imports.choose_mapping(db, actor=a, kind="patrons", path=SAMPLES / "koha_borrowers.csv")),
    ("imports.runner.run_import", Perm.IMPORT_DATA, lambda db, a, tmp: imports.run_import(
        db, actor=a, kind="zones", path=SAMPLES / "zones.csv", dry_run=True,
        mapping={"columns": {"code": "zip", "name": "name", "population": "population"}})),
    ("privacy.retention.run", Perm.MANAGE_SETTINGS, lambda db, a, tmp: retention.run(db, actor=a)),
    ("campaigns.drafts.preview", Perm.COMPOSE_CAMPAIGNS, lambda db, a, tmp: with_temp_mail(lambda: drafts.preview(db, actor=a, campaign_id=(c := new_case_campaign(db))[0], patron_id=c[1]))),
    ("campaigns.drafts.send_test", Perm.COMPOSE_CAMPAIGNS, lambda db, a, tmp: with_temp_mail(lambda: drafts.send_test(db, actor=a, campaign_id=(c := new_case_campaign(db))[0], patron_id=c[1]))),
]

# Functions that take an actor only to name who acted, not to authorise anything. (downloads.offer keeps a file
# for the staff member it names: what goes in was authorised where it was made.)
NOT_AUTHORISING = {"privacy.audit.record", "admin.permissions.require", "privacy.downloads.offer"}


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


def actor_functions() -> list[str]:
    """Every public crmcore function (module.function) with an `actor` parameter, defined in crmcore."""
    found = []
    for info in pkgutil.walk_packages(crmcore.__path__, "crmcore."):
        if info.name.startswith("crmcore.migrations") or info.name in ("crmcore.__main__",):
            continue
        module = importlib.import_module(info.name)
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("_") or func.__module__ != info.name:
                continue
            if "actor" in inspect.signature(func).parameters:
                found.append(f"{info.name.removeprefix('crmcore.')}.{name}")
    return sorted(found)


def test_every_function_that_takes_an_actor_has_a_permission_case():
    labels = {label.split("(")[0] for label, _, _ in CASES} | {label for label, _, _ in DB_CASES}
    # A row may name a function by its module's last part (imports.patrons.run as patrons.run).
    short = {label.rsplit(".", 2)[-2] + "." + label.rsplit(".", 1)[-1] for label in labels if label.count(".") >= 1}
    missing = [f for f in actor_functions() if f not in NOT_AUTHORISING and f not in labels and ".".join(f.split(".")[-2:]) not in short]
    assert missing == [], "add rows to CASES in tests/test_permissions.py for: " + ", ".join(missing)


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
