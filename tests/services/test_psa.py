"""PSA writeback end to end: the service posts to local fakes of ConnectWise PSA and
HaloPSA (real HTTP on 127.0.0.1, `tests.fakes.psa`) that check auth and body shape.

Each case runs against both PSAs and both databases. Notes are outbox jobs committed
with the escalation or the claim; the tests run them through the real worker and
handler (`run_outbox`), and move the worker's clock instead of sleeping through waits
and backoff. Connections point at the fakes' http://127.0.0.1 URLs by writing the row
directly: saving through the domain insists on https, and tests do not weaken that.
"""

from __future__ import annotations

import asyncio
import html
import re
from datetime import timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlmodel import Session, select

from escalation_app.domain import outbox
from escalation_app.domain import psa as psa_domain
from escalation_app.domain.assessments import Assessment, mark_failed, store_assessment
from escalation_app.domain.errors import InvalidInput, NotFound, PermissionDenied
from escalation_app.domain.handoffs import claim_handoff, create_handoff
from escalation_app.domain.models import AccountIntegration, OutboxJob, SessionHandoff
from escalation_app.domain.outbox import JobKind
from escalation_app.domain.psa import KIND_PSA_CLAIM, KIND_PSA_ESCALATION, encrypt_secret, psa_status_line
from escalation_app.domain.support_sessions import add_step, create_session
from escalation_app.domain.types import utcnow
from escalation_app.services import psa as psa_service
from escalation_app.services.psa_clients import connectwise, failure
from tests.factories import World
from tests.fakes.psa import FakeConnectWise, FakeHaloPSA
from tests.fakes.smtp import app_settings
from tests.outbox_helpers import Clock, clear_outbox, outbox_jobs, run_outbox, take_and_die, worker

KEY = Fernet.generate_key().decode()
FRONTEND = "https://desk.example.test"
SUMMARY = "Outbound mail is stuck in the queue.\nThe smart host rejects relaying."
PSA = [JobKind.PSA_NOTE]
POLICY = outbox.policy(JobKind.PSA_NOTE)
AI_BUDGET = timedelta(seconds=30)


@pytest.fixture
def world(db) -> World:
    with app_settings(
        psa_encryption_key=KEY,
        psa_timeout_seconds=2,
        frontend_url=FRONTEND,
        escalation_ai_assessment_timeout_seconds=30,
    ):
        world = World(db)
        # Only this test's changes have jobs; this also ends the read transaction
        # (SQLite: it holds the write lock).
        clear_outbox(db)
        yield world


@pytest.fixture(autouse=True)
def _fresh_codebase_cache():
    connectwise.clear_cache()
    yield
    connectwise.clear_cache()


@pytest.fixture
def clock() -> Clock:
    # A little ahead, so jobs the test commits after this are due at once.
    return Clock(utcnow() + timedelta(seconds=5))


@pytest.fixture(params=["connectwise", "halopsa"])
def fake(request):
    server = FakeConnectWise() if request.param == "connectwise" else FakeHaloPSA(tenant="northwind")
    with server:
        yield server


def is_cw(fake) -> bool:
    return isinstance(fake, FakeConnectWise)


def connect(world: World, fake, *, secret: str | None = None, account=None) -> None:
    """Point the account's PSA connection at `fake` (the row, written directly)."""
    account = account or world.northwind
    row = world.db.exec(select(AccountIntegration).where(AccountIntegration.account_id == account.id)).first()
    row = row or AccountIntegration(account_id=account.id)
    row.psa_url = fake.url
    row.psa_client_id = fake.client_id
    if is_cw(fake):
        row.psa_type = "connectwise"
        row.psa_company_id = fake.company_id
        row.psa_public_key = fake.public_key
        row.psa_secret_encrypted = encrypt_secret(secret or fake.private_key)
    else:
        row.psa_type = "halopsa"
        row.psa_tenant = fake.tenant
        row.psa_secret_encrypted = encrypt_secret(secret or fake.client_secret)
    world.db.add(row)
    world.db.commit()


