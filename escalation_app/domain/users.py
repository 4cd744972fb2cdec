"""Account user management (owners and admins) and teammate look-ups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from escalation_app.domain import validation
from escalation_app.domain.actors import Actor
from escalation_app.domain.auth import check_password_rules, hash_password
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import eligible_recipients
from escalation_app.domain.models import Account, AccountRole, AuthSession, User
from escalation_app.domain.types import utcnow

EMAIL_MAX = validation.EMAIL_MAX
NAME_MAX = 120
# Emails are unique across every account: whether the address is taken here or in
# another account, the answer is the same, so nobody learns another account's users.
EMAIL_UNAVAILABLE = "That email cannot be used. Choose another address."


@dataclass(frozen=True, slots=True)
class UserRow:
    """What the user admin table shows (never the password hash)."""

    id: int
    display_name: str
    email: str
    role: str
    is_active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Teammate:
    """An option of the "Send to" picker."""

    id: int
    display_name: str


def _require_manager(actor: Actor) -> None:
    if not actor.is_manager:
        raise PermissionDenied("Only account owners and admins can manage users.")


def _load_member(db: Session, actor: Actor, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None or user.account_id != actor.account_id or user.deleted_at is not None:
        raise NotFound("User not found.")
    return user


def _lock_account(db: Session, account_id: int) -> None:
    """Serialise owner changes of one account (PostgreSQL row lock; SQLite already serialises writers)."""
    db.exec(select(Account.id).where(Account.id == account_id).with_for_update()).one()


def _active_owner_count(db: Session, account_id: int) -> int:
    return db.exec(
        select(func.count())
        .select_from(User)
        .where(
            User.account_id == account_id,
            User.account_role == AccountRole.OWNER,
            col(User.is_active).is_(True),
            col(User.deleted_at).is_(None),
        )
    ).one()


def list_users(*, db: Session, actor: Actor) -> list[UserRow]:
    """The account's users (not deleted), by name."""
    _require_manager(actor)
    users = db.exec(
        select(User)
        .where(User.account_id == actor.account_id, col(User.deleted_at).is_(None))
        .order_by(col(User.display_name))
    ).all()
    return [
        UserRow(
            id=u.id,
            display_name=u.display_name,
            email=u.email,
            role=u.account_role,
            is_active=u.is_active,
            created_at=u.created_at,
        )
        for u in users
    ]


def add_user(*, db: Session, actor: Actor, display_name: str, email: str, role: str, password: str) -> User:
    """Add a user to the actor's account (and team) with an initial password.

    Only owners may create another owner.
    """
    _require_manager(actor)
    name = validation.single_line(display_name, "Name", max_length=NAME_MAX, required=True)
    address = validation.email(email)
    chosen_role = validation.choice(role, AccountRole, "Role")
    if chosen_role == AccountRole.OWNER and actor.role != AccountRole.OWNER:
        raise PermissionDenied("Only owners can add another owner.")
    check_password_rules(password or "")
    if db.exec(select(User.id).where(User.email == address)).first() is not None:
        raise InvalidInput(EMAIL_UNAVAILABLE)
    user = User(
        account_id=actor.account_id,
        team_id=actor.team_id,
        email=address,
        display_name=name,
        password_hash=hash_password(password),
        account_role=chosen_role,
    )
    db.add(user)
    try:
        db.commit()
    except IntegrityError:
        # Lost a race with another admin adding the same email.
        db.rollback()
        raise InvalidInput(EMAIL_UNAVAILABLE) from None
    return user


def change_role(*, db: Session, actor: Actor, user_id: int, role: str) -> User:
    """Change another user's role; owners alone grant or revoke ownership."""
    _require_manager(actor)
    chosen_role = validation.choice(role, AccountRole, "Role")
    _lock_account(db, actor.account_id)
    user = _load_member(db, actor, user_id)
    if user.id == actor.id:
        raise PermissionDenied("You cannot change your own role.")
    touches_owner = AccountRole.OWNER in (user.account_role, chosen_role)
    if touches_owner and actor.role != AccountRole.OWNER:
        raise PermissionDenied("Only owners can grant or remove the owner role.")
    if (
        user.account_role == AccountRole.OWNER
        and chosen_role != AccountRole.OWNER
        and user.is_active
        and _active_owner_count(db, actor.account_id) <= 1
    ):
        raise PermissionDenied("The account must keep at least one owner.")
    user.account_role = chosen_role
    db.add(user)
    db.commit()
    return user


def deactivate_user(*, db: Session, actor: Actor, user_id: int) -> User:
    """Deactivate a user: they can no longer sign in and their sign-ins end now."""
    _require_manager(actor)
    _lock_account(db, actor.account_id)
    user = _load_member(db, actor, user_id)
    if user.id == actor.id:
        raise PermissionDenied("You cannot deactivate yourself.")
    if user.account_role == AccountRole.OWNER:
        if actor.role != AccountRole.OWNER:
            raise PermissionDenied("Only owners can deactivate an owner.")
        if user.is_active and _active_owner_count(db, actor.account_id) <= 1:
            raise PermissionDenied("The account must keep at least one owner.")
    user.is_active = False
    now = utcnow()
    for auth_session in db.exec(
        select(AuthSession).where(AuthSession.user_id == user.id, col(AuthSession.revoked_at).is_(None))
    ).all():
        auth_session.revoked_at = now
        db.add(auth_session)
    db.add(user)
    db.commit()
    return user


def list_teammates(*, db: Session, actor: Actor) -> list[Teammate]:
    """Who the actor can send an escalation to: active owners, admins and engineers but themselves."""
    return [
        Teammate(id=u.id, display_name=u.display_name)
        for u in eligible_recipients(db, account_id=actor.account_id, exclude_user_id=actor.id)
    ]
