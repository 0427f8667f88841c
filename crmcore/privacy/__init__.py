"""Privacy: small-cell suppression of reports, retention, patrons' rights (access and erasure), the audit log."""
