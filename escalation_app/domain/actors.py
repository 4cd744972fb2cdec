"""Who is acting: resolved from a server-side sign-in, never from client input."""

from __future__ import annotations

from dataclasses import dataclass

from escalation_app.domain.models import AccountRole, User


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in user as the domain rules see them."""

    id: int
    account_id: int
    team_id: int | None
    role: str
    display_name: str
    email: str

    @classmethod
    def from_user(cls, user: User) -> Actor:
        """Build an actor from a loaded user row."""
        assert user.id is not None
        return cls(
            id=user.id,
            account_id=user.account_id,
            team_id=user.team_id,
            role=user.account_role,
            display_name=user.display_name,
            email=user.email,
        )

    @property
    def is_manager(self) -> bool:
        """Owners and admins manage the account and read its history."""
        return self.role in (AccountRole.OWNER, AccountRole.ADMIN)

    @property
    def can_work_handoffs(self) -> bool:
        """Everyone but viewers can escalate, claim and receive the live feed."""
        return self.role in (AccountRole.OWNER, AccountRole.ADMIN, AccountRole.ENGINEER)
