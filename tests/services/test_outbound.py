"""Outbound requests (PSA, Slack, Teams) reach no internal address, however it is written.

Real sockets: a listener on 127.0.0.1 records whether anything connected to it, so a
refusal that still connected would fail the test.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx
import pytest

from escalation_app.services import outbound, webhooks


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1 that counts connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.setblocking(False)
    port = server.getsockname()[1]

    def accepted() -> int:
        count = 0
        while True:
            try:
                conn, _ = server.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    yield port, accepted
    server.close()


LOOPBACK_FORMS = [
    "127.0.0.1",
    "127.1",
    "0x7f.1",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "127.0.0.255",
    "localhost",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
]


@pytest.mark.parametrize("host", LOOPBACK_FORMS)
async def test_every_notation_of_loopback_is_refused_without_connecting(listener, host):
    port, accepted = listener
    async with httpx.AsyncClient(transport=outbound.transport(allow_private=False), timeout=5) as client:
        with pytest.raises(outbound.InternalAddressRefused, match="loopback"):
            await client.get(f"http://{host}:{port}/")
    await asyncio.sleep(0)
    assert accepted() == 0


@pytest.mark.parametrize("host", ["0177.0.0.1", "0x7f.0.0.0x1"])
async def test_octal_and_mixed_notations_never_get_a_connection(listener, host):
    # httpx refuses some spellings as invalid URLs before any look-up; either way no request.
    port, accepted = listener
    async with httpx.AsyncClient(transport=outbound.transport(allow_private=False), timeout=5) as client:
        with pytest.raises((outbound.InternalAddressRefused, httpx.InvalidURL)):
            await client.get(f"http://{host}:{port}/")
    assert accepted() == 0


async def test_loopback_ipv6_is_refused():
    async with httpx.AsyncClient(transport=outbound.transport(allow_private=False), timeout=5) as client:
        with pytest.raises(outbound.InternalAddressRefused, match="loopback"):
            await client.get("http://[::1]:9/")


@pytest.mark.parametrize(
    ("address", "allowed_with_setting"),
    [
        ("169.254.169.254", False),  # cloud metadata: never
        ("fe80::1", False),
        ("224.0.0.1", False),
        ("ff02::1", False),
        ("0.0.0.0", False),
        ("240.0.0.1", False),
        ("::", False),
        ("10.0.0.1", True),
        ("172.16.5.4", True),
        ("192.168.1.1", True),
        ("100.64.0.1", True),
        ("fd00::1", True),
        ("127.0.0.1", True),
        ("::ffff:169.254.169.254", False),
        ("2002:7f00:1::", True),  # 6to4 wrapping 127.0.0.1
    ],
)
def test_address_rules(address, allowed_with_setting):
    ip = ipaddress.ip_address(address)
    assert outbound.refusal(ip, allow_private=False) is not None
    assert (outbound.refusal(ip, allow_private=True) is None) is allowed_with_setting


def test_public_addresses_pass():
    for address in ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "1.1.1.1"]:
        assert outbound.refusal(ipaddress.ip_address(address), allow_private=False) is None


async def test_a_name_resolving_to_any_internal_address_is_refused(monkeypatch):
    async def answers(host, port, type):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(outbound.anyio, "getaddrinfo", answers)
    with pytest.raises(outbound.InternalAddressRefused, match="private"):
        await outbound.checked_addresses("psa.example.com", 443, allow_private=False)


async def test_the_setting_allows_a_private_destination(listener):
    port, accepted = listener
    async with httpx.AsyncClient(transport=outbound.transport(allow_private=True), timeout=2) as client:
        with pytest.raises(httpx.HTTPError):  # the listener never answers HTTP
            await client.get(f"http://127.0.0.1:{port}/")
    assert accepted() == 1


async def test_webhook_posts_are_checked_and_the_reason_is_a_short_line(listener, monkeypatch):
    port, accepted = listener
    monkeypatch.setattr(
        outbound, "get_settings", lambda: type("S", (), {"outbound_allow_private_addresses": False})()
    )
    with pytest.raises(webhooks.WebhookError) as failure:
        await webhooks.post(f"http://0x7f.1:{port}/hook", {"text": "x"})
    assert "loopback" in str(failure.value) and len(str(failure.value)) <= outbound.STATUS_LINE_MAX
    assert accepted() == 0


def test_status_line_is_short_printable_and_single_line():
    line = outbound.status_line("PSA refused (HTTP 400: <html>\n\x00\x1b[31m" + "x" * 500)
    assert "\n" not in line and "\x00" not in line and "\x1b" not in line
    assert len(line) <= outbound.STATUS_LINE_MAX
