"""Passwords, sign-in, and server-side sign-in sessions.

Repeated failures are slowed by the sign-in throttle (`services/signin_throttle.py`),
per client address and per (email, client address): never by locking an email, which
would let anyone lock its owner out.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from datetime import timedelta

import bcrypt
from sqlmodel import Session, col, select

from escalation_app.domain import validation
from escalation_app.domain.actors import Actor
from escalation_app.domain.errors import DomainError, InvalidInput
from escalation_app.domain.models import AccountRole, AuthSession, User
from escalation_app.domain.types import utcnow
from escalation_app.settings import get_settings

INVALID_CREDENTIALS = "Invalid email or password"
NOT_AN_EMAIL = "Enter a valid email address."
# bcrypt only reads the first 72 bytes; refuse longer rather than silently truncate.
PASSWORD_MAX_BYTES = 72
PASSWORD_MIN_LENGTH = 8
# Sign-in bumps `last_seen_at` at most this often, to keep reads cheap.
TOUCH_INTERVAL = timedelta(minutes=1)


class SignInFailed(DomainError):
    """Wrong email, wrong password, deactivated user, or an address that is not an email."""


def normalize_email(email: str | None) -> str:
    """Emails compare case-insensitively; we store them lower-cased."""
    return (email or "").strip().lower()


def check_password_rules(password: str) -> None:
    """Raise InvalidInput when a new password is too short or too long for bcrypt."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise InvalidInput(f"Password must be at least {PASSWORD_MIN_LENGTH} characters.")
    if len(password.encode()) > PASSWORD_MAX_BYTES:
        raise InvalidInput("Password must be at most 72 bytes.")
    # bcrypt implementations disagree about NUL; nobody types control characters.
    validation.check_characters(password, "Password")


def hash_password(password: str) -> str:
    """A bcrypt hash of `password`."""
    rounds = get_settings().password_hash_rounds
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode()


_dummy_hashes: dict[int, str] = {}


def _dummy_hash() -> str:
    """Checked against when the email is unknown: the same bcrypt cost as a real user's hash.

    Made at the configured work factor (and remade if it changes), so an unknown email
    costs exactly the bcrypt check a known one does and the answer time tells nothing.
    """
    rounds = get_settings().password_hash_rounds
    if rounds not in _dummy_hashes:
        _dummy_hashes[rounds] = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=rounds)).decode()
    return _dummy_hashes[rounds]


def verify_password(password: str, password_hash: str) -> bool:
    """Whether `password` matches the stored bcrypt hash."""
    encoded = password.encode()
    if len(encoded) > PASSWORD_MAX_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, password_hash.encode())
    except ValueError:
        return False


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(*, db: Session, email: str, password: str) -> User:
    """Check credentials. Stores nothing on failure.

    Unknown email, wrong password and deactivated user all answer the same message after
    the same work (one bcrypt check at the same cost). An input that is not an email
    address at all (at most 254 characters) is refused before any look-up.
    """
    try:
        address = validation.email(email)
    except InvalidInput:
        raise SignInFailed(NOT_AN_EMAIL) from None
    user = db.exec(select(User).where(User.email == address)).first()
    password_ok = verify_password(password or "", user.password_hash if user else _dummy_hash())
    if user is None or not password_ok or not user.is_active or user.deleted_at is not None:
        db.rollback()
        raise SignInFailed(INVALID_CREDENTIALS)
    return user


def start_auth_session(*, db: Session, user: User) -> str:
    """Create a server-side sign-in for `user`; returns the token for the browser."""
    token = secrets.token_urlsafe(32)
    db.add(AuthSession(token_hash=_hash_token(token), user_id=user.id))
    db.commit()
    return token


def resolve_auth_session(*, db: Session, token: str | None) -> Actor | None:
    """The actor behind a browser token, or None when it is unknown, revoked, idle too long
    or older than the absolute lifetime (`AUTH_SESSION_MAX_DAYS`).

    The user is re-read every time, so a deactivation or role change takes effect on
    the very next event.
    """
    if not token:
        return None
    row = db.exec(
        select(AuthSession, User)
        .join(User, col(User.id) == AuthSession.user_id)
        .where(AuthSession.token_hash == _hash_token(token))
    ).first()
    if row is None:
        return None
    auth_session, user = row
    now = utcnow()
    settings = get_settings()
    idle_limit = timedelta(hours=settings.auth_session_idle_hours)
    if (
        auth_session.revoked_at is not None
        or now - auth_session.last_seen_at > idle_limit
        or now - auth_session.created_at > timedelta(days=settings.auth_session_max_days)
        or not user.is_active
        or user.deleted_at is not None
    ):
        return None
    if now - auth_session.last_seen_at > TOUCH_INTERVAL:
        auth_session.last_seen_at = now
        db.add(auth_session)
        db.commit()
    return Actor.from_user(user)


def token_digest(token: str) -> str:
    """What the server keeps of a browser token: the live rooms remember members by it too."""
    return _hash_token(token)


LIVE_FEED_ROLES = (AccountRole.OWNER, AccountRole.ADMIN, AccountRole.ENGINEER)


def live_feed_members(*, db: Session, account_id: int, digests: Collection[str]) -> dict[str, int | None]:
    """Which of these sign-ins may still receive `account_id`'s live queue, each with its user's team.

    A tab can sit on a live page for hours without sending anything while its sign-in
    ends (signed out elsewhere, idle expiry, deactivated, demoted to viewer, moved to
    another team); the live push asks here before every send. Read-only: unlike
    `resolve_auth_session` it never counts as activity.
    """
    if not digests:
        return {}
    now = utcnow()
    cutoff = now - timedelta(hours=get_settings().auth_session_idle_hours)
    born_after = now - timedelta(days=get_settings().auth_session_max_days)
    rows = db.exec(
        select(AuthSession.token_hash, User.team_id)
        .join(User, col(User.id) == AuthSession.user_id)
        .where(
            col(AuthSession.token_hash).in_(list(digests)),
            col(AuthSession.revoked_at).is_(None),
            col(AuthSession.last_seen_at) >= cutoff,
            col(AuthSession.created_at) >= born_after,
            User.account_id == account_id,
            col(User.is_active).is_(True),
            col(User.deleted_at).is_(None),
            col(User.account_role).in_(LIVE_FEED_ROLES),
        )
    ).all()
    return dict(rows)


def end_auth_session(*, db: Session, token: str | None) -> None:
    """Sign out: revoke the token's server-side session."""
    if not token:
        return
    auth_session = db.exec(select(AuthSession).where(AuthSession.token_hash == _hash_token(token))).first()
    if auth_session is not None and auth_session.revoked_at is None:
        auth_session.revoked_at = utcnow()
        db.add(auth_session)
        db.commit()
