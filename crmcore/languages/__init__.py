"""Languages: patrons' preferred languages, the translated public pages, and message variants per language."""
