"""Journeys: automated, consent-checked series of messages a patron enters on a trigger."""
