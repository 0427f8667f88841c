"""The administration pages, driven as an admin would: what they change in the database, and what they show."""

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from crmcore.admin import backup, settings
from crmcore.admin.permissions import PermissionDenied
from crmcore.models import AuditLog, Branch, Patron, Setting, StaffUser, Suppression
from crmcore.privacy import audit
from tests.conftest import take_download


def texts(at) -> str:
    """Everything written on the page, with ui.md's markdown escapes taken out."""
    return "\n".join(str(e.value) for kind in ("success", "error", "warning", "info", "markdown", "caption") for e in getattr(at, kind)).replace("\\", "")


def test_staff_page_creates_an_account_changes_its_role_and_disables_it(app, db):
    at = app(role="admin", page="pages/admin_staff.py").run()
    at.text_input[0].input("new.librarian")
    at.text_input[1].input("New Librarian")
    at.text_input[3].input("a long enough password")
    at.selectbox[0].select("outreach")
    at.button(key="FormSubmitter:staff-create-Create account").click().run()
    assert not at.exception and "Account new.librarian created." in texts(at)
    with db.read() as s:
        user = s.execute(select(StaffUser).where(StaffUser.username == "new.librarian")).scalar_one()
    assert user.role == "outreach" and user.display_name == "New Librarian"

    at.selectbox(key="staff-account").select("new.librarian").run()
    at.tabs[0].selectbox[0].select("manager")
    at.button(key="FormSubmitter:staff-role-Change role").click().run()
    assert "new.librarian is now manager." in texts(at)
    at.selectbox(key="staff-account").select("new.librarian").run()
    at.button(key="staff-toggle").click().run()
    with db.read() as s:
        user = s.execute(select(StaffUser).where(StaffUser.username == "new.librarian")).scalar_one()
        actions = s.execute(select(AuditLog.action).where(AuditLog.entity_id == str(user.id))).scalars().all()
    assert user.role == "manager" and not user.is_active
    assert actions == ["staff.create", "staff.role", "staff.disable"]


def test_staff_page_says_why_a_short_password_is_refused(app, db):
    at = app(role="admin", page="pages/admin_staff.py").run()
    at.text_input[0].input("shorty")
    at.text_input[3].input("short")
    at.button(key="FormSubmitter:staff-create-Create account").click().run()
    assert not at.exception and "at least 10 characters" in at.error[0].value
    with db.read() as s:
        assert s.execute(select(StaffUser).where(StaffUser.username == "shorty")).first() is None


def test_settings_page_saves_valid_values_and_refuses_bad_ones_saving_none(app, db, monkeypatch):
    monkeypatch.setenv("CRM_SMTP_PASSWORD", "hunter2-very-secret")
    monkeypatch.setenv("CRM_SMTP_HOST", "smtp.library.test")
    at = app(role="admin", page="pages/admin_settings.py").run()
    shown = str([df.value.to_dict() for df in at.dataframe])
    assert "hunter2" not in shown and "smtp.library.test" in shown and "'set'" in shown
    at.number_input(key="setting-retention_months").set_value(24)
    at.number_input(key="setting-small_cell_k").set_value(1)  # below the minimum
    at.button(key="FormSubmitter:settings-Save settings").click().run()
    assert "Smallest group shown: must be between 2 and 100" in at.error[0].value
    with db.read() as s:
        assert s.execute(select(func.count()).select_from(Setting)).scalar() == 0
    at.number_input(key="setting-small_cell_k").set_value(7)
    at.text_input(key="setting-public_url").input("https://crm.library.test/")
    at.button(key="FormSubmitter:settings-Save settings").click().run()
    assert "Saved 3 change(s)." in texts(at)
    with db.read() as s:
        assert (settings.get(s, "retention_months"), settings.get(s, "small_cell_k"), settings.get(s, "public_url")) == (24, 7, "https://crm.library.test")


def test_every_setting_is_validated(db, staff):
    bad = {"retention_months": 0, "small_cell_k": "five", "frequency_cap_per_7_days": 0, "conversion_window_days": 400, "public_url": "ftp://x", "send_rate_per_minute": -1, "backup_keep": 0, "session_idle_hours": 0, "library_name": "   ", "postal_address": "x" * 301, "library_logo": b"GIF00 not an image",
           "time_zone": "Mars/Olympus_Mons",
           "request_retention_months": 0,
           "peer_library_key": "not a key!", "lapse_risk_enabled": "perhaps",
           "sms_default_region": "Atlantis", "sms_max_segments": 0, "text_rate_per_minute": 0, "quiet_hours_start": 24, "quiet_hours_end": -1, "sms_help_contact": "x" * 81}
    bad.update({"catalogue_window_days": 0, "recommendations_per_message": 11})  # recommendations
    assert set(bad) == set(settings.SPECS), "a new setting needs a bad value here"
    for key, value in bad.items():
        with db.write() as s:
            try:
                settings.put(s, actor=staff["admin"], key=key, value=value)
            except ValueError as exc:
                assert settings.LABELS[key] in str(exc)  # the setting named as the page names it
            else:
                raise AssertionError(f"{key}={value!r} was accepted")


