"""The kinds of interaction outreach staff log, stored code -> label."""

KINDS: dict[str, str] = {
    "meeting": "Meeting",
    "event_table": "Event table",
    "presentation": "Presentation",
    "phone": "Phone call",
    "email": "Email",
    "visit": "Visit",
    "partnership": "Partnership",
}
