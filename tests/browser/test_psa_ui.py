"""PSA writeback end to end: the admin form keeps the secret, the ticket gets its notes."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import expect
from sqlmodel import select

from escalation_app.domain.db import session_scope
from escalation_app.domain.models import Account, AccountIntegration
from escalation_app.domain.psa import encrypt_secret
from escalation_app.settings import get_settings
from tests.browser.test_flows import _card, _escalate
from tests.fakes.psa import FakeConnectWise

pytestmark = pytest.mark.browser


@pytest.fixture
def psa_key(app_url):
    saved = os.environ.get("PSA_ENCRYPTION_KEY")
    os.environ["PSA_ENCRYPTION_KEY"] = Fernet.generate_key().decode()
    get_settings.cache_clear()
    yield
    if saved is None:
        os.environ.pop("PSA_ENCRYPTION_KEY", None)
    else:
        os.environ["PSA_ENCRYPTION_KEY"] = saved
    get_settings.cache_clear()


def test_psa_secret_is_saved_but_never_sent_back(people, psa_key):
    admin = people.page()
    frames: list[str] = []
    admin.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    admin.goto(people.url("/admin/integrations"))
    admin.get_by_label("Email").fill("morgan@northwind.example")
    admin.get_by_label("Password").fill("escalate-demo")
    admin.get_by_role("button", name="Sign in").click()
    expect(admin.get_by_role("heading", name="PSA ticket notes")).to_be_visible()

    admin.get_by_label("PSA", exact=True).select_option("connectwise")
    admin.get_by_label("Site URL").fill("https://api-na.myconnectwise.net")
    admin.get_by_label("Company ID").fill("northwind")
    admin.get_by_label("Public key").fill("pubKEY123")
    secret = f"priv-{uuid.uuid4().hex}"
    admin.get_by_label("Private key").fill(secret)
    admin.get_by_label("Client ID").fill("3f1c7d2a-1111-2222-3333-444455556666")
    admin.get_by_role("button", name="Save PSA connection").click()
    expect(admin.get_by_text("ConnectWise PSA connection saved")).to_be_visible()

    admin.reload()
    expect(admin.get_by_label("Private key")).to_have_attribute("placeholder", "Saved — leave blank to keep")
    expect(admin.get_by_label("Private key")).to_have_value("")
    expect(admin.get_by_label("Company ID")).to_have_value("northwind")
    assert secret not in "\n".join(frames)
    with session_scope() as db:
        row = db.exec(select(AccountIntegration).join(Account).where(Account.name == "Northwind MSP")).one()
        assert row.psa_secret_encrypted and secret not in row.psa_secret_encrypted

    # A bad URL is refused with a message and changes nothing.
    admin.get_by_label("Site URL").fill("http://insecure.example.com")
    admin.get_by_role("button", name="Save PSA connection").click()
    expect(admin.get_by_text(re.compile(r"https", re.I)).last).to_be_visible()
    admin.reload()
    expect(admin.get_by_label("Site URL")).to_have_value("https://api-na.myconnectwise.net")


def test_halo_outcome_and_authorisation_server_are_kept(people, psa_key):
    admin = people.signed_in("morgan@northwind.example", "/admin/integrations")
    expect(admin.get_by_role("heading", name="PSA ticket notes")).to_be_visible()
    admin.get_by_label("PSA", exact=True).select_option("halopsa")
    admin.get_by_label("Base URL").fill("https://northwind.halopsa.com")
    admin.get_by_label("Client secret").fill(f"halo-{uuid.uuid4().hex}")
    admin.get_by_label("Client ID").fill("halo-client-1")
    admin.get_by_label("Note outcome (ID or name, optional)").fill("Internal Note")
    admin.get_by_label("Authorisation server URL (optional)").fill("http://auth.haloservicedesk.com")
    admin.get_by_role("button", name="Save PSA connection").click()
    # A plain-http authorisation server would receive the secret: refused, nothing saved.
    expect(admin.get_by_text("The authorisation server URL must start with https://.")).to_be_visible()
    admin.get_by_label("Authorisation server URL (optional)").fill("https://auth.haloservicedesk.com/")
    admin.get_by_role("button", name="Save PSA connection").click()
    expect(admin.get_by_text("HaloPSA connection saved")).to_be_visible()

    admin.reload()
    expect(admin.get_by_label("Note outcome (ID or name, optional)")).to_have_value("Internal Note")
    expect(admin.get_by_label("Authorisation server URL (optional)")).to_have_value(
        "https://auth.haloservicedesk.com"
    )
    with session_scope() as db:
        row = db.exec(select(AccountIntegration).join(Account).where(Account.name == "Northwind MSP")).one()
        assert (row.psa_outcome, row.psa_auth_url) == ("Internal Note", "https://auth.haloservicedesk.com")
        row.psa_type = None
        db.add(row)
        db.commit()


def test_escalation_and_pick_up_land_in_the_ticket(people, psa_key):
    with FakeConnectWise(tickets={4711}) as fake:
        # Point Northwind at the local fake (validation wants https, so write the row directly).
        with session_scope() as db:
            account = db.exec(select(Account).where(Account.name == "Northwind MSP")).one()
            row = db.exec(
                select(AccountIntegration).where(AccountIntegration.account_id == account.id)
            ).first()
            row = row or AccountIntegration(account_id=account.id)
            row.psa_type, row.psa_url, row.psa_client_id = "connectwise", fake.url, fake.client_id
            row.psa_company_id, row.psa_public_key = fake.company_id, fake.public_key
            row.psa_secret_encrypted = encrypt_secret(fake.private_key)
            db.add(row)
            db.commit()
        try:
            summary = f"Scanner to email fails {uuid.uuid4().hex[:6]}"
            engineer = people.signed_in("alex@northwind.example", "/sessions")
            engineer.get_by_role("button", name="New session").click()
            engineer.get_by_label("Problem summary").fill(summary)
            engineer.get_by_label("PSA ticket").fill("4711")
            engineer.get_by_role("button", name="Create session").click()
            expect(engineer.get_by_role("heading", name=summary)).to_be_visible()
            engineer.get_by_label("What I tried").fill("Checked the SMTP relay settings")
            engineer.get_by_label("Result").fill("Relay refuses the copier")
            engineer.get_by_role("button", name="Add step").click()
            expect(engineer.get_by_text("Checked the SMTP relay settings")).to_be_visible()
            _escalate(engineer, "Copier cannot relay through 365.")

            senior = people.signed_in("riley@northwind.example", "/escalations")
            _card(senior, summary).get_by_role("button", name="Pick up").click()
            senior.wait_for_url(re.compile(r"/handoffs/"))
            expect(senior.get_by_label("PSA ticket note")).to_contain_text(
                "Posted to PSA ticket #4711 ✓", timeout=10_000
            )
            # Managers also see what the notifications did (no SMTP in this harness).
            expect(senior.get_by_text("Notified: email skipped (SMTP not configured)")).to_be_visible()
            senior.reload()
            expect(senior.get_by_label("PSA ticket note")).to_contain_text("pick-up note ✓", timeout=10_000)
            texts = [n.text for n in fake.notes if n.ticket == 4711]
            assert any("Checked the SMTP relay settings" in t and "Copier cannot relay" in t for t in texts)
            assert any("Picked up by Riley Chen" in t for t in texts)
            assert all(n.body.get("internalAnalysisFlag") is True for n in fake.notes)
        finally:
            with session_scope() as db:
                account = db.exec(select(Account).where(Account.name == "Northwind MSP")).one()
                row = db.exec(
                    select(AccountIntegration).where(AccountIntegration.account_id == account.id)
                ).one()
                row.psa_type = None
                db.add(row)
                db.commit()
