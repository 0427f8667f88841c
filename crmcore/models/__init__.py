"""All table models of Liaison, one module per area, importable from here (`from crmcore.models import Patron`).

Conventions: integer surrogate keys, timezone-aware UTC datetimes, dates as `date`, codes and enumerations as
short strings checked in the service layer. Indexes are the ones the dashboards, segments, imports and
the worker query by. Importing this package registers every table on `SQLModel.metadata` (Alembic and
`open_database` rely on it).
"""

from crmcore.models.admin import AuditLog, Download, ImportMapping, ImportRun, ProgramEvent, ProgramLabel, Setting, StaffSession, StaffUser
from crmcore.models.base import utcnow
from crmcore.models.campaigns import Bounce, Campaign, InboundMail, Message, MessageVariant, SavedTemplate, Segment
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
from crmcore.models.dashboard import DashActivity, DashCohort, DashFlow, DashRegistration, DashState, DashWindow
from crmcore.models.inbox import CannedReply, Request, RequestEntry, RequestTopic
from crmcore.models.insights import InsightRun, LibrarySurveyRow, PatronInsight, Persona
from crmcore.models.journeys import Journey, JourneyEnrolment, JourneyVersion
from crmcore.models.library import (
    ActivityEvent,
    ActivityMonthly,
    Branch,
    CategoryTerm,
    CirculationMonthly,
    ConsentRecord,
    CurrentConsent,
    Patron,
    Suppression,
    Zone,
)
from crmcore.models.recommendations import CatalogueItem, PatronInterest
from crmcore.models.signups import Prospect, ProspectConsent, SignupAttempt
from crmcore.models.surveys import Survey, SurveyResponse, SurveyText
from crmcore.models.texts import DoNotText, InboundText

__all__ = [
    "ActivityEvent", "ActivityMonthly", "AuditLog", "Bounce", "Branch", "CalendarFeed", "Campaign", "CannedReply", "CatalogueItem", "CategoryTerm",
    "CirculationMonthly", "ConsentRecord", "Contact", "ContactTag", "CurrentConsent", "DashActivity", "DashCohort", "DashFlow", "DashRegistration",
    "DashState", "DashWindow", "DoNotText", "Download", "ImportMapping", "ImportRun", "InboundMail", "InboundText", "InsightRun", "Interaction",
    "InteractionContact", "InteractionOrganization", "InteractionTag", "Journey", "JourneyEnrolment", "JourneyVersion", "LibrarySurveyRow", "Message",
    "MessageVariant", "NotDuplicate", "Organization", "OrganizationTag", "Patron", "PatronInsight", "PatronInterest", "Persona", "ProgramEvent",
    "ProgramLabel", "Prospect", "ProspectConsent", "Request", "RequestEntry", "RequestTopic", "SavedTemplate", "Segment", "Setting", "SignupAttempt",
    "StaffSession", "StaffUser", "Suppression", "Survey", "SurveyResponse", "SurveyText", "Tag", "Task", "Zone", "utcnow",
]  # fmt: skip
