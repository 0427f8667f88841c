"""The permission matrix: which role may do what. The one place it is defined.

Service functions call `require(actor, Perm.X)` before they act; the UI uses `allowed` only to hide
what a role cannot use. Hiding is not the control.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    OUTREACH = "outreach"
    VIEWER = "viewer"


class Perm(StrEnum):
    VIEW_DASHBOARD = "view_dashboard"  # aggregate KPIs, small cells suppressed
    VIEW_PATRONS = "view_patrons"  # patron directory and profiles (masked without VIEW_PII)
    VIEW_PII = "view_pii"  # names, emails and phones of patrons, unmasked (audited)
    VIEW_OUTREACH = "view_outreach"  # organizations, contacts, interactions with their notes
    EDIT_OUTREACH = "edit_outreach"  # create, edit, merge, archive outreach records; tasks
    MANAGE_SEGMENTS = "manage_segments"  # build and save segments
    COMPOSE_CAMPAIGNS = "compose_campaigns"  # draft, preview and test-send campaigns
    LAUNCH_CAMPAIGNS = "launch_campaigns"  # launch, schedule and cancel campaigns
    IMPORT_DATA = "import_data"  # ILS, events, census and organization imports
    MANAGE_STAFF = "manage_staff"  # staff accounts and roles
    MANAGE_SETTINGS = "manage_settings"  # retention, k, frequency cap, SMTP …
    VIEW_AUDIT = "view_audit"  # read and export the audit log
    BACKUP = "backup"  # back up and restore the database
    PRIVACY_REQUESTS = "privacy_requests"  # patron access exports and erasure


ROLE_PERMISSIONS: dict[Role, frozenset[Perm]] = {
    Role.ADMIN: frozenset(Perm),
    Role.MANAGER: frozenset(
        {
            Perm.VIEW_DASHBOARD,
            Perm.VIEW_PATRONS,
            Perm.VIEW_PII,
            Perm.VIEW_OUTREACH,
            Perm.EDIT_OUTREACH,
            Perm.MANAGE_SEGMENTS,
            Perm.COMPOSE_CAMPAIGNS,
            Perm.LAUNCH_CAMPAIGNS,
        }
    ),
    Role.OUTREACH: frozenset({Perm.VIEW_DASHBOARD, Perm.VIEW_PATRONS, Perm.VIEW_OUTREACH, Perm.EDIT_OUTREACH}),
    Role.VIEWER: frozenset({Perm.VIEW_DASHBOARD}),
}


@dataclass(frozen=True)
class Actor:
    """The staff member on whose behalf a service function acts."""

    id: int | None
    username: str
    role: Role

    def can(self, perm: Perm) -> bool:
        return allowed(self.role, perm)


class PermissionDenied(Exception):
    """The acting staff member's role may not do this."""


def allowed(role: Role | str, perm: Perm) -> bool:
    return perm in ROLE_PERMISSIONS[Role(role)]


def require(actor: Actor, perm: Perm) -> None:
    """Raise PermissionDenied, with a message for a person, unless the actor's role has `perm`."""
    if not allowed(actor.role, perm):
        raise PermissionDenied(f"The {actor.role} role may not {perm.replace('_', ' ')}.")