def escalate(
    world: World, *, ticket: str | None = "123", ai: str = "ready", owner: str = "alex"
) -> SessionHandoff:
    actor = world.actor(owner)
    support_session = create_session(
        db=world.db,
        actor=actor,
        problem_summary="Mail flow stopped",
        problem_domain="Email",
        client_name="Acme",
        psa_ticket_id=ticket,
    )
    add_step(
        db=world.db,
        actor=actor,
        session_id=support_session.id,
        tried="Restarted transport",
        result="No change",
    )
    add_step(db=world.db, actor=actor, session_id=support_session.id, tried="Checked MX <records>", result="")
    handoff = create_handoff(
        db=world.db,
        actor=actor,
        session_id=support_session.id,
        intent="escalate",
        notes="Smart host says 550 & relaying denied",
        priority="high",
    )
    if ai == "ready":
        finish_ai(world, handoff)
    world.db.commit()
    return handoff


def claim(world: World, handoff: SessionHandoff, who: str = "riley") -> None:
    claim_handoff(db=world.db, actor=world.actor(who), handoff_id=handoff.id)
    world.db.commit()  # claim_handoff reads the row back: end that transaction


def finish_ai(world: World, handoff: SessionHandoff) -> None:
    assessment = Assessment(summary_prose=SUMMARY, likely_cause="Relay allow-list", confidence="high")
    assert store_assessment(
        db=world.db, handoff_id=handoff.id, assessment=assessment, model="claude-test", offline=False
    )


def records(engine, handoff_id) -> dict[str, OutboxJob]:
    """The handoff's PSA note jobs by note ("escalation", "claim"), read in a fresh session."""
    rows = outbox_jobs(engine, handoff_id=handoff_id, kind=JobKind.PSA_NOTE)
    by_note = {r.payload["note"]: r for r in rows}
    assert len(by_note) == len(rows), "two jobs for one note"
    return by_note


async def post_notes(engine, clock: Clock | None = None) -> int:
    """Run the due PSA note jobs with the real worker and handler; how many ran."""
    return await run_outbox(engine, kinds=PSA, clock=clock)


def status_line(world: World, engine, handoff, who: str = "riley") -> str:
    actor = world.actor(who)
    world.db.commit()  # reading an expired user began a transaction (SQLite: the write lock)
    with Session(engine) as s:
        return psa_status_line(db=s, actor=actor, handoff_id=handoff.id)


MARKER_LINE = re.compile(r"\s*Escalation Desk ref: job-\d+\s*$")


def plain(fake, text: str) -> str:
    """A posted note as text (Halo notes are HTML), without its job marker line."""
    text = text if is_cw(fake) else html.unescape(re.sub(r"<br\s*/?>", "\n", text))
    return MARKER_LINE.sub("", re.sub(r"</?p>", "", text) if not is_cw(fake) else text)


def note_posts(fake) -> list:
    path = "/service/tickets/" if is_cw(fake) else "/api/Actions"
    return [r for r in fake.requests if r.method == "POST" and path in r.path]


# --- Success ------------------------------------------------------------------------


async def test_escalation_note_lands_in_the_ticket_with_the_documentation(world, engine, fake):
    connect(world, fake)
    handoff = escalate(world)

    assert await post_notes(engine) == 1

    assert len(fake.notes) == 1
    note = fake.notes[0]
    assert note.ticket == 123
    text = plain(fake, note.text)
    assert text.startswith("Escalated in Escalation Desk by Alex Kim. Priority: High.")
    assert "Problem: Mail flow stopped" in text
    assert "Client: Acme" in text
    assert (
        "Steps tried (2):\n1. Restarted transport → No change\n2. Checked MX <records> → no result recorded"
        in text
    )
    assert "Engineer notes:\nSmart host says 550 & relaying denied" in text
    assert f"AI summary:\n{SUMMARY}" in text
    assert f"Handoff: {FRONTEND}/handoffs/{handoff.id}" in text
    if is_cw(fake):
        assert note.body == {
            "text": note.text,
            "internalAnalysisFlag": True,
            "detailDescriptionFlag": False,
            "resolutionFlag": False,
        }
    else:
        # Halo renders the note as HTML (note_html): the engineer's text is escaped,
        # lines kept; no plain `note`.
        assert "Checked MX &lt;records&gt;" in note.text and "<records>" not in note.text
        assert "<br>" in note.text
        [action] = note.body
        assert action["note_html"] == note.text and "note" not in action
        assert action["outcome_id"] == 7 and "outcome" not in action  # the built-in private note
        assert action["hiddenfromuser"] is True and action["sendemail"] is False
        # One token request, on the authorisation server /api/authinfo named, with the
        # tenant and only the scopes the notes need; then the Bearer call.
        [token_request] = fake.token_requests()
        assert token_request.server == "auth"
        assert token_request.query == {"tenant": ["northwind"]}
        assert b"scope=read%3Atickets+edit%3Atickets" in token_request.body

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.attempts, row.last_error, row.result) == ("done", 1, None, "ticket 123")
    assert row.recipient == f"{'connectwise' if is_cw(fake) else 'halopsa'}:123"
    assert status_line(world, engine, handoff) == "Posted to PSA ticket #123 ✓"
    # The secret is nowhere on the job.
    secret = fake.private_key if is_cw(fake) else fake.client_secret
    assert secret not in str(row.payload) and secret not in row.recipient
    # Posted is final: nothing more goes out.
    assert await post_notes(engine, Clock(utcnow() + timedelta(days=1))) == 0
    assert len(fake.notes) == 1


