"""The vendor clients (`services.psa_clients`) against fakes that follow the vendors:
ConnectWise's version pin, codebase lookup and redirects; HaloPSA's token endpoint
discovery, scopes, note_html and outcomes; and the marker that keeps a note from being
posted twice when the PSA's answer is lost.
"""

from __future__ import annotations

import httpx
import pytest

from escalation_app.domain.psa import PsaCredentials, PsaType
from escalation_app.services.psa_clients import PsaError, check_connection, connectwise, halopsa, post_note
from escalation_app.services.psa_clients.common import carries_marker
from tests.fakes.psa import FakeConnectWise, FakeHaloPSA
from tests.fakes.smtp import app_settings


@pytest.fixture(autouse=True)
def _settings():
    connectwise.clear_cache()
    with app_settings(psa_timeout_seconds=2):
        yield
    connectwise.clear_cache()


def cw_credentials(fake: FakeConnectWise, **changes) -> PsaCredentials:
    values = {
        "psa_type": PsaType.CONNECTWISE,
        "url": fake.url,
        "client_id": fake.client_id,
        "company_id": fake.company_id,
        "public_key": fake.public_key,
        "tenant": "",
        "secret": fake.private_key,
    }
    return PsaCredentials(**{**values, **changes})


def halo_credentials(fake: FakeHaloPSA, **changes) -> PsaCredentials:
    values = {
        "psa_type": PsaType.HALOPSA,
        "url": fake.url,
        "client_id": fake.client_id,
        "company_id": "",
        "public_key": "",
        "tenant": fake.tenant or "",
        "secret": fake.client_secret,
    }
    return PsaCredentials(**{**values, **changes})


@pytest.fixture(params=["connectwise", "halopsa"])
def vendor(request):
    fake = FakeConnectWise() if request.param == "connectwise" else FakeHaloPSA(tenant="northwind")
    with fake:
        credentials = cw_credentials(fake) if request.param == "connectwise" else halo_credentials(fake)
        yield fake, credentials


# --- No note posted twice -------------------------------------------------------------


async def test_timeout_after_the_psa_accepted_does_not_post_twice(vendor):
    fake, credentials = vendor
    fake.answer_delay_seconds = 1.0  # stores the note, then answers too late
    with app_settings(psa_timeout_seconds=0.2), pytest.raises(PsaError) as lost:
        await post_note(credentials, 123, "Escalated: mail flow", marker="job-41")
    assert lost.value.retry is True
    assert len(fake.notes) == 1

    fake.answer_delay_seconds = 0
    await post_note(credentials, 123, "Escalated: mail flow", marker="job-41")  # the retry

    assert len(fake.notes) == 1 and len(fake.note_posts()) == 1
    assert carries_marker(fake.notes[0].text, "job-41")
    # Another job's note on the same ticket is posted (markers are exact, not prefixes).
    await post_note(credentials, 123, "Picked up by Riley", marker="job-4")
    assert len(fake.notes) == 2


async def test_without_a_marker_nothing_is_looked_up_and_the_text_is_as_given(vendor):
    fake, credentials = vendor
    await post_note(credentials, 123, "Picked up by Riley")
    gets = [r for r in fake.requests if r.method == "GET" and ("notes" in r.path or r.path == "/api/Actions")]
    assert gets == []
    [note] = fake.notes
    assert note.text == "Picked up by Riley" and "Escalation Desk ref" not in note.text


def test_marker_matching_is_exact():
    assert carries_marker("Done.\n\nEscalation Desk ref: job-41", "job-41")
    assert carries_marker("Done.<br><br>Escalation Desk ref: job-41</p>", "job-41")
    assert not carries_marker("Escalation Desk ref: job-411", "job-41")
    assert not carries_marker("job-41", "job-41")
    assert not carries_marker(None, "job-41")


async def test_a_malformed_marker_is_refused_before_calling(vendor):
    fake, credentials = vendor
    with pytest.raises(ValueError):
        await post_note(credentials, 123, "x", marker="bad marker\n")
    assert fake.requests == []


# --- ConnectWise PSA ------------------------------------------------------------------


