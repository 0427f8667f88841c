"""The demo library: a seeded, repeatable generator of patrons, activity, consent and community records."""