async def test_claim_note_names_who_picked_it_up(world, engine, fake):
    connect(world, fake)
    handoff = escalate(world)
    await post_notes(engine)

    claim(world, handoff)
    # A repeated claim (a double click) adds no second note.
    claim(world, handoff)
    assert await post_notes(engine) == 1
    assert await post_notes(engine) == 0

    assert [plain(fake, n.text) for n in fake.notes[1:]] == ["Picked up by Riley Chen"]
    assert records(engine, handoff.id)[KIND_PSA_CLAIM].status == "done"
    assert status_line(world, engine, handoff) == "Posted to PSA ticket #123 ✓ · pick-up note ✓"


async def test_note_waits_for_the_ai_summary_and_is_posted_once(world, engine, fake, clock):
    connect(world, fake)
    handoff = escalate(world, ai="pending")

    # Nothing is due yet: the note waits for the AI budget (30 s) plus a margin.
    assert await post_notes(engine, clock) == 0
    assert fake.notes == []
    waiting = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (waiting.status, waiting.attempts) == ("pending", 0)
    assert waiting.run_at >= handoff.created_at + AI_BUDGET + psa_domain.delivery.AI_WAIT_MARGIN
    assert status_line(world, engine, handoff) == "PSA note for ticket #123 waits for the AI summary"

    # A senior picks it up before the summary: the pick-up note waits behind the first.
    claim(world, handoff)
    assert await post_notes(engine, clock) == 1
    assert fake.notes == []
    claim_row = records(engine, handoff.id)[KIND_PSA_CLAIM]
    # Waiting is not an attempt.
    assert (claim_row.status, claim_row.attempts, claim_row.last_error) == ("pending", 0, None)
    assert claim_row.run_at > clock.now
    assert status_line(world, engine, handoff).endswith(" · pick-up note pending")

    # Storing the summary releases the note; several workers at once post it once.
    finish_ai(world, handoff)
    workers = [worker(engine, clock=clock, kinds=PSA) for _ in range(3)]
    await asyncio.gather(*(w.run_due_once() for w in workers))
    await asyncio.gather(*(w.drain() for w in workers))
    assert plain(fake, fake.notes[0].text).startswith("Escalated in Escalation Desk")
    # The pick-up note follows within seconds, long before the AI wait would have ended.
    soon = Clock(utcnow() + psa_domain.delivery.CLAIM_RECHECK + timedelta(seconds=5))
    assert soon.now < waiting.run_at
    await post_notes(engine, soon)
    assert len(fake.notes) == 2
    soon.advance(days=1)
    assert await post_notes(engine, soon) == 0

    texts = [plain(fake, n.text) for n in fake.notes]
    assert len(texts) == 2
    assert f"AI summary:\n{SUMMARY}" in texts[0]
    assert texts[1] == "Picked up by Riley Chen"
    assert {(r.status, r.attempts) for r in records(engine, handoff.id).values()} == {("done", 1)}
    assert status_line(world, engine, handoff) == "Posted to PSA ticket #123 ✓ · pick-up note ✓"


