"""The one HTTP client for requests to addresses an admin typed (PSA, Slack, Teams).

A URL check when it is saved cannot stop server-side request forgery: `127.1`,
`0x7f.1`, `2130706433`, `0177.0.0.1` and `[::ffff:127.0.0.1]` all mean 127.0.0.1, and a
host name can resolve anywhere, differently on every look-up. So every connection is
checked where it is made: the host is resolved here, every address it resolves to is
checked, and the socket connects to that checked address (TLS still verifies the host
name), so a rebinding DNS answer cannot slip in between check and connect.

Refused always: link-local (cloud metadata at 169.254.169.254), multicast, unspecified
and reserved ranges. Refused unless `OUTBOUND_ALLOW_PRIVATE_ADDRESSES` is set (an
on-premises PSA on the local network): private ranges (RFC 1918, unique-local, shared)
and loopback. Redirects are never followed and proxy variables are ignored, so the
check sees the real destination.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

import anyio
import httpcore
import httpx

from escalation_app.settings import get_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
STATUS_LINE_MAX = 160
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e\u00a0-\u024f]")


class InternalAddressRefused(httpx.ConnectError):
    """The destination resolved to an address outbound requests may not reach."""


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why `address` may not be connected to, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and friends are the IPv4 address they embed.
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return refusal(embedded, allow_private=allow_private)
    if address.is_unspecified:
        return "a reserved address"
    if address.is_loopback:
        return None if allow_private else "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return None if allow_private else "a private address"
    return None


async def checked_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Resolve `host` and return its addresses, or raise InternalAddressRefused.

    Every address must pass: a name resolving to one public and one internal address
    is refused, whichever one the connection would have picked.
    """
    try:
        infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpx.ConnectError(f"Could not resolve {host}") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        reason = refusal(address, allow_private=allow_private)
        if reason is not None:
            raise InternalAddressRefused(f"{host} resolves to {reason}; outbound requests may not go there")
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise httpx.ConnectError(f"Could not resolve {host}")
    return addresses


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to checked addresses."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, allow_private=self._allow_private)
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise InternalAddressRefused("Unix sockets are not an outbound destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def transport(*, allow_private: bool | None = None) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every connection goes through the address check."""
    if allow_private is None:
        allow_private = get_settings().outbound_allow_private_addresses
    checked = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx builds its httpcore pool without a way to pass a network backend; the pool
    # takes one, so give it ours (httpcore's documented extension point).
    checked._pool._network_backend = _CheckedBackend(allow_private)  # type: ignore[attr-defined]
    return checked


def client(
    timeout: float, *, transport_override: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The AsyncClient for PSA and webhook requests: checked addresses, no redirects, no proxies."""
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        transport=transport_override or transport(),
    )


def status_line(text: str, limit: int = STATUS_LINE_MAX) -> str:
    """A short, single-line, printable version of a message that may quote a remote answer."""
    cleaned = " ".join(_NOT_PRINTABLE.sub(" ", text or "").split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"
