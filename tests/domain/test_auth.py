"""Password hashing, sign-in with lockout, and server-side sign-in sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from escalation_app.domain import auth
from escalation_app.domain.auth import (
    SignInFailed,
    authenticate,
    end_auth_session,
    resolve_auth_session,
    start_auth_session,
)
from escalation_app.domain.demo_data import DEMO_PASSWORD
from escalation_app.domain.models import AuthSession, LoginAttempt, User
from escalation_app.domain.types import utcnow
from tests.factories import World


@pytest.fixture
def world(db) -> World:
    return World(db)


def test_passwords_are_hashed_with_bcrypt(world):
    user = world.users["alex"]
    assert user.password_hash.startswith("$2b$") and DEMO_PASSWORD not in user.password_hash
    assert auth.verify_password(DEMO_PASSWORD, user.password_hash)
    assert not auth.verify_password("wrong", user.password_hash)


def test_sign_in_is_case_insensitive_on_email(world):
    assert (
        authenticate(db=world.db, email="  ALEX@Northwind.Example ", password=DEMO_PASSWORD).display_name
        == "Alex Kim"
    )


@pytest.mark.parametrize("email", ["alex@northwind.example", "nobody@northwind.example"])
def test_wrong_credentials_get_the_same_message(world, email):
    with pytest.raises(SignInFailed) as err:
        authenticate(db=world.db, email=email, password="nope")
    assert err.value.message == "Invalid email or password"


def test_deactivated_user_cannot_sign_in(world):
    user = world.users["sam"]
    user.is_active = False
    world.db.add(user)
    world.db.commit()
    with pytest.raises(SignInFailed, match="Invalid email or password"):
        authenticate(db=world.db, email="sam@northwind.example", password=DEMO_PASSWORD)


def test_ten_failures_lock_the_email_for_fifteen_minutes(world):
    for _ in range(10):
        with pytest.raises(SignInFailed, match="Invalid"):
            authenticate(db=world.db, email="alex@northwind.example", password="bad")
    with pytest.raises(SignInFailed, match="Too many failed sign-in attempts"):
        authenticate(db=world.db, email="alex@northwind.example", password=DEMO_PASSWORD)
    # Other emails are unaffected.
    authenticate(db=world.db, email="sam@northwind.example", password=DEMO_PASSWORD)
    # Once the failures are older than the window, the right password works again.
    for attempt in world.db.exec(select(LoginAttempt)).all():
        attempt.created_at = utcnow() - timedelta(minutes=16)
        world.db.add(attempt)
    world.db.commit()
    authenticate(db=world.db, email="alex@northwind.example", password=DEMO_PASSWORD)


def test_auth_session_lifecycle(world):
    user = world.users["riley"]
    token = start_auth_session(db=world.db, user=user)
    stored = world.db.exec(select(AuthSession)).one()
    assert stored.token_hash != token  # only a hash is stored
    actor = resolve_auth_session(db=world.db, token=token)
    assert actor.id == user.id and actor.role == "admin"
    assert resolve_auth_session(db=world.db, token="forged") is None
    assert resolve_auth_session(db=world.db, token=None) is None
    end_auth_session(db=world.db, token=token)
    assert resolve_auth_session(db=world.db, token=token) is None


def test_idle_auth_session_expires(world):
    token = start_auth_session(db=world.db, user=world.users["riley"])
    stored = world.db.exec(select(AuthSession)).one()
    stored.last_seen_at = utcnow() - timedelta(hours=8, minutes=1)
    world.db.add(stored)
    world.db.commit()
    assert resolve_auth_session(db=world.db, token=token) is None


def test_deactivation_ends_existing_sign_ins(world):
    user = world.users["sam"]
    token = start_auth_session(db=world.db, user=user)
    user.is_active = False
    world.db.add(user)
    world.db.commit()
    assert resolve_auth_session(db=world.db, token=token) is None


def test_password_rules():
    auth.check_password_rules("long enough")
    with pytest.raises(Exception, match="at least 8"):
        auth.check_password_rules("short")
    with pytest.raises(Exception, match="72 bytes"):
        auth.check_password_rules("é" * 40)


def test_demo_data_is_idempotent(world):
    from escalation_app.domain.demo_data import load_demo_data

    count = len(world.db.exec(select(User)).all())
    assert load_demo_data(world.db) is False
    assert len(world.db.exec(select(User)).all()) == count == 7