async def test_note_is_posted_without_the_summary_when_the_ai_never_reports(world, engine, fake, clock):
    connect(world, fake)
    handoff = escalate(world, ai="pending")
    assert await post_notes(engine, clock) == 0

    clock.advance(seconds=(AI_BUDGET + psa_domain.delivery.AI_WAIT_MARGIN).total_seconds())
    assert await post_notes(engine, clock) == 1

    [note] = fake.notes
    assert "AI summary: not available." in plain(fake, note.text)
    # The assessment landing later does not post a second note.
    finish_ai(world, handoff)
    world.db.commit()
    assert await post_notes(engine, clock) == 0
    assert len(fake.notes) == 1


async def test_failed_assessment_posts_the_note_without_a_summary(world, engine, fake):
    connect(world, fake)
    handoff = escalate(world, ai="pending")
    assert await post_notes(engine) == 0
    assert mark_failed(db=world.db, handoff_id=handoff.id, reason="timed out after 30s")

    assert await post_notes(engine) == 1

    [note] = fake.notes
    assert "AI summary: not available." in plain(fake, note.text)


async def test_nothing_is_posted_without_connection_ticket_or_escalation(world, engine, fake):
    handoff = escalate(world)  # no connection yet
    assert records(engine, handoff.id) == {}

    connect(world, fake)
    no_ticket = escalate(world, ticket=None, owner="sam")
    parked_session = create_session(
        db=world.db, actor=world.actor("alex"), problem_summary="Printer", psa_ticket_id="123"
    )
    park = create_handoff(db=world.db, actor=world.actor("alex"), session_id=parked_session.id, intent="park")
    world.db.commit()
    claim(world, park, who="riley")

    assert outbox_jobs(engine, kind=JobKind.PSA_NOTE) == []
    assert await post_notes(engine) == 0
    assert fake.requests == []
    assert status_line(world, engine, no_ticket) == ""
    assert status_line(world, engine, park) == ""


# --- Failures -----------------------------------------------------------------------


async def test_rejected_credentials_fail_without_retry(world, engine, fake, clock):
    connect(world, fake, secret="wrong-secret")
    handoff = escalate(world)

    await post_notes(engine, clock)

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("PSA rejected the credentials")
    assert status_line(world, engine, handoff) == f"PSA note failed: {row.last_error}"
    clock.advance(days=1)
    assert await post_notes(engine, clock) == 0
    assert fake.notes == []
    if is_cw(fake):
        assert len(note_posts(fake)) == 1
        assert note_posts(fake)[0].headers["clientid"] == fake.client_id
    else:
        assert note_posts(fake) == []  # stopped at the token request


async def test_unknown_ticket_is_a_clear_failure_not_a_retry_loop(world, engine, fake, clock):
    connect(world, fake)
    handoff = escalate(world, ticket="#999")

    await post_notes(engine, clock)
    clock.advance(days=1)
    assert await post_notes(engine, clock) == 0

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "PSA ticket #999 not found")
    assert len(note_posts(fake)) == 1
    assert status_line(world, engine, handoff) == "PSA note failed: PSA ticket #999 not found"


async def test_ticket_id_that_is_not_a_number_fails_without_calling(world, engine, fake):
    connect(world, fake)
    handoff = escalate(world, ticket="ACME-42")

    await post_notes(engine)

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.attempts) == ("failed", 1)
    assert "is not a ticket number" in row.last_error
    assert fake.requests == []


async def test_server_error_is_retried_on_the_backoff(world, engine, fake, clock):
    connect(world, fake)
    fake.fail_next = [500]
    handoff = escalate(world)

    assert await post_notes(engine, clock) == 1

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("PSA unavailable (HTTP 500")
    assert row.run_at == clock.now + POLICY.retry_delay(1)  # backoff, not a hot loop
    assert POLICY.retry_delay(1) >= timedelta(seconds=29)
    assert status_line(world, engine, handoff).endswith("(will retry)")
    assert fake.notes == []
    clock.advance(seconds=POLICY.retry_delay(1).total_seconds() - 1)
    assert await post_notes(engine, clock) == 0  # not due yet

    clock.advance(seconds=1)
    assert await post_notes(engine, clock) == 1

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.attempts, row.last_error) == ("done", 2, None)
    assert len(fake.notes) == 1
    assert status_line(world, engine, handoff) == "Posted to PSA ticket #123 ✓"