def test_audit_log_page_filters_by_staff_action_and_date(app, db, staff):
    with db.write() as s:
        audit.record(s, actor=staff["manager"], action="campaign.launch", entity="campaign", entity_id=1)
        audit.record(s, actor=staff["admin"], action="setting.change", entity="setting", entity_id="small_cell_k")
        old = audit.record(s, actor=staff["manager"], action="campaign.launch", entity="campaign", entity_id=2)
        old.at = old.at - timedelta(days=90)
    at = app(role="admin", page="pages/audit_log.py").run()
    assert len(at.dataframe[0].value) == 2
    at.selectbox(key="audit-staff").select("manager").run()
    frame = at.dataframe[0].value
    assert list(frame["action"]) == ["campaign.launch"] and list(frame["record"]) == ["1"]
    at.date_input(key="audit-dates").set_value((date.today() - timedelta(days=120), date.today())).run()
    assert list(at.dataframe[0].value["record"]) == ["1", "2"]
    at.selectbox(key="audit-action").select("setting.change").run()
    assert len(at.dataframe[0].value) == 0
    assert not at.get("download_button")  # the log names staff and patrons: no Streamlit media URL for it
    at.selectbox(key="audit-action").select("campaign.launch").run()
    at.button(key="audit-export").click().run()
    file = take_download(at, db)
    assert file.name == "audit-log.csv" and file.data.decode("utf-8-sig").count("campaign.launch") == 2


def test_audit_export_is_audited_neutralised_and_refused_without_permission(db, staff):
    with db.write() as s:
        audit.record(s, actor=None, action="login.failed", detail={"username": "=HYPERLINK(\"http://evil\")"})
    with db.write() as s:
        data = audit.export_csv(s, actor=staff["admin"], action="login.failed").decode("utf-8-sig")
    assert "login.failed" in data and "HYPERLINK" in data
    with db.read() as s:
        assert s.execute(select(AuditLog.detail).where(AuditLog.action == "audit.export")).scalar() == {"rows": 1, "action": "login.failed"}
    for role in ("manager", "outreach", "viewer"):
        try:
            with db.read() as s:
                audit.search(s, actor=staff[role])
        except PermissionDenied:
            continue
        raise AssertionError(f"{role} read the audit log")


def test_backup_page_backs_up_and_restores_a_listed_backup_after_confirmation(app, db):
    with db.write() as s:
        s.add(Branch(code="KEPT", name="Kept"))
    at = app(role="admin", page="pages/backup.py").run()
    at.button(key="backup-now").click().run()
    assert not at.exception and "Backed up to liaison-" in texts(at)
    with db.write() as s:
        s.add(Branch(code="LOST", name="Added after the backup"))
    at.run()
    at.button(key="backup-restore-listed").click().run()
    assert "replaces the whole database" in texts(at)
    at.button(key="backup-confirm").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with db.read() as s:
        assert s.execute(select(Branch.code)).scalars().all() == ["KEPT"]
        assert s.execute(select(AuditLog.action).order_by(AuditLog.id.desc())).scalars().first() == "backup.restore"


def test_backup_page_refuses_an_uploaded_file_that_is_not_a_backup(app, db):
    with db.write() as s:
        s.add(Branch(code="KEPT", name="Kept"))
    at = app(role="admin", page="pages/backup.py").run()
    at.file_uploader(key="backup-upload").set_value(("../../evil name.db", b"this is not a database" * 100, "application/octet-stream")).run()
    at.button(key="backup-restore-upload").click().run()
    at.button(key="backup-confirm").click().run()
    assert not at.exception and "evil_name.db is not a readable" in at.error[0].value
    uploads = list((backup.backup_dir() / "uploads").iterdir())
    assert len(uploads) == 1 and uploads[0].name.endswith("-evil_name.db")
    with db.read() as s:
        assert s.execute(select(Branch.code)).scalars().all() == ["KEPT"]


