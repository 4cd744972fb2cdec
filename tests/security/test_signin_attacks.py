"""Sign-in attacks over plain HTTP against the running app."""

from __future__ import annotations

import statistics
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import Session, select

from escalation_app.domain.auth import hash_password
from escalation_app.domain.models import User
from escalation_app.state.base import TOKEN_COOKIE
from tests.security.conftest import PASSWORD, sign_in_form, token_of

MORGAN = "morgan@northwind.example"


def location(response: httpx.Response) -> tuple[str, dict[str, str]]:
    parts = urlsplit(response.headers["location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", {k: v[0] for k, v in parse_qs(parts.query).items()}


def test_an_attacker_elsewhere_cannot_lock_the_owner_out(live, setting):
    setting("TRUSTED_PROXIES", "127.0.0.1")  # the test client plays a reverse proxy
    attacker, owner = "203.0.113.7", "198.51.100.9"
    answers = [location(sign_in_form(live, MORGAN, f"guess-{i}", address=attacker))[1] for i in range(25)]
    assert [a["error"] for a in answers[:5]] == ["invalid"] * 5
    assert all(a["error"] == "throttled" for a in answers[5:])
    waits = [int(a["wait"]) for a in answers[5:]]
    assert waits[0] <= 60 and max(waits) > 60  # the delay grows with the failures
    # Even the right password waits from the attacker's address...
    _url, query = location(sign_in_form(live, MORGAN, PASSWORD, address=attacker))
    assert query["error"] == "throttled"
    # ...while Morgan, on her own address, signs in at once.
    response = sign_in_form(live, MORGAN, PASSWORD, address=owner)
    assert token_of(response)
    assert location(response)[0] == f"{live.frontend}/escalations"


def test_spraying_many_emails_from_one_address_is_slowed(live, setting):
    setting("TRUSTED_PROXIES", "127.0.0.1")
    errors = [
        location(sign_in_form(live, f"user{i}@northwind.example", "x", address="203.0.113.8"))[1]["error"]
        for i in range(32)
    ]
    assert errors[:30] == ["invalid"] * 30 and errors[30:] == ["throttled"] * 2
    # Another address is not affected.
    assert token_of(sign_in_form(live, MORGAN, PASSWORD, address="198.51.100.10"))


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_trusted(live, setting):
    setting("TRUSTED_PROXIES", "")
    # Rotating a forged header does not give fresh addresses: all count against 127.0.0.1.
    errors = [
        location(sign_in_form(live, MORGAN, "x", address=f"192.0.2.{i}"))[1]["error"] for i in range(1, 8)
    ]
    assert errors[:5] == ["invalid"] * 5 and errors[5:] == ["throttled"] * 2


def test_known_and_unknown_emails_take_the_same_time(live, setting, app_engine):
    # A production-like work factor, so bcrypt (not the machine's noise) is what is timed.
    setting("TRUSTED_PROXIES", "127.0.0.1")
    setting("PASSWORD_HASH_ROUNDS", "10")
    known = f"timing.{uuid.uuid4().hex[:8]}@northwind.example"
    with Session(app_engine) as db:
        morgan = db.exec(select(User).where(User.email == MORGAN)).one()
        db.add(
            User(
                account_id=morgan.account_id,
                team_id=morgan.team_id,
                email=known,
                display_name="Timing Target",
                password_hash=hash_password("the real password"),
                account_role="engineer",
            )
        )
        db.commit()
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    with httpx.Client(trust_env=False) as client:  # one connection: no handshake noise
        for i in range(12):
            pair = [("known", known), ("unknown", f"nobody{i}.{uuid.uuid4().hex[:6]}@northwind.example")]
            for kind, email in pair if i % 2 else reversed(pair):  # neither always goes first
                start = time.perf_counter()
                response = client.post(
                    f"{live.backend}/auth/sign-in",
                    data={"email": email, "password": "wrong password"},
                    headers={"Origin": live.frontend, "X-Forwarded-For": f"198.18.{i}.{len(kind)}"},
                )
                timings[kind].append(time.perf_counter() - start)
                assert location(response)[1]["error"] == "invalid"
    known_median, unknown_median = (statistics.median(timings[k]) for k in ("known", "unknown"))
    assert abs(known_median - unknown_median) <= 0.2 * max(known_median, unknown_median), timings


def test_a_huge_email_is_refused_before_anything_is_stored(live, fingerprint):
    before = fingerprint()
    response = sign_in_form(live, "a" * 900_000 + "@northwind.example", "x")
    assert location(response)[1]["error"] == "large"
    response = sign_in_form(live, "a" * 300 + "@northwind.example", "x")
    assert location(response)[1]["error"] == "email"
    assert fingerprint() == before


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/x",
        "/\\evil.example",
        "/%2f%2fevil.example",
        "/%5cevil.example",
        "/%252f%252fevil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\t/evil.example",
        "%2F%2Fevil.example",
        "/login?next=//evil.example",
    ],
)
def test_next_only_follows_same_site_paths(live, next_path):
    response = sign_in_form(live, MORGAN, PASSWORD, next_path=next_path)
    token_of(response)
    assert location(response)[0] == f"{live.frontend}/escalations"
    assert "evil" not in response.headers["location"]


def test_next_follows_a_path_of_the_product(live):
    response = sign_in_form(live, MORGAN, PASSWORD, next_path="/history?q=vpn%20drops")
    assert response.headers["location"] == f"{live.frontend}/history?q=vpn%20drops"


def test_the_cookie_is_httponly_samesite_strict_and_lives_seven_days(live):
    response = sign_in_form(live, MORGAN, PASSWORD)
    header = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in header.split(";")}
    assert header.startswith(f"{TOKEN_COOKIE}=")
    assert "httponly" in attributes and attributes["samesite"].lower() == "samesite=strict"
    assert attributes["max-age"] == "Max-Age=604800" and attributes["path"] == "Path=/"
    assert "secure" not in attributes  # FRONTEND_URL is http here (see test_secure_cookie_on_https)


def test_sign_in_and_sign_out_refuse_other_origins(live, sign_in, fingerprint):
    before = fingerprint()
    response = sign_in_form(live, MORGAN, PASSWORD, origin="http://evil.example")
    assert response.status_code == 403 and TOKEN_COOKIE not in response.headers.get("set-cookie", "")
    response = httpx.post(f"{live.backend}/auth/sign-in", data={"email": MORGAN, "password": PASSWORD})
    assert response.status_code == 403  # no Origin at all: not a browser form of ours
    assert fingerprint() == before
    token = sign_in(MORGAN)
    response = httpx.post(
        f"{live.backend}/auth/sign-out",
        headers={"Origin": "http://evil.example", "Cookie": f"{TOKEN_COOKIE}={token}"},
    )
    assert response.status_code == 403
    # Positive control: the product's own origin signs out and clears the cookie.
    response = httpx.post(
        f"{live.backend}/auth/sign-out",
        headers={"Origin": live.frontend, "Cookie": f"{TOKEN_COOKIE}={token}"},
    )
    assert response.status_code == 303 and 'escalation_desk_token=""' in response.headers["set-cookie"]
