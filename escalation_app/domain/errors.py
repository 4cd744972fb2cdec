"""Domain errors. Each message is fit to show to the person who caused it."""

from __future__ import annotations

from datetime import datetime


class DomainError(Exception):
    """Base of every rule the domain refuses; `message` is user-facing."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The thing does not exist, or belongs to another account (we never say which)."""


class PermissionDenied(DomainError):
    """The actor may see the thing but not do this to it."""


class InvalidInput(DomainError):
    """A value the domain cannot accept; nothing was changed."""


class AlreadyClaimed(DomainError):
    """Someone else won the claim on this handoff."""

    def __init__(self, *, winner_id: int, winner_name: str, claimed_at: datetime):
        super().__init__(f"Already claimed by {winner_name}")
        self.winner_id = winner_id
        self.winner_name = winner_name
        self.claimed_at = claimed_at
