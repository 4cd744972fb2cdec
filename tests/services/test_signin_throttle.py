"""The sign-in throttle: per address and per (email, address), growing waits, shared through Redis."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from escalation_app.services import signin_throttle as throttle
from escalation_app.settings import get_settings
from tests.conftest import require_or_skip

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture
def settings_env(monkeypatch):
    def change(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        throttle.reset()

    yield change
    monkeypatch.undo()
    get_settings.cache_clear()
    throttle.reset()


@pytest.fixture(autouse=True)
def clean():
    throttle.reset()
    yield
    throttle.reset()


def test_the_wait_grows_with_the_failures_and_stays_with_their_source():
    waits = []
    for _ in range(22):
        waits.append(throttle.wait_seconds("morgan@northwind.example", "203.0.113.7"))
        throttle.record_failure("morgan@northwind.example", "203.0.113.7")
    assert waits[:5] == [0] * 5
    assert 0 < waits[5] <= 60 and 60 < waits[10] <= 900 and 900 < waits[20] <= 3600
    # The same email from another address, and another email from the same address: free.
    assert throttle.wait_seconds("morgan@northwind.example", "198.51.100.9") == 0
    assert throttle.wait_seconds("riley@northwind.example", "203.0.113.7") == 0


def test_a_success_forgives_that_address_its_typos_for_that_email():
    for _ in range(5):
        throttle.record_failure("alex@northwind.example", "198.51.100.1")
    assert throttle.wait_seconds("alex@northwind.example", "198.51.100.1") > 0
    throttle.record_success("alex@northwind.example", "198.51.100.1")
    assert throttle.wait_seconds("alex@northwind.example", "198.51.100.1") == 0


def test_keys_are_digests_of_whatever_was_typed():
    huge = "a" * 900_000
    throttle.record_failure(huge, "198.51.100.2")
    keys = throttle._checks(huge, "198.51.100.2")
    assert all(len(":".join(k)) < 100 for _item, k in keys)


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ("", "198.51.100.5", "203.0.113.1", "198.51.100.5"),  # nobody trusted: header ignored
        ("10.0.0.5", "198.51.100.5", "203.0.113.1", "198.51.100.5"),  # peer is no proxy of ours
        ("10.0.0.5", "10.0.0.5", "203.0.113.1", "203.0.113.1"),
        ("10.0.0.5", "10.0.0.5", "1.2.3.4, 203.0.113.1", "203.0.113.1"),  # forged left part ignored
        ("10.0.0.0/8", "10.0.0.5", "203.0.113.1, 10.0.0.9", "203.0.113.1"),  # two trusted hops
        ("10.0.0.5", "10.0.0.5", "not-an-ip", "10.0.0.5"),
        ("10.0.0.5", "10.0.0.5", "", "10.0.0.5"),
    ],
)
def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    settings_env, trusted, peer, forwarded, client
):
    settings_env(TRUSTED_PROXIES=trusted)
    assert throttle.client_address(peer, forwarded) == client


def test_with_redis_every_worker_counts_the_same_failures(settings_env):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        reason = None
    except redis.RedisError as exc:
        reason = f"Redis not reachable at {REDIS_URL}: {exc}"
    require_or_skip(reason)
    settings_env(REFLEX_REDIS_URL=f"{REDIS_URL}/14")
    address = f"203.0.113.{uuid.uuid4().int % 200}"
    email = f"{uuid.uuid4().hex}@northwind.example"
    for _ in range(5):
        throttle.record_failure(email, address)
    # Another worker: a fresh limiter on the same Redis sees the same count.
    throttle.reset()
    assert throttle.wait_seconds(email, address) > 0
    assert redis.Redis.from_url(f"{REDIS_URL}/14").keys("escalation-desk-signin*")
