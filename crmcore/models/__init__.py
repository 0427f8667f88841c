"""All table models of Liaison, one module per area, importable from here (`from crmcore.models import Patron`).

Conventions: integer surrogate keys, timezone-aware UTC datetimes, dates as `date`, codes and enumerations as
short strings checked in the service layer. Indexes are the ones the dashboards, segments, imports and
the worker query by. Importing this package registers every table on `SQLModel.metadata` (Alembic and
`open_database` rely on it).
"""

from crmcore.models.admin import AuditLog, Download, ImportMapping, ImportRun, ProgramEvent, ProgramLabel, Setting, StaffSession, StaffUser
from crmcore.models.base import utcnow
from crmcore.models.campaigns import Bounce, Campaign, InboundMail, Message, SavedTemplate, Segment
from crmcore.models.community import (
    CalendarFeed,
    Contact,
    ContactTag,
    Interaction,
    InteractionContact,
    InteractionOrganization,
    InteractionTag,
    NotDuplicate,
    Organization,
    OrganizationTag,
    Tag,
    Task,
)
from crmcore.models.dashboard import DashActivity, DashCohort, DashFlow, DashRegistration, DashState
from crmcore.models.texts import DoNotText, InboundText
from crmcore.models.library import ActivityEvent, ActivityMonthly, Branch, CategoryTerm, CirculationMonthly, ConsentRecord, CurrentConsent, Patron, Suppression, Zone

__all__ = [
    "ActivityEvent", "ActivityMonthly", "AuditLog", "Bounce", "Branch", "CalendarFeed", "Campaign", "CategoryTerm", "CirculationMonthly", "ConsentRecord", "Contact", "ContactTag",
    "CurrentConsent", "DashActivity", "DashCohort", "DashFlow", "DashRegistration", "DashState", "DoNotText", "Download", "ImportMapping", "ImportRun",
    "InboundMail", "InboundText", "Interaction", "InteractionContact", "InteractionOrganization", "InteractionTag", "Message", "NotDuplicate", "Organization", "OrganizationTag",
    "Patron", "ProgramEvent", "ProgramLabel", "SavedTemplate", "Segment", "Setting", "StaffSession", "StaffUser", "Suppression", "Tag", "Task", "Zone", "utcnow",
]  # fmt: skip
