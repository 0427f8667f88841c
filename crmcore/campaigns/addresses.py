"""The library's mail addresses: the From address, its domain, and the addresses that reach Liaison's inbound
listener — `unsubscribe+<token>@…` (the mailto unsubscribe) and `bounce+<token>@…` (each message's envelope
sender, so a late bounce names its message: VERP). The token is crmcore.campaigns.unsubscribe's."""

from __future__ import annotations

from crmcore.admin import config
from crmcore.campaigns import mime


def mail_from() -> str:
    return config.get("CRM_MAIL_FROM", "library@localhost")


def mail_domain() -> str:
    return mime.from_header(mail_from())[1].rpartition("@")[2] or "localhost"


def inbound_domain() -> str:
    """The mail domain whose unsubscribe+… and bounce+… addresses the mail server hands to the listener."""
    return config.get("CRM_INBOUND_DOMAIN") or mail_domain()


def unsubscribe_address(token: str) -> str:
    return f"unsubscribe+{token}@{inbound_domain()}"


def bounce_address(token: str) -> str:
    return f"bounce+{token}@{inbound_domain()}"


def token_in(address: str, kind: str) -> str | None:
    """The token of an `unsubscribe+…` or `bounce+…` address (kind "unsubscribe" or "bounce"), else None."""
    local = address.strip().strip("<>").rpartition("@")[0]
    prefix = f"{kind}+"
    return local[len(prefix) :] if local.lower().startswith(prefix) else None


def help_address() -> str:
    """The library's address for requests (CRM_HELP_ADDRESS, default help@ the inbound domain): mail to it
    becomes a request; replies to requesters go out from it."""
    return config.get("CRM_HELP_ADDRESS") or f"help@{inbound_domain()}"


def is_help_address(address: str) -> bool:
    return address.strip().strip("<>").lower() == help_address().lower()
