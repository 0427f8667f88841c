"""Deployment configuration: environment variables first, then `.streamlit/secrets.toml`.

Secrets never live in the code. Settings that staff change at run time (retention, k, …) are not
here: they are rows of the `setting` table (see `crmcore.admin.settings`).
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the project folder: crmcore/admin/config.py is two levels down
DATA_DIR = ROOT / "data"
DEFAULT_DATABASE_URL = f"sqlite:///{DATA_DIR / 'crm.db'}"

# name -> what it configures (the README's configuration table is checked against this).
VARIABLES = {
    "DATABASE_URL": "SQLAlchemy URL of the database (default: sqlite:///data/crm.db)",
    "CRM_ADMIN_PASSWORD": "password of the first admin account, instead of a generated one",
    "CRM_SECRET_KEY": "key that signs preference-page links (generated into data/ if unset)",
    "CRM_PUBLIC_URL": "public address of the app, used in links inside messages",
    "CRM_SMTP_HOST": "SMTP server; unset means messages are written to data/outbox/ as .eml files",
    "CRM_SMTP_PORT": "SMTP port (default 587)",
    "CRM_SMTP_USER": "SMTP login user",
    "CRM_SMTP_PASSWORD": "SMTP login password",
    "CRM_SMTP_STARTTLS": "use STARTTLS (default true when a user is set)",
    "CRM_MAIL_FROM": "From address of campaign messages",
    "CRM_OUTBOX_DIR": "where .eml files go when no SMTP server is set (default data/outbox)",
    "CRM_BACKUP_DIR": "where backups go (default data/backups)",
    "CRM_MAX_UPLOAD_MB": "largest import file accepted, in MB (default 200)",
    "CRM_INBOUND_PORT": "port of the inbound mail listener (unsubscribes by mail, bounces, complaints); unset: none",
    "CRM_INBOUND_HOST": "address the inbound mail listener binds (default 127.0.0.1)",
    "CRM_INBOUND_DOMAIN": "mail domain routed to the listener, for unsubscribe+… and bounce+… addresses (default: the From domain)",
    "CRM_HELP_ADDRESS": "the library's address for requests, routed to the inbound listener; replies go out from it (default help@ the inbound domain)",
    "CRM_SMS_URL": "Kannel's sendsms address (e.g. http://127.0.0.1:13013/cgi-bin/sendsms); unset means texts are written to data/outbox/sms/",
    "CRM_SMS_USER": "Kannel sendsms-user username",
    "CRM_SMS_PASSWORD": "Kannel sendsms-user password",
    "CRM_SMS_FROM": "sender of text messages (a short code, a number or a name the provider allows)",
    "CRM_SMS_SECRET": "shared secret Kannel puts in its calls to /sms/inbound and /sms/dlr; unset: both refuse every call",
    "CRM_SMS_CALLBACK_URL": "the app's address as Kannel reaches it, for delivery reports (default: the public address)",
}


@cache
def _secrets() -> dict:
    path = ROOT / ".streamlit" / "secrets.toml"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        return tomllib.load(f)


def get(name: str, default: str | None = None) -> str | None:
    """One configuration value: the environment wins over secrets.toml, which wins over the default."""
    if name not in VARIABLES:
        raise KeyError(f"unknown configuration variable {name}")
    value = os.environ.get(name)
    if value is None:
        value = _secrets().get(name)
    return default if value is None or value == "" else str(value)


def database_url() -> str:
    return get("DATABASE_URL", DEFAULT_DATABASE_URL)
