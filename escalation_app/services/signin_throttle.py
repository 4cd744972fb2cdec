"""The sign-in throttle: repeated failures slow their source down, never lock a person out.

Failures are counted per client address and per (email, client address) with the
`limits` library (moving windows; in process memory on the embedded default, in Redis
when `REFLEX_REDIS_URL` is set so every worker counts the same failures). The limits are
tiered, so the wait grows with the failures: a few typos cost nothing, a guessing run
from one address waits a minute, then a quarter of an hour, then an hour. Nothing is
keyed by email alone: an attacker elsewhere cannot keep the real user (on their own
address) from signing in. Counters expire with their windows, so what is kept stays
bounded, and only a digest of the typed email is used as a key.

The client address is the connection's peer, or, when that peer is one of
`TRUSTED_PROXIES`, the nearest untrusted address in `X-Forwarded-For`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from escalation_app.settings import get_settings

# Per (email, client address): the wait grows 1 min → 15 min → 1 h.
PER_EMAIL_AND_ADDRESS = parse_many("5/minute;10/15 minutes;20/hour")
# Per client address, whatever the emails (spraying many accounts from one place).
PER_ADDRESS = parse_many("30/minute;100/15 minutes;300/hour")
KEY_PREFIX = "escalation-desk-signin"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=1)
def _limiter(storage_uri: str) -> MovingWindowRateLimiter:
    options = {"key_prefix": KEY_PREFIX} if storage_uri.startswith("redis") else {}
    return MovingWindowRateLimiter(storage_from_string(storage_uri, **options))


def limiter() -> MovingWindowRateLimiter:
    """The process's limiter, on the storage the settings choose."""
    return _limiter(get_settings().reflex_redis_url or "memory://")


def _email_key(email: str) -> str:
    # Whatever was typed, bounded: the key is a digest, never the input itself.
    return hashlib.sha256(email.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]


def _checks(email: str, address: str) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
    pair = ("pair", address, _email_key(email))
    return [(item, ("address", address)) for item in PER_ADDRESS] + [
        (item, pair) for item in PER_EMAIL_AND_ADDRESS
    ]


def wait_seconds(email: str, address: str) -> int:
    """How long this (email, address) must wait before another attempt (0: go ahead)."""
    rate = limiter()
    now = time.time()
    wait = 0.0
    for item, keys in _checks(email, address):
        if not rate.test(item, *keys):
            wait = max(wait, rate.get_window_stats(item, *keys).reset_time - now)
    return max(1, math.ceil(wait)) if wait > 0 else 0


def record_failure(email: str, address: str) -> None:
    """Count one failed attempt against the address and the (email, address) pair."""
    rate = limiter()
    for item, keys in _checks(email, address):
        rate.hit(item, *keys)


def record_success(email: str, address: str) -> None:
    """The right password from this address: its typos for this email are forgiven."""
    rate = limiter()
    for item, keys in _checks(email, address):
        if keys[0] == "pair":
            rate.clear(item, *keys)


def reset() -> None:
    """Forget every counter (tests)."""
    _limiter.cache_clear()


@lru_cache(maxsize=8)
def _trusted(spec: str) -> tuple[Network, ...]:
    networks = []
    for part in spec.split(","):
        if part.strip():
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
    return tuple(networks)


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: str | None) -> str:
    """The address a request came from, believing `X-Forwarded-For` only from trusted proxies.

    Walks the forwarded chain from the nearest hop while each hop is a trusted proxy; the
    first untrusted address is the client. Unparseable entries end the walk at the last
    trusted hop, so a forged header cannot pick the address.
    """
    trusted = _trusted(get_settings().trusted_proxies)
    current = (peer or "").strip() or "unknown"
    if not trusted or not forwarded_for:
        return current
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    while True:
        parsed = _parse(current)
        if parsed is None or not any(parsed in net for net in trusted) or not hops:
            return current
        nxt = hops.pop()
        if _parse(nxt) is None:
            return current
        current = nxt