async def test_server_errors_stop_after_the_last_attempt(world, engine, fake, clock):
    connect(world, fake)
    fake.fail_next = [503] * (POLICY.max_attempts + 2)
    handoff = escalate(world)

    await post_notes(engine, clock)
    for _ in range(POLICY.max_attempts + 1):
        clock.advance(seconds=POLICY.backoff[-1].total_seconds())
        await post_notes(engine, clock)

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.attempts) == ("failed", POLICY.max_attempts)
    assert row.last_error.startswith("PSA unavailable (HTTP 503")
    assert len(note_posts(fake)) == POLICY.max_attempts == 3
    assert status_line(world, engine, handoff).startswith("PSA note failed: PSA unavailable")


async def test_timeout_is_recorded_and_retried(world, engine, fake, clock):
    connect(world, fake)
    handoff = escalate(world)
    fake.delay_seconds = 1.0

    with app_settings(psa_timeout_seconds=0.2):
        await post_notes(engine, clock)

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "PSA did not answer within 0.2 s"

    fake.delay_seconds = 0
    clock.advance(seconds=POLICY.retry_delay(1).total_seconds())
    assert await post_notes(engine, clock) == 1
    assert records(engine, handoff.id)[KIND_PSA_ESCALATION].status == "done"
    # The stalled first post finished on the server after we gave up; the retry is the
    # one we recorded. (Without a marker from the caller a PSA that accepts a post it
    # answers too late gets it twice: see test_psa_clients for the marker.)
    assert 1 <= len(fake.notes) <= 2


async def test_interrupted_post_is_run_again_once_its_lease_runs_out(world, engine, fake, clock):
    connect(world, fake)
    handoff = escalate(world)
    # A worker took the note and died: the job stays "being posted" until its lease ends.
    [taken] = take_and_die(engine, clock=clock, kinds=PSA)
    assert taken.handoff_id == handoff.id
    assert status_line(world, engine, handoff) == "Posting to PSA ticket #123…"
    clock.advance(seconds=POLICY.lease().total_seconds() - 1)
    assert await post_notes(engine, clock) == 0

    clock.advance(seconds=2)
    assert await post_notes(engine, clock) == 1

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.attempts) == ("done", 2)
    assert len(fake.notes) == 1


async def test_removed_connection_skips_the_retry(world, engine, fake, clock):
    connect(world, fake)
    fake.fail_next = [502]
    handoff = escalate(world)
    await post_notes(engine, clock)

    psa_domain.clear_psa_connection(db=world.db, actor=world.actor("riley"))
    clock.advance(seconds=POLICY.retry_delay(1).total_seconds())
    assert await post_notes(engine, clock) == 1

    row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
    assert (row.status, row.last_error) == ("skipped", psa_domain.NO_CONNECTION)
    assert status_line(world, engine, handoff) == f"PSA note skipped: {psa_domain.NO_CONNECTION}"
    assert len(note_posts(fake)) == 1


async def test_status_line_is_account_scoped(world, engine, fake):
    connect(world, fake)
    handoff = escalate(world)
    await post_notes(engine)
    assert status_line(world, engine, handoff, who="val") == "Posted to PSA ticket #123 ✓"  # viewers read it
    with pytest.raises(NotFound):
        status_line(world, engine, handoff, who="jordan")


@pytest.mark.parametrize(
    ("status", "content_type", "body", "message", "retry"),
    [
        (404, "application/json", '{"code":"NotFound"}', "PSA ticket #7 not found", False),
        (400, "application/json", '{"message":"Ticket 7 does not exist"}', "PSA ticket #7 not found", False),
        (404, "text/html", "<html>Not Found</html>", "PSA answered HTTP 404: check the PSA URL", False),
        (302, "text/html", "", "PSA answered with a redirect (HTTP 302); check the PSA URL", False),
        (
            403,
            "application/json",
            "{}",
            "PSA refused access (HTTP 403): check the API user's permissions",
            False,
        ),
        (
            400,
            "application/json",
            '{"message":"bad"}',
            'PSA refused the request (HTTP 400: {"message":"bad"})',
            False,
        ),
        (429, "application/json", "{}", "PSA unavailable (HTTP 429: {})", True),
        (502, "text/html", "", "PSA unavailable (HTTP 502)", True),
    ],
)
def test_answers_map_to_clear_reasons(status, content_type, body, message, retry):
    response = httpx.Response(status, headers={"Content-Type": content_type}, text=body)
    error = failure(response, ticket=7)
    assert (error.message, error.retry) == (message, retry)


