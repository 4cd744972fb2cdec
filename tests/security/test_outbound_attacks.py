"""Test connection as an attacker uses it: a PSA URL that means this server itself.

A listener on 127.0.0.1 counts connections: every notation must be refused before one
is made. The PSA row is written directly (saving refuses these URLs too, checked first),
as an attacker who got past the save check, or a DNS name that later moved, would have it.
"""

from __future__ import annotations

import socket

import pytest
from cryptography.fernet import Fernet
from sqlmodel import Session, select

from escalation_app.domain.models import Account, AccountIntegration
from escalation_app.domain.psa import encrypt_secret
from escalation_app.state.integrations import IntegrationsState
from tests.security.conftest import Tab, is_error, toast_says

NOTATIONS = [
    "127.0.0.1",
    "127.1",
    "0x7f.1",
    "0x7f000001",
    "2130706433",
    "017700000001",
    "127.0.0.2",
    "localhost",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
]


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(32)
    server.setblocking(False)

    def accepted() -> int:
        count = 0
        while True:
            try:
                conn, _ = server.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    yield server.getsockname()[1], accepted
    server.close()


def point_psa_at(app_engine, url: str | None) -> None:
    with Session(app_engine) as db:
        account = db.exec(select(Account).where(Account.name == "Northwind MSP")).one()
        row = db.exec(select(AccountIntegration).where(AccountIntegration.account_id == account.id)).first()
        row = row or AccountIntegration(account_id=account.id)
        if url is None:
            row.psa_type = row.psa_url = row.psa_client_id = row.psa_secret_encrypted = None
            row.psa_company_id = row.psa_public_key = None
        else:
            row.psa_type, row.psa_url, row.psa_client_id = "connectwise", url, "client-1"
            row.psa_company_id, row.psa_public_key = "northwind", "pub"
            row.psa_secret_encrypted = encrypt_secret("private")
        db.add(row)
        db.commit()


async def test_every_notation_of_loopback_is_refused_by_save_and_by_test_connection(
    live, sign_in, setting, app_engine, listener
):
    port, accepted = listener
    setting("PSA_ENCRYPTION_KEY", Fernet.generate_key().decode())
    setting("OUTBOUND_ALLOW_PRIVATE_ADDRESSES", "false")
    token = sign_in("riley@northwind.example")
    try:
        async with Tab(live, token, "/admin/integrations") as tab:
            for host in NOTATIONS:
                url = f"https://{host}:{port}"
                form = {
                    "psa_type": "connectwise",
                    "psa_url": url,
                    "psa_client_id": "client-1",
                    "psa_company_id": "northwind",
                    "psa_public_key": "pub",
                    "psa_secret": "private",
                }
                toasts = await tab.send(IntegrationsState, "save_psa", form_data=form)
                assert toast_says(toasts, "needs a host name"), (host, toasts)

                point_psa_at(app_engine, url)
                toasts = await tab.send(IntegrationsState, "test_psa")
                assert toast_says(toasts, "InternalAddressRefused") or toast_says(toasts, "Invalid"), (
                    host,
                    toasts,
                )
                assert all(is_error(t) for t in toasts), (host, toasts)
                assert accepted() == 0, host

            # Positive control: allowed private addresses (an on-premises PSA) do connect.
            setting("OUTBOUND_ALLOW_PRIVATE_ADDRESSES", "true")
            point_psa_at(app_engine, f"https://127.1:{port}")
            toasts = await tab.send(IntegrationsState, "test_psa")
            assert toasts and not toast_says(toasts, "InternalAddressRefused")
            assert accepted() >= 1
    finally:
        point_psa_at(app_engine, None)
