"""The rules of Escalation Desk: plain Python and SQLModel, no web framework."""