def test_privacy_page_exports_and_erases_a_patron(app, db):
    with db.write() as s:
        s.add(Patron(ils_id="P-77", first_name="Rosa", last_name="Parks", email="rosa@example.org"))
    at = app(role="admin", page="pages/privacy_requests.py").run()
    at.text_input(key="privacy-query").input("P-77").run()
    assert "Parks" in str(at.dataframe[0].value.to_dict())
    assert not at.get("download_button")  # an access export never sits behind a Streamlit media URL
    at.button(key="privacy-json").click().run()
    assert json.loads(take_download(at, db).data)["patron"]["last_name"] == "Parks"
    at.button(key="privacy-html").click().run()
    exported = take_download(at, db)
    assert exported.name.endswith(".html") and b"Parks" in exported.data
    at.button(key="privacy-erase-button").click().run()
    at.text_input(key="privacy-confirm-ils").input("P-78")
    at.button(key="privacy-confirm").click().run()
    assert "does not match" in at.error[0].value
    with db.read() as s:
        assert s.execute(select(Patron.last_name)).scalar() == "Parks"
    at.button(key="privacy-erase-button").click().run()
    at.text_input(key="privacy-confirm-ils").input("P-77")
    at.button(key="privacy-confirm").click().run()
    assert not at.exception and "erased" in texts(at)
    with db.read() as s:
        patron = s.execute(select(Patron)).scalar_one()
        assert patron.last_name is None and patron.erased_at is not None
        assert s.execute(select(func.count()).select_from(Suppression)).scalar() == 1
        actions = set(s.execute(select(AuditLog.action)).scalars())
    assert {"pii.view", "privacy.access", "privacy.erase"} <= actions


def test_every_role_changes_its_own_password_on_my_account(app, db, staff):
    from crmcore.admin import auth, sessions
    from tests.conftest import PASSWORD

    for role in ("viewer", "admin"):
        with db.write() as s:
            other = sessions.start(s, actor=staff[role]).session_id  # the same account signed in elsewhere
        at = app(role=role, page="pages/account.py").run()
        for field, value in zip(at.text_input, ("wrong password!", "brand new password", "brand new password")):
            field.input(value)
        at.button(key="FormSubmitter:own-password-Change password").click().run()
        assert not at.exception and "current password is not right" in at.error[0].value
        for field, value in zip(at.text_input, (PASSWORD, "brand new password", "brand new password")):
            field.input(value)
        at.button(key="FormSubmitter:own-password-Change password").click().run()
        assert not at.exception and "Password changed." in at.success[0].value
        assert sessions.current(db, session_id=at.session_state["staff_session"]) == staff[role]  # still signed in here
        assert sessions.current(db, session_id=other) is None
        assert auth.sign_in(db, username=role, password="brand new password") == staff[role]


def test_backup_page_downloads_a_backup_through_a_one_use_link_audited(app, db, staff):
    made = backup.create_backup(db, actor=staff["admin"])
    at = app(role="admin", page="pages/backup.py").run()
    at.button(key="backup-download").click().run()
    assert not at.exception
    taken = take_download(at, db)
    assert (taken.name, taken.data) == (made.name, made.read_bytes())
    with db.read() as s:
        offered = s.execute(select(AuditLog.detail).where(AuditLog.action == "download.offer")).scalars().all()
    assert offered == [{"file": made.name, "bytes": made.stat().st_size}]
    with pytest.raises(LookupError, match="no backup named"):
        backup.backup_file(actor=staff["admin"], name="../crm.db")
    with pytest.raises(PermissionDenied):
        backup.backup_file(actor=staff["manager"], name=made.name)


def test_a_backup_too_big_to_upload_is_copied_into_the_folder_and_restored_from_the_list(app, db, staff):
    with db.write() as s:
        s.add(Branch(code="KEPT", name="Kept"))
    made = backup.create_backup(db, actor=staff["admin"])
    copied = made.rename(backup.backup_dir() / ("branch-library-copy.db" if made.suffix == ".db" else "branch-library-copy.dump"))
    with db.write() as s:
        s.add(Branch(code="LOST", name="Added after the backup"))
    at = app(role="admin", page="pages/backup.py").run()
    assert "needs no upload" in texts(at)
    at.selectbox(key="backup-choice").select(copied.name).run()
    at.button(key="backup-restore-listed").click().run()
    at.button(key="backup-confirm").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with db.read() as s:  # restored (and everyone, the admin too, signs in again)
        assert s.execute(select(Branch.code)).scalars().all() == ["KEPT"]
        restored = s.execute(select(AuditLog.entity_id).where(AuditLog.action == "backup.restore")).scalars().all()
    assert restored == [copied.name]
