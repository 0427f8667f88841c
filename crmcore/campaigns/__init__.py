"""Reaching patrons: segments and their rule language, message templates, drafts and launch, sending, the outbox, the do-not-mail list, the preference page, results."""
