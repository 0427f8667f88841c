"""Requests from patrons and partners: a shared inbox with topics, owners, due dates, replies and notes."""
