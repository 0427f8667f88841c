"""Surveys: questions, signed links, responses, results (NPS with its interval) and closing the loop."""