# --- Test connection ----------------------------------------------------------------


async def test_test_connection_reports_success_and_rejection(world, engine, fake):
    connect(world, fake)
    message = await psa_service.test_connection(actor=world.actor("riley"), engine=engine)
    assert message == (
        "Connected to ConnectWise PSA v2025.1.10431 (codebase v2025_1, API version 2025.1)."
        if is_cw(fake)
        else "Connected to HaloPSA as agent “Escalation Desk API”; ticket list read; "
        "permissions granted: edit:tickets read:tickets."
    )
    if is_cw(fake):
        [info] = [r for r in fake.requests if r.path.endswith("/system/info")]
        assert info.headers["clientid"] == fake.client_id
    else:
        [tickets] = [r for r in fake.requests if r.path == "/api/Tickets"]
        assert tickets.headers["authorization"].startswith("Bearer halo-token-")

    connect(world, fake, secret="wrong")
    message = await psa_service.test_connection(actor=world.actor("morgan"), engine=engine)
    label = "ConnectWise PSA" if is_cw(fake) else "HaloPSA"
    assert message.startswith(f"Could not connect to {label}: PSA rejected the credentials")
    assert fake.notes == []


async def test_test_connection_is_for_managers_with_a_saved_connection(world, engine):
    with pytest.raises(PermissionDenied):
        await psa_service.test_connection(actor=world.actor("alex"), engine=engine)
    with pytest.raises(InvalidInput, match="Save a PSA connection first"):
        await psa_service.test_connection(actor=world.actor("riley"), engine=engine)


async def test_test_connection_to_nothing_listening(world, engine):
    with FakeConnectWise() as server:
        connect(world, server)
    # The server is gone: nothing listens on its port any more.
    message = await psa_service.test_connection(actor=world.actor("riley"), engine=engine)
    assert message == "Could not connect to ConnectWise PSA: Could not reach the PSA (ConnectError)"


# --- Vendor answers seen through the delivery records ---------------------------------


@pytest.mark.parametrize("status", [302, 303])
async def test_connectwise_redirect_after_creating_the_note_is_success(world, engine, clock, status):
    with FakeConnectWise() as fake:
        fake.redirect_creates = status
        connect(world, fake)
        handoff = escalate(world)

        assert await post_notes(engine, clock) == 1
        clock.advance(days=1)
        assert await post_notes(engine, clock) == 0

        row = records(engine, handoff.id)[KIND_PSA_ESCALATION]
        assert (row.status, row.last_error, row.attempts) == ("done", None, 1)
        assert len(fake.notes) == 1 and len(fake.note_posts()) == 1
        assert status_line(world, engine, handoff) == "Posted to PSA ticket #123 ✓"


@pytest.mark.parametrize(
    ("setting", "deny", "expected"),
    [
        ("Private Notes", set(), "HaloPSA did not accept the note outcome “Private Notes”"),
        ("", {7}, "HaloPSA refused the note outcome “7 (Halo's built-in private note)” for the API agent"),
    ],
)
async def test_halo_outcome_refusals_are_setup_errors_not_retried(
    world, engine, clock, setting, deny, expected
):
    with FakeHaloPSA(tenant="northwind") as fake:
        fake.denied_outcomes = deny
        connect(world, fake)
        row = world.db.exec(
            select(AccountIntegration).where(AccountIntegration.account_id == world.northwind.id)
        ).one()
        row.psa_outcome = setting or None
        world.db.add(row)
        world.db.commit()
        handoff = escalate(world)

        assert await post_notes(engine, clock) == 1
        clock.advance(days=1)
        assert await post_notes(engine, clock) == 0

        record = records(engine, handoff.id)[KIND_PSA_ESCALATION]
        assert (record.status, record.attempts) == ("failed", 1)
        assert record.last_error.startswith(expected)
        assert "under Integrations" in record.last_error
        assert status_line(world, engine, handoff) == f"PSA note failed: {record.last_error}"
        assert fake.notes == [] and len(fake.note_posts()) == 1
