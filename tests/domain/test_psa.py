"""The PSA connection (validation, permissions, the encrypted secret) and the note texts.

Database tests run on SQLite and PostgreSQL (the `db` fixture).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat

import pytest
from cryptography.fernet import Fernet
from sqlmodel import select

from escalation_app.domain import psa
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import AccountIntegration, SessionHandoff
from escalation_app.domain.psa import (
    PsaSecretUnreadable,
    claim_note,
    clear_psa_connection,
    escalation_note,
    get_psa_settings,
    load_psa_credentials,
    psa_status_line,
    save_psa_connection,
    ticket_number,
    validate_psa_url,
)
from escalation_app.infra import secrets as key_store
from tests.factories import World
from tests.fakes.smtp import app_settings

KEY = Fernet.generate_key().decode()
CW_PRIVATE = "cw-PRIVATE-key-0123456789"
HALO_SECRET = "halo-client-SECRET-abcdef"


@pytest.fixture
def world(db) -> World:
    with app_settings(psa_encryption_key=KEY):
        world = World(db)
        db.commit()
        yield world


def save_cw(world: World, who: str = "riley", **overrides) -> psa.PsaSettings:
    values = {
        "psa_type": "connectwise",
        "url": "https://api-na.myconnectwise.net",
        "client_id": "3f1c7d2a-1111-2222-3333-444455556666",
        "company_id": "northwind",
        "public_key": "PUBkey123",
        "secret": CW_PRIVATE,
        **overrides,
    }
    return save_psa_connection(db=world.db, actor=world.actor(who), **values)


def save_halo(world: World, who: str = "riley", **overrides) -> psa.PsaSettings:
    values = {
        "psa_type": "halopsa",
        "url": "https://northwind.halopsa.com",
        "client_id": "halo-client-1",
        "secret": HALO_SECRET,
        "tenant": "northwind",
        **overrides,
    }
    return save_psa_connection(db=world.db, actor=world.actor(who), **values)


def row(world: World) -> AccountIntegration | None:
    world.db.expire_all()
    return world.db.exec(
        select(AccountIntegration).where(AccountIntegration.account_id == world.northwind.id)
    ).first()


# --- Saving and reading -------------------------------------------------------------


def test_connectwise_is_saved_with_the_secret_encrypted_and_never_read_back(world):
    saved = save_cw(world, url="https://api-na.myconnectwise.net/v4_6_release/apis/3.0/")

    stored = row(world)
    assert stored.psa_type == "connectwise"
    assert stored.psa_url == "https://api-na.myconnectwise.net"  # the API path is ours to add
    assert stored.psa_secret_encrypted and CW_PRIVATE not in stored.psa_secret_encrypted
    assert Fernet(KEY.encode()).decrypt(stored.psa_secret_encrypted.encode()).decode() == CW_PRIVATE

    shown = get_psa_settings(db=world.db, actor=world.actor("morgan"))
    assert shown == saved
    assert (shown.psa_type, shown.label, shown.has_secret, shown.secret_label) == (
        "connectwise",
        "ConnectWise PSA",
        True,
        "private key",
    )
    assert (shown.company_id, shown.public_key, shown.tenant) == ("northwind", "PUBkey123", "")
    assert shown.updated_by_name == "Riley Chen"
    assert CW_PRIVATE not in repr(dataclasses.asdict(shown))

    credentials = load_psa_credentials(world.db, world.northwind.id)
    assert credentials.secret == CW_PRIVATE
    assert CW_PRIVATE not in repr(credentials)  # never in logs


def test_halopsa_is_saved_and_the_other_types_fields_are_dropped(world):
    save_cw(world)
    shown = save_halo(world, url="https://northwind.halopsa.com/api", company_id="x", public_key="y")
    assert (shown.psa_type, shown.url, shown.client_id, shown.tenant, shown.has_secret) == (
        "halopsa",
        "https://northwind.halopsa.com",
        "halo-client-1",
        "northwind",
        True,
    )
    assert (shown.company_id, shown.public_key) == ("", "")
    assert HALO_SECRET not in row(world).psa_secret_encrypted
    assert load_psa_credentials(world.db, world.northwind.id).secret == HALO_SECRET


def test_blank_secret_keeps_the_saved_one(world):
    save_cw(world)
    token = row(world).psa_secret_encrypted
    shown = save_cw(world, secret="", public_key="NEWpub", client_id="new-client")
    assert shown.has_secret and shown.public_key == "NEWpub"
    assert row(world).psa_secret_encrypted == token
    save_cw(world, secret="   ")
    assert load_psa_credentials(world.db, world.northwind.id).secret == CW_PRIVATE
    # A new secret replaces it.
    save_cw(world, secret="rotated-private")
    assert load_psa_credentials(world.db, world.northwind.id).secret == "rotated-private"


def test_changed_url_or_type_needs_the_secret_again(world):
    save_cw(world)
    # Otherwise a new URL would carry the saved secret to another server.
    with pytest.raises(InvalidInput, match="Enter the private key again"):
        save_cw(world, url="https://evil.example.com", secret="")
    with pytest.raises(InvalidInput, match="Enter the client secret again"):
        save_halo(world, secret=None)
    assert row(world).psa_url == "https://api-na.myconnectwise.net"
    assert row(world).psa_type == "connectwise"


def test_first_save_needs_a_secret(world):
    with pytest.raises(InvalidInput, match="Private key is required"):
        save_cw(world, secret="")
    with pytest.raises(InvalidInput, match="Client secret is required"):
        save_halo(world, secret=None)
    assert row(world) is None


def test_clear_removes_the_connection_and_its_secret(world):
    save_halo(world)
    assert clear_psa_connection(db=world.db, actor=world.actor("morgan")).configured is False
    stored = row(world)
    assert (stored.psa_type, stored.psa_url, stored.psa_secret_encrypted, stored.psa_tenant) == (None,) * 4
    assert get_psa_settings(db=world.db, actor=world.actor("riley")).configured is False
    assert load_psa_credentials(world.db, world.northwind.id) is None
    # Clearing nothing is fine.
    clear_psa_connection(db=world.db, actor=world.actor("morgan"))


def test_webhook_urls_survive_psa_changes(world):
    world.db.add(
        AccountIntegration(
            account_id=world.northwind.id, slack_webhook_url="https://hooks.slack.com/services/T/B/x"
        )
    )
    world.db.commit()
    save_cw(world)
    clear_psa_connection(db=world.db, actor=world.actor("riley"))
    assert row(world).slack_webhook_url == "https://hooks.slack.com/services/T/B/x"


# --- Permissions --------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alex", "val"])
def test_engineers_and_viewers_cannot_see_or_change_the_connection(world, who):
    save_cw(world)
    before = row(world).model_dump()
    with pytest.raises(PermissionDenied):
        get_psa_settings(db=world.db, actor=world.actor(who))
    with pytest.raises(PermissionDenied):
        save_halo(world, who=who)
    with pytest.raises(PermissionDenied):
        clear_psa_connection(db=world.db, actor=world.actor(who))
    with pytest.raises(PermissionDenied):
        psa.require_psa_credentials(db=world.db, actor=world.actor(who))
    assert row(world).model_dump() == before


def test_accounts_are_separate(world):
    save_cw(world)
    contoso_admin = world.actor("jordan")
    assert get_psa_settings(db=world.db, actor=contoso_admin).configured is False
    save_psa_connection(
        db=world.db,
        actor=contoso_admin,
        psa_type="halopsa",
        url="https://contoso.halopsa.com",
        client_id="c",
        secret="contoso-secret",
    )
    assert load_psa_credentials(world.db, world.northwind.id).secret == CW_PRIVATE
    assert get_psa_settings(db=world.db, actor=world.actor("riley")).psa_type == "connectwise"

    session_id = world.new_session()
    handoff = create_handoff(db=world.db, actor=world.actor("alex"), session_id=session_id, intent="escalate")
    world.db.commit()
    assert psa_status_line(db=world.db, actor=world.actor("sam"), handoff_id=handoff.id) == ""
    with pytest.raises(NotFound):
        psa_status_line(db=world.db, actor=contoso_admin, handoff_id=handoff.id)
    with pytest.raises(NotFound):
        psa_status_line(db=world.db, actor=contoso_admin, handoff_id="nope")


# --- Validation ---------------------------------------------------------------------


BAD_CONNECTWISE = (
    ({"psa_type": "autotask"}, "Choose ConnectWise PSA or HaloPSA."),
    ({"psa_type": None}, "Choose ConnectWise PSA or HaloPSA."),
    ({"url": ""}, "The ConnectWise PSA URL is required."),
    ({"url": "http://api-na.myconnectwise.net"}, "must start with https://"),
    ({"url": "ftp://api-na.myconnectwise.net"}, "must start with https://"),
    ({"url": "https://localhost"}, "needs a host name"),
    ({"url": "https://10.0.0.5"}, "needs a host name"),
    ({"url": "https://[::1]"}, "needs a host name"),
    ({"url": "https://exa_mple.com"}, "needs a host name"),
    ({"url": "https://user:pw@api-na.myconnectwise.net"}, "must not contain a user name or password"),
    ({"url": "https://api-na.myconnectwise.net?x=1"}, "must not contain ? or #"),
    ({"url": "https://api-na.myconnectwise.net/login"}, "must be the site only"),
    ({"url": "https://api-na.myconnectwise.net:99999"}, "is not a valid URL"),
    ({"url": "https://api na.myconnectwise.net"}, "must not contain spaces"),
    ({"url": "https://a.example.com/" + "x" * 500}, "at most 500 characters"),
    ({"client_id": ""}, "Client ID is required."),
    ({"client_id": "a b"}, "Client ID must not contain spaces."),
    ({"client_id": "c" * 129}, "Client ID must be at most 128 characters."),
    ({"company_id": ""}, "Company ID is required."),
    ({"company_id": "north:wind"}, "Company ID must not contain “:”."),
    ({"public_key": ""}, "Public key is required."),
    ({"public_key": "a:b"}, "Public key must not contain “:”."),
    ({"secret": "s" * 513}, "Private key must be at most 512 characters."),
    ({"secret": "line\nbreak"}, "Private key must not contain spaces."),
)
BAD_HALOPSA = (
    ({"url": "https://halo"}, "The HaloPSA URL needs a host name"),
    ({"tenant": "north wind"}, "Tenant must not contain spaces."),
    ({"tenant": "-bad"}, "Tenant may contain only letters"),
    ({"tenant": "t" * 121}, "Tenant must be at most 120 characters."),
    ({"outcome": "o" * 65}, "The note outcome must be at most 64 characters."),
    ({"outcome": "0"}, "The note outcome ID must be a positive number."),
    ({"outcome": "99999999999"}, "The note outcome ID must be a positive number."),
    ({"outcome": "Private\x07Note"}, "The note outcome must be an outcome ID or name."),
    (
        {"auth_url": "http://auth.haloservicedesk.com"},
        "The authorisation server URL must start with https://",
    ),
    ({"auth_url": "https://10.1.1.1/auth"}, "The authorisation server URL needs a host name"),
    ({"auth_url": "https://auth.example.com/?tenant=x"}, "must not contain ? or #"),
    ({"secret": ""}, "Client secret is required."),
)


def test_bad_input_is_refused_with_a_clear_message_and_nothing_changes(world):
    # One database setup for all the cases (they each change nothing).
    for overrides, message in BAD_HALOPSA:
        with pytest.raises(InvalidInput) as caught:
            save_halo(world, **overrides)
        assert message in caught.value.message, overrides
        assert row(world) is None
    save_halo(world)
    before = row(world).model_dump()
    for overrides, message in BAD_CONNECTWISE:
        with pytest.raises(InvalidInput) as caught:
            save_cw(world, **overrides)
        assert message in caught.value.message, overrides
        assert row(world).model_dump() == before


@pytest.mark.parametrize(
    ("kind", "given", "stored"),
    [
        ("connectwise", " https://API-NA.MyConnectWise.net/ ", "https://api-na.myconnectwise.net"),
        ("connectwise", "https://cw.example.com:8443/v4_6_release/apis/3.0", "https://cw.example.com:8443"),
        ("connectwise", "https://cw.example.com:443", "https://cw.example.com"),
        ("halopsa", "https://acme.halopsa.com/auth/", "https://acme.halopsa.com"),
        ("halopsa", "https://helpdesk.acme.com/halo/api", "https://helpdesk.acme.com/halo"),
        # The login site works too (the API host is derived); a cloud codebase path is dropped.
        ("connectwise", "https://na.myconnectwise.net/v2025_1/apis/3.0/", "https://na.myconnectwise.net"),
    ],
)
def test_urls_are_normalised(kind, given, stored):
    assert validate_psa_url(given, kind) == stored


def test_tenant_is_optional_for_halopsa(world):
    assert save_halo(world, tenant="").tenant == ""


# --- The encryption key -------------------------------------------------------------


def test_without_a_key_postgresql_refuses_and_sqlite_uses_a_generated_key_file(world, tmp_path, monkeypatch):
    monkeypatch.setattr(key_store, "PSA_KEY_FILE", tmp_path / ".psa-key")
    # The app's DATABASE_URL decides: a PostgreSQL deployment (maybe several servers)
    # must configure the key; the SQLite laptop default generates one.
    with (
        app_settings(psa_encryption_key="", database_url="postgresql+psycopg://x@127.0.0.1/x"),
        pytest.raises(InvalidInput, match="PSA_ENCRYPTION_KEY is not configured"),
    ):
        save_cw(world)
    assert row(world) is None
    assert not key_store.PSA_KEY_FILE.exists()

    with app_settings(psa_encryption_key="", database_url="sqlite:///unused.db"):
        save_cw(world)
        key_file = key_store.PSA_KEY_FILE
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        key = key_file.read_bytes().strip()
        token = row(world).psa_secret_encrypted
        assert Fernet(key).decrypt(token.encode()).decode() == CW_PRIVATE
        # Reused, not regenerated.
        save_cw(world, secret="second")
        assert key_file.read_bytes().strip() == key
        assert load_psa_credentials(world.db, world.northwind.id).secret == "second"
    assert list(tmp_path.iterdir()) == [key_file]  # no temporary file left behind


def test_invalid_key_is_a_clear_error(world):
    with (
        app_settings(psa_encryption_key="not-a-fernet-key"),
        pytest.raises(InvalidInput, match="PSA_ENCRYPTION_KEY is not a valid Fernet key"),
    ):
        save_cw(world)
    assert row(world) is None


def test_keys_rotate_and_a_lost_key_is_reported(world):
    save_cw(world)
    new = Fernet.generate_key().decode()
    with app_settings(psa_encryption_key=f"{new},{KEY}"):
        assert load_psa_credentials(world.db, world.northwind.id).secret == CW_PRIVATE
        save_cw(world, secret="after-rotation")
        assert Fernet(new.encode()).decrypt(row(world).psa_secret_encrypted.encode()) == b"after-rotation"
    with (
        app_settings(psa_encryption_key=Fernet.generate_key().decode()),
        pytest.raises(PsaSecretUnreadable, match="cannot be decrypted"),
    ):
        load_psa_credentials(world.db, world.northwind.id)


# --- Note texts ---------------------------------------------------------------------


def test_escalation_note_text():
    handoff = SessionHandoff(
        session_id=1,
        account_id=1,
        handed_off_by_id=1,
        intent="escalate",
        priority="urgent",
        engineer_notes="  Customer says it broke after the\nfirewall change.  ",
        snapshot={"problem_summary": "VPN down", "client_name": "Acme"},
    )
    steps = [
        {"position": 1, "tried": "Restarted   the tunnel", "result": "Still down", "skipped": False},
        {"position": 2, "tried": "Rebooted the firewall", "result": "", "skipped": True},
    ]
    text = escalation_note(
        handoff, None, steps, "Likely the new ACL.", escalated_by="Alex Kim", link="https://d/h/1"
    )
    assert text == (
        "Escalated in Escalation Desk by Alex Kim. Priority: Urgent.\n"
        "Problem: VPN down\n"
        "Client: Acme\n"
        "\n"
        "Steps tried (2):\n"
        "1. Restarted the tunnel → Still down\n"
        "2. Rebooted the firewall (skipped) → no result recorded\n"
        "\n"
        "Engineer notes:\n"
        "Customer says it broke after the\nfirewall change.\n"
        "\n"
        "AI summary:\n"
        "Likely the new ACL.\n"
        "\n"
        "Handoff: https://d/h/1"
    )
    bare_handoff = SessionHandoff(session_id=1, account_id=1, handed_off_by_id=1, intent="escalate")
    bare = escalation_note(bare_handoff, None, [], None)
    assert "Steps tried: none recorded." in bare
    assert "Engineer notes: none." in bare
    assert bare.endswith("AI summary: not available.")


def test_escalation_note_is_bounded():
    handoff = SessionHandoff(
        session_id=1, account_id=1, handed_off_by_id=1, intent="escalate", engineer_notes="n" * 50_000
    )
    steps = [{"position": i, "tried": "t" * 1000, "result": "r" * 1000} for i in range(1, 100)]
    text = escalation_note(handoff, None, steps, "s" * 50_000)
    assert len(text) <= psa.NOTE_MAX
    assert text.endswith("AI summary:\n" + "s" * (psa.NOTE_SUMMARY_MAX - 1) + "…")
    assert re.search(r"\(\d+ more steps not shown\)", text)
    assert "n" * 100 in text


def test_claim_note_and_ticket_numbers():
    assert claim_note("Riley Chen") == "Picked up by Riley Chen"
    assert claim_note("  Riley \n Chen ") == "Picked up by Riley Chen"
    assert ticket_number("123") == 123
    assert ticket_number(" #4567 ") == 4567
    for bad in ("", None, "ACME-1", "12a", "0", "-5", "99999999999", "١٢٣"):
        with pytest.raises(InvalidInput, match="is not a ticket number"):
            ticket_number(bad)


# --- HaloPSA outcome and authorisation server ---------------------------------------


def test_halo_outcome_and_authorisation_server_are_saved_and_read_back(world):
    shown = save_halo(world, outcome="  Internal   Note ", auth_url="https://auth.haloservicedesk.com/token/")
    assert (shown.outcome, shown.auth_url) == ("Internal Note", "https://auth.haloservicedesk.com")
    credentials = load_psa_credentials(world.db, world.northwind.id)
    assert (credentials.outcome, credentials.auth_url) == (
        "Internal Note",
        "https://auth.haloservicedesk.com",
    )
    assert save_halo(world, outcome="0021", auth_url="https://auth.haloservicedesk.com").outcome == "21"
    # Blank: the defaults (Halo's built-in private note, the discovered server).
    shown = save_halo(world, outcome="", auth_url="", secret=HALO_SECRET)
    assert (shown.outcome, shown.auth_url) == ("", "")
    assert (row(world).psa_outcome, row(world).psa_auth_url) == (None, None)


def test_changed_authorisation_server_needs_the_secret_again(world):
    save_halo(world)
    # The secret goes to the authorisation server: a new one must not get the saved secret.
    with pytest.raises(InvalidInput, match="Enter the client secret again"):
        save_halo(world, secret="", auth_url="https://evil.example.com/auth")
    assert row(world).psa_auth_url is None
    # Outcome changes keep it.
    assert save_halo(world, secret="", outcome="Internal Note").has_secret


def test_switching_to_connectwise_clears_the_halo_only_fields(world):
    save_halo(world, outcome="21", auth_url="https://auth.haloservicedesk.com")
    shown = save_cw(world, outcome="21", auth_url="https://x.example.com")
    assert (shown.outcome, shown.auth_url, shown.tenant) == ("", "", "")
    clear_psa_connection(db=world.db, actor=world.actor("riley"))
    save_halo(world, outcome="21")
    clear_psa_connection(db=world.db, actor=world.actor("riley"))
    assert (row(world).psa_outcome, row(world).psa_auth_url) == (None, None)
