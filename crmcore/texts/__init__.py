"""Text messages: campaigns on channel sms through Kannel, keywords patrons send, delivery reports, quiet hours."""
