"""Password hashing, sign-in, and server-side sign-in sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import func, select

from escalation_app.domain import auth
from escalation_app.domain.auth import (
    SignInFailed,
    authenticate,
    end_auth_session,
    resolve_auth_session,
    start_auth_session,
)
from escalation_app.domain.demo_data import DEMO_PASSWORD
from escalation_app.domain.models import AuthSession, User
from escalation_app.domain.types import utcnow
from escalation_app.settings import get_settings
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


def test_failures_lock_no_email_and_store_nothing(world):
    """Throttling lives in the sign-in throttle (per address); the domain keeps no failure rows."""
    tables_before = {t: world.db.exec(select(func.count()).select_from(t)).one() for t in (AuthSession, User)}
    for _ in range(30):
        with pytest.raises(SignInFailed, match="Invalid"):
            authenticate(db=world.db, email="alex@northwind.example", password="bad")
    assert (
        authenticate(db=world.db, email="alex@northwind.example", password=DEMO_PASSWORD).display_name
        == "Alex Kim"
    )
    assert {
        t: world.db.exec(select(func.count()).select_from(t)).one() for t in (AuthSession, User)
    } == tables_before


@pytest.mark.parametrize(
    "email",
    [
        "a" * 900_000 + "@northwind.example",
        "alex@northwind.example\x00",
        "not an email",
        "x" * 250 + "@a.example",
    ],
)
def test_an_input_that_is_no_email_is_refused_before_any_look_up(world, email):
    with pytest.raises(SignInFailed, match="Enter a valid email address"):
        authenticate(db=world.db, email=email, password=DEMO_PASSWORD)


def test_unknown_emails_cost_the_same_bcrypt_work_as_known_ones(world, monkeypatch):
    checked = []
    real_checkpw = auth.bcrypt.checkpw
    monkeypatch.setattr(
        auth.bcrypt, "checkpw", lambda pw, hashed: checked.append(hashed[:7]) or real_checkpw(pw, hashed)
    )
    for email in ["alex@northwind.example", "nobody@northwind.example"]:
        with pytest.raises(SignInFailed):
            authenticate(db=world.db, email=email, password="wrong password")
    known, unknown = checked
    # "$2b$04$": same algorithm and the same work factor for the dummy as for a real user.
    assert known == unknown == f"$2b${get_settings().password_hash_rounds:02d}$".encode()


def test_a_sign_in_ends_after_its_absolute_lifetime_however_active(world):
    token = start_auth_session(db=world.db, user=world.users["riley"])
    stored = world.db.exec(select(AuthSession)).one()
    assert resolve_auth_session(db=world.db, token=token) is not None
    stored.created_at = utcnow() - timedelta(days=7, minutes=1)
    stored.last_seen_at = utcnow()
    world.db.add(stored)
    world.db.commit()
    assert resolve_auth_session(db=world.db, token=token) is None
    digest = auth.token_digest(token)
    assert auth.live_feed_members(db=world.db, account_id=world.northwind.id, digests=[digest]) == {}


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