async def test_connectwise_pins_the_version_and_uses_the_companys_codebase():
    with FakeConnectWise(codebase="v2025_1/") as fake:
        await post_note(cw_credentials(fake), 123, "Escalated: mail flow")
        await post_note(cw_credentials(fake), 123, "Picked up by Riley")

        info = [r for r in fake.requests if r.path.startswith("/login/companyinfo/")]
        assert [r.path for r in info] == ["/login/companyinfo/northwind"]  # looked up once, cached
        posts = fake.note_posts()
        assert [r.path for r in posts] == ["/v2025_1/apis/3.0/service/tickets/123/notes"] * 2
        assert {r.headers["accept"] for r in posts} == {
            "application/vnd.connectwise.com+json; version=2025.1"
        }
        # The body is the documented ServiceNote, as before.
        assert fake.notes[0].body == {
            "text": "Escalated: mail flow",
            "internalAnalysisFlag": True,
            "detailDescriptionFlag": False,
            "resolutionFlag": False,
        }


async def test_connectwise_on_premises_codebase():
    with FakeConnectWise(codebase="v4_6_release/") as fake:
        await post_note(cw_credentials(fake), 123, "Escalated")
        assert fake.note_posts()[0].path == "/v4_6_release/apis/3.0/service/tickets/123/notes"


async def test_connectwise_without_the_version_header_is_refused_by_the_fake():
    # Positive control: the fake does check the pin (so the tests above can fail).
    with FakeConnectWise() as fake:
        async with httpx.AsyncClient() as client:
            headers = connectwise.headers(cw_credentials(fake))
            headers["Accept"] = "application/json"
            response = await client.get(f"{fake.url}/v2025_1/apis/3.0/system/info", headers=headers)
        assert response.status_code == 400


@pytest.mark.parametrize(
    ("site", "codebase", "cloud", "base"),
    [
        (
            "https://na.myconnectwise.net",
            "v2025_1/",
            True,
            "https://api-na.myconnectwise.net/v2025_1/apis/3.0",
        ),
        (
            "https://api-eu.myconnectwise.net",
            "v2025_1/",
            True,
            "https://api-eu.myconnectwise.net/v2025_1/apis/3.0",
        ),
        (
            "https://staging.connectwisedev.com",
            "v2025_1/",
            True,
            "https://api-staging.connectwisedev.com/v2025_1/apis/3.0",
        ),
        (
            "https://cw.northwind.example",
            "v4_6_release/",
            False,
            "https://cw.northwind.example/v4_6_release/apis/3.0",
        ),
    ],
)
def test_connectwise_cloud_sites_use_the_api_host(site, codebase, cloud, base):
    assert connectwise.api_base(site, connectwise.CompanyInfo(codebase, cloud)) == base


async def test_connectwise_unknown_company_is_a_setup_error():
    with FakeConnectWise() as fake:
        with pytest.raises(PsaError) as refused:
            await post_note(cw_credentials(fake, company_id="southwind"), 123, "x")
        assert refused.value.retry is False
        assert "does not know the company ID “southwind”" in refused.value.message
        assert fake.note_posts() == []


@pytest.mark.parametrize("status", [302, 303])
async def test_connectwise_redirect_after_creating_the_note_is_success(status):
    with FakeConnectWise() as fake:
        fake.redirect_creates = status
        await post_note(cw_credentials(fake), 123, "Escalated")  # no PsaError: posted
        assert len(fake.notes) == 1 and len(fake.note_posts()) == 1


async def test_connectwise_redirect_elsewhere_is_a_setup_error():
    # Positive control: only a redirect to the created note (or a found marker) is success.
    with FakeConnectWise() as fake:
        fake.redirect_elsewhere = 302
        with pytest.raises(PsaError) as refused:
            await post_note(cw_credentials(fake), 123, "Escalated", marker="job-9")
        assert refused.value.retry is False and fake.notes == []
        assert refused.value.message == "PSA answered with a redirect (HTTP 302); check the PSA URL"


async def test_connectwise_redirect_with_a_marker_is_checked_against_the_ticket():
    with FakeConnectWise() as fake:
        fake.redirect_creates = 307
        await post_note(cw_credentials(fake), 123, "Escalated", marker="job-7")
        await post_note(cw_credentials(fake), 123, "Escalated", marker="job-7")
        assert len(fake.notes) == 1 and len(fake.note_posts()) == 1


# --- HaloPSA --------------------------------------------------------------------------


async def test_halo_token_comes_from_the_authorisation_server_authinfo_names():
    with FakeHaloPSA(tenant="northwind") as fake:
        await post_note(halo_credentials(fake), 123, "Escalated <b>now</b>\nline two")

        assert next(r.path for r in fake.requests if r.method == "GET") == "/api/authinfo"
        [token] = fake.token_requests()
        assert token.server == "auth" and token.query == {"tenant": ["northwind"]}
        [action] = fake.notes[0].body
        assert action["note_html"] == "Escalated &lt;b&gt;now&lt;/b&gt;<br>line two"
        assert "note" not in action and action["outcome_id"] == 7


