"""The command line: migrate, staff accounts, first start, and a database file that is not a database."""

import hashlib
import io
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from crmcore import cli
from crmcore.admin import auth
from crmcore.db import Database, current_revision, head_revision
from crmcore.models import AuditLog, Patron, StaffUser
from tests.conftest import ROOT


@pytest.fixture
def url(tmp_path, monkeypatch):
    """An empty SQLite file as DATABASE_URL, with no admin password configured."""
    value = f"sqlite:///{tmp_path / 'crm.db'}"
    monkeypatch.setenv("DATABASE_URL", value)
    monkeypatch.delenv("CRM_ADMIN_PASSWORD", raising=False)
    return value


def run(monkeypatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli.main(list(argv))


def test_migrate_creates_the_schema_at_head(url, monkeypatch, capsys):
    assert run(monkeypatch, "migrate") == 0
    assert "is at the latest schema" in capsys.readouterr().out
    db = Database(url)
    assert current_revision(db.engine) == head_revision()
    db.dispose()


def test_user_add_passwd_disable(url, monkeypatch, capsys):
    assert run(monkeypatch, "user", "add", "Ruth", "--role", "outreach", stdin="first password 1\n") == 0
    db = Database(url)
    assert auth.sign_in(db, username="ruth", password="first password 1").role == "outreach"
    assert run(monkeypatch, "user", "passwd", "ruth", stdin="second password 2\n") == 0
    with pytest.raises(auth.SignInError):
        auth.sign_in(db, username="ruth", password="first password 1")
    assert auth.sign_in(db, username="ruth", password="second password 2")
    assert run(monkeypatch, "user", "disable", "ruth") == 0
    with pytest.raises(auth.SignInError):
        auth.sign_in(db, username="ruth", password="second password 2")
    with db.read() as s:
        actions = s.execute(select(AuditLog.action).where(AuditLog.actor_name == "cli").order_by(AuditLog.id)).scalars().all()
    assert actions == ["staff.create", "staff.password", "staff.disable"]
    db.dispose()


def test_user_errors_are_one_line_and_exit_1(url, monkeypatch, capsys):
    assert run(monkeypatch, "user", "add", "ruth", stdin="short\n") == 1
    assert capsys.readouterr().err.strip() == "error: The password must have at least 10 characters."
    assert run(monkeypatch, "user", "passwd", "nobody", stdin="long enough password\n") == 1
    assert "No staff account named 'nobody'" in capsys.readouterr().err


def test_init_creates_the_admin_and_shows_the_password_once(url, monkeypatch, capsys):
    assert run(monkeypatch, "init", "--no-demo") == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if "sign in as" in l)
    password = line.split("password")[-1].strip()
    assert len(password) >= auth.MIN_PASSWORD_LENGTH
    db = Database(url)
    assert auth.sign_in(db, username="admin", password=password).role == "admin"
    # A second start neither creates another account nor prints a password.
    assert run(monkeypatch, "init", "--no-demo") == 0
    assert password not in capsys.readouterr().out
    with db.read() as s:
        assert s.execute(select(StaffUser.username)).scalars().all() == ["admin"]
    db.dispose()


def test_init_seeds_the_demo_library_into_an_empty_database_only(url, monkeypatch, capsys):
    assert run(monkeypatch, "init", "--patrons", "40") == 0
    assert run(monkeypatch, "init", "--patrons", "40") == 0
    db = Database(url)
    with db.read() as s:
        assert len(s.execute(select(Patron.id)).all()) == 40
    db.dispose()


def test_init_uses_the_configured_admin_password(url, monkeypatch, capsys):
    monkeypatch.setenv("CRM_ADMIN_PASSWORD", "configured password")
    assert run(monkeypatch, "init", "--no-demo") == 0
    assert "configured password" not in capsys.readouterr().out
    db = Database(url)
    assert auth.sign_in(db, username="admin", password="configured password")
    db.dispose()


@pytest.mark.parametrize(
    "content,command",
    [(b"name,email\nAda,ada@example.org\n", ["migrate"]), (os.urandom(8192), ["init", "--no-demo"]), (b"\x00" * 4096, ["user", "disable", "admin"])],
    ids=["csv-migrate", "random-init", "zeros-user"],
)
def test_a_file_that_is_not_a_database_gets_one_line_and_stays_untouched(tmp_path, content, command):
    path = tmp_path / "crm.db"
    path.write_bytes(content)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    done = subprocess.run([sys.executable, "-m", "crmcore", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == [f"error: Cannot open or migrate the database {path}: file is not a database"]
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(content).digest()
