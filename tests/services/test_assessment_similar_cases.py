"""The AI assessment draws on similar past cases: they go into Claude's prompt (read back from
the local fake of the Messages API that the real SDK talks to), and the offline summary
names the closest one. SQLite and PostgreSQL through the `db`/`engine` fixtures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlmodel import Session

from escalation_app.domain.casework import resolve_case, session_of_handoff
from escalation_app.domain.handoffs import claim_handoff, create_handoff
from escalation_app.domain.models import SessionHandoff
from escalation_app.domain.outbox import JobKind
from escalation_app.domain.support_sessions import add_step, create_session
from escalation_app.services import assessment as service
from escalation_app.services.assessment import RetryPolicy
from escalation_app.settings import get_settings
from tests.factories import World
from tests.fakes import anthropic as fake_api
from tests.outbox_helpers import clear_outbox, run_outbox

ANSWER = {
    "summary_prose": "Same as an earlier case: the carrier moved its registrar.",
    "what_we_know": ["Trunk unregistered"],
    "likely_cause": "Same as #1 fixed by Riley: re-register the SIP trunk",
    "suggested_steps": ["Re-register the SIP trunk"],
    "confidence": "high",
}
FIX = "Re-registered the SIP trunk with the carrier's new registrar address and disabled SIP ALG."


@pytest.fixture
def ai() -> Iterator[pytest.MonkeyPatch]:
    """No AI key unless a test sets one; fast retries; settings restored after."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(service, "RETRY_POLICY", RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.05))
        for name, value in (
            ("ANTHROPIC_API_KEY", ""),
            ("ANTHROPIC_BASE_URL", ""),
            ("ESCALATION_AI_MODEL", "claude-test-model"),
            ("ESCALATION_AI_ASSESSMENT_TIMEOUT_SECONDS", "5"),
        ):
            mp.setenv(name, value)
        get_settings.cache_clear()
        yield mp
    get_settings.cache_clear()


def _use_fake(ai: pytest.MonkeyPatch, fake: fake_api.FakeAnthropic) -> None:
    ai.setenv("ANTHROPIC_API_KEY", "test-key")
    ai.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    get_settings.cache_clear()


def _escalate(world: World, owner: str, summary: str, steps: list[tuple[str, str]], notes: str) -> str:
    actor = world.actor(owner)
    s = create_session(
        db=world.db, actor=actor, problem_summary=summary, problem_domain="Phones / VoIP", client_name="Acme"
    )
    for tried, result in steps:
        add_step(db=world.db, actor=actor, session_id=s.id, tried=tried, result=result)
    return str(create_handoff(db=world.db, actor=actor, session_id=s.id, intent="escalate", notes=notes).id)


def _fixed(world: World, owner: str, fixer: str) -> int:
    """The SIP trunk case, escalated by `owner`, fixed by `fixer`; its session id."""
    hid = _escalate(
        world,
        owner,
        "Inbound calls get a busy signal, outbound calls work",
        [("Checked the PBX trunk status", "Trunk unregistered")],
        "Started this morning.",
    )
    claim_handoff(db=world.db, actor=world.actor(fixer), handoff_id=hid)
    sid = session_of_handoff(db=world.db, actor=world.actor(fixer), handoff_id=hid)
    resolve_case(db=world.db, actor=world.actor(fixer), session_id=sid, fix=FIX, root_cause="third_party")
    return sid


@pytest.fixture
def world(db) -> World:
    return World(db)


def _new_case(world: World) -> str:
    hid = _escalate(
        world,
        "sam",
        "Callers hear a busy tone on the main number",
        [("Opened the PBX status page", "SIP trunk shows unregistered")],
        "Reception is taking calls on a mobile.",
    )
    return hid


async def test_similar_cases_go_into_the_prompt_and_the_model_may_cite_them(world, engine, ai):
    ours = _fixed(world, "alex", "riley")
    theirs = _fixed(world, "casey", "jordan")  # Contoso's identical case: never in Northwind's prompt
    clear_outbox(world.db)  # only the new escalation's assessment runs
    hid = _new_case(world)
    with fake_api.running_fake() as fake:
        _use_fake(ai, fake)
        fake.script(fake_api.tool_use(ANSWER))
        assert await run_outbox(engine, kinds=[JobKind.ASSESSMENT]) == 1
        [prompt] = fake.prompts

    assert "<past_cases>" in prompt and "</past_cases>" in prompt
    past = prompt.split("<past_cases>")[1].split("</past_cases>")[0]
    assert f"#{ours} fixed by Riley Chen in " in past
    assert "Problem: Inbound calls get a busy signal, outbound calls work" in past
    assert f"What fixed it: {FIX}" in past
    assert f"#{theirs} " not in past and "Jordan Fox" not in prompt
    assert "cite it by number and" in prompt
    # The past cases come after the session and are data, like it.
    assert prompt.index("</session>") < prompt.index("<past_cases>")
    with Session(engine) as other:
        row = other.get(SessionHandoff, uuid.UUID(hid))
        assert row.ai_status == "ready"
        assert row.ai_assessment_data["likely_cause"] == ANSWER["likely_cause"]


async def test_no_similar_case_no_past_cases_block(world, engine, ai):
    clear_outbox(world.db)
    _new_case(world)
    with fake_api.running_fake() as fake:
        _use_fake(ai, fake)
        fake.script(fake_api.tool_use(ANSWER))
        assert await run_outbox(engine, kinds=[JobKind.ASSESSMENT]) == 1
        [prompt] = fake.prompts
    assert "past_cases" not in prompt and "Problem: Callers hear a busy tone" in prompt


async def test_the_offline_summary_says_who_fixed_a_similar_case(world, engine, ai):
    ours = _fixed(world, "alex", "morgan")
    clear_outbox(world.db)
    hid = _new_case(world)
    assert await run_outbox(engine, kinds=[JobKind.ASSESSMENT]) == 1

    with Session(engine) as other:
        row = other.get(SessionHandoff, uuid.UUID(hid))
    assert row.ai_model == "offline"
    assert (
        f"A similar case was fixed by Morgan Lee (#{ours}, Inbound calls get a busy signal"
        in row.ai_assessment
    )
    assert FIX in row.ai_assessment
    first = row.ai_assessment_data["suggested_steps"][0]
    assert first.startswith(f"Check whether it is the same as #{ours} (")
    assert "fixed by Morgan Lee: Re-registered the SIP trunk" in first
    assert "Check whether it is the same as" in row.ai_assessment_data["start_here"]