async def test_halo_tenant_advertised_by_authinfo_is_used_when_none_is_set():
    with FakeHaloPSA(tenant="northwind", advertise_tenant=True) as fake:
        await post_note(halo_credentials(fake, tenant=""), 123, "Escalated")
        assert fake.token_requests()[0].query == {"tenant": ["northwind"]}


async def test_halo_without_authinfo_falls_back_to_the_instance_auth_token():
    with FakeHaloPSA(serve_authinfo=False) as fake:
        await post_note(halo_credentials(fake), 123, "Escalated")
        [token] = fake.token_requests()
        assert token.server == "api" and token.query == {}
        assert len(fake.notes) == 1


async def test_halo_authorisation_server_setting_overrides_discovery():
    with FakeHaloPSA(tenant="northwind") as fake:
        await post_note(halo_credentials(fake, auth_url=fake.auth_url), 123, "Escalated")
        assert not any(r.path.lower() == "/api/authinfo" for r in fake.requests)
        assert fake.token_requests()[0].server == "auth"
        assert len(fake.notes) == 1


def test_halo_authorisation_server_must_be_https_for_an_https_instance():
    assert halopsa._auth_server_ok("https://auth.example.com", "https://northwind.halopsa.com")
    assert not halopsa._auth_server_ok("http://auth.example.com", "https://northwind.halopsa.com")
    assert not halopsa._auth_server_ok("https://user@auth.example.com", "https://northwind.halopsa.com")


async def test_halo_requests_only_the_scopes_it_needs_and_other_grants_work():
    granted = frozenset({"read:tickets", "edit:tickets", "read:assets"})
    with FakeHaloPSA(granted_scopes=granted) as fake:
        await post_note(halo_credentials(fake), 123, "Escalated")
        assert b"scope=read%3Atickets+edit%3Atickets" in fake.token_requests()[0].body
        assert len(fake.notes) == 1


async def test_halo_application_without_the_permissions_is_a_setup_error():
    with FakeHaloPSA(granted_scopes=frozenset({"read:tickets"})) as fake:
        with pytest.raises(PsaError) as refused:
            await post_note(halo_credentials(fake), 123, "Escalated")
        assert refused.value.retry is False
        assert refused.value.message.startswith("The Halo application does not grant the permissions")
        assert fake.note_posts() == []


@pytest.mark.parametrize(
    ("setting", "sent"),
    [("", {"outcome_id": 7}), ("21", {"outcome_id": 21}), ("Internal Note", {"outcome": "Internal Note"})],
)
async def test_halo_outcome_setting_is_an_id_or_a_name(setting, sent):
    with FakeHaloPSA() as fake:
        await post_note(halo_credentials(fake, outcome=setting), 123, "Escalated")
        [action] = fake.notes[0].body
        assert {k: action[k] for k in ("outcome", "outcome_id") if k in action} == sent


@pytest.mark.parametrize(
    ("setting", "deny", "expected"),
    [
        ("Private Notes", set(), "HaloPSA did not accept the note outcome “Private Notes”"),
        ("", {7}, "HaloPSA refused the note outcome “7 (Halo's built-in private note)” for the API agent"),
    ],
)
async def test_halo_outcome_refusals_are_setup_errors_not_retried(setting, deny, expected):
    with FakeHaloPSA() as fake:
        fake.denied_outcomes = deny
        with pytest.raises(PsaError) as refused:
            await post_note(halo_credentials(fake, outcome=setting), 123, "Escalated")
        assert refused.value.retry is False
        assert refused.value.message.startswith(expected)
        assert "under Integrations" in refused.value.message
        assert fake.notes == [] and len(fake.note_posts()) == 1


async def test_halo_test_connection_names_the_agent_and_permissions():
    with FakeHaloPSA(granted_scopes=frozenset({"read:tickets", "edit:tickets"})) as fake:
        message = await check_connection(halo_credentials(fake))
        assert message == (
            "Connected to HaloPSA as agent “Escalation Desk API”; ticket list read; "
            "permissions granted: edit:tickets read:tickets."
        )
        assert any(r.path == "/api/Tickets" for r in fake.requests)
        assert fake.notes == []
