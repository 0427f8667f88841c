"""Community outreach: organizations, contacts, interactions, tags, duplicates, tasks and follow-ups, calendar feeds, outreach KPIs."""
