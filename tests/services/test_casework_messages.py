"""What the after-the-pick-up transitions send: one email renderer per message, over a
real SMTP server (aiosmtpd on 127.0.0.1); PSA note jobs and their texts; bells."""

from __future__ import annotations

from cryptography.fernet import Fernet
from sqlalchemy import update
from sqlmodel import delete

from escalation_app.domain import outbox
from escalation_app.domain.casework import hand_back, reassign, resolve_case
from escalation_app.domain.handoffs import claim_handoff, create_handoff
from escalation_app.domain.models import OutboxJob, SupportSession
from escalation_app.domain.psa import save_psa_connection
from escalation_app.domain.psa.delivery import prepare_note
from escalation_app.domain.psa.notes import case_note
from escalation_app.services import notifications
from tests.factories import World
from tests.fakes.smtp import SmtpSink, app_settings
from tests.outbox_helpers import outbox_jobs, run_outbox

KEY = Fernet.generate_key().decode()


def smtp_env(port: int) -> dict:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_username": "",
        "smtp_password": "",
        "smtp_starttls": "false",
        "smtp_timeout_seconds": 2,
        "anthropic_api_key": "",
        "psa_encryption_key": KEY,
    }


def _story(world: World) -> int:
    """Alex escalates; Riley hands back; Alex escalates again; Morgan picks it up;
    Riley (admin) reassigns it to Sam; Sam resolves it."""
    db = world.db
    sid = world.new_session()
    first = create_handoff(db=db, actor=world.actor("alex"), session_id=sid, intent="escalate", notes="Help")
    claim_handoff(db=db, actor=world.actor("riley"), handoff_id=first.id)
    hand_back(db=db, actor=world.actor("riley"), session_id=sid, guidance="Check the SPF record <first>")
    again = create_handoff(db=db, actor=world.actor("alex"), session_id=sid, intent="escalate", notes="Still")
    claim_handoff(db=db, actor=world.actor("morgan"), handoff_id=again.id)
    reassign(
        db=db,
        actor=world.actor("riley"),
        session_id=sid,
        to_user_id=world.users["sam"].id,
        note="Sam knows it",
    )
    resolve_case(
        db=db,
        actor=world.actor("sam"),
        session_id=sid,
        fix="Removed the stale SPF include",
        root_cause="configuration",
    )
    return sid


async def test_each_message_is_rendered_and_sent_once(db, engine):
    with SmtpSink() as sink, app_settings(**smtp_env(sink.port)):
        world = World(db)
        db.exec(delete(OutboxJob))  # the demo escalation's jobs are not this test's
        db.commit()
        _story(world)
        await run_outbox(engine, kinds=[outbox.JobKind.EMAIL])
        case_mail = [
            r for r in sink.received if not r.message["Subject"].startswith(("New escalation", "Escalated"))
        ]
        by = {(r.rcpt_tos[0], r.message["Subject"]) for r in case_mail}
        assert by == {
            ("alex@northwind.example", "Handed back to you: Mail flow stopped"),
            ("sam@northwind.example", "Assigned to you: Mail flow stopped"),
            ("alex@northwind.example", "Fixed: Mail flow stopped"),
            # Alex escalated it; the fix reaches everyone who handed it off on the way.
        }
        text = {r.message["Subject"]: r.part("text/plain") for r in case_mail}
        assert "Guidance: Check the SPF record <first>" in text["Handed back to you: Mail flow stopped"]
        assert "/sessions/" in text["Handed back to you: Mail flow stopped"]
        fixed = text["Fixed: Mail flow stopped"]
        assert "Sam Patel resolved the session you escalated." in fixed
        assert "What fixed it: Removed the stale SPF include" in fixed
        assert "Root cause: Configuration" in fixed
        assigned = text["Assigned to you: Mail flow stopped"]
        assert "Riley Chen reassigned an escalation to you." in assigned and "Note: Sam knows it" in assigned
        html = {r.message["Subject"]: r.part("text/html") for r in case_mail}
        assert "Check the SPF record &lt;first&gt;" in html["Handed back to you: Mail flow stopped"]
        # Every email job finished; running again sends nothing more.
        assert {j.status for j in outbox_jobs(engine, kind="email")} <= {"done"}
        before = len(sink.received)
        await run_outbox(engine, kinds=[outbox.JobKind.EMAIL])
        assert len(sink.received) == before


async def test_an_unknown_message_is_refused_not_retried(db, engine):
    world = World(db)
    sid = world.new_session()
    handoff = create_handoff(db=db, actor=world.actor("alex"), session_id=sid, intent="escalate")
    job = outbox.enqueue(
        db,
        kind=outbox.JobKind.EMAIL,
        account_id=handoff.account_id,
        handoff_id=handoff.id,
        recipient="sam@northwind.example",
        payload={"user_id": world.users["sam"].id, "message": "gossip"},
    )
    db.commit()
    try:
        notifications._email_content(db, outbox.JobView.of(job))
    except outbox.JobRefused as refused:
        assert "Unknown email message 'gossip'" in str(refused)
    else:
        raise AssertionError("an unknown message must be refused")


def test_psa_notes_follow_the_case(db):
    with app_settings(psa_encryption_key=KEY):
        world = World(db)
        save_psa_connection(
            db=db,
            actor=world.actor("riley"),
            psa_type="connectwise",
            url="https://api-na.myconnectwise.net",
            client_id="3f1c7d2a-1111-2222-3333-444455556666",
            company_id="northwind",
            public_key="PUBkey123",
            secret="cw-PRIVATE-key-0123456789",
        )
        db.exec(delete(OutboxJob))
        db.commit()
        sid = world.new_session()
        db.exec(update(SupportSession).where(SupportSession.id == sid).values(psa_ticket_id="4711"))
        db.commit()
        _story_psa(world, sid)
        db.expire_all()
        notes = outbox_jobs(db.get_bind(), kind="psa_note")
        kinds = [j.payload["note"] for j in notes]
        assert kinds == ["escalation", "claim", "handback", "escalation", "claim", "reassigned", "resolved"]
        # Escalation notes are done: the follow-up notes render their text.
        db.exec(update(OutboxJob).where(OutboxJob.kind == "psa_note").values(status="done"))
        db.commit()
        texts = [
            prepare_note(db, outbox.JobView.of(j)).text
            for j in notes
            if j.payload["note"] not in ("escalation", "claim")
        ]
        assert texts == [
            "Handed back to Alex Kim. Guidance: Look at the SPF record",
            "Reassigned to Sam Patel",
            "Resolved: Removed the stale SPF include (root cause: Configuration)",
        ]
        assert all(j.recipient == "connectwise:4711" for j in notes)


def _story_psa(world: World, sid: int) -> None:
    db = world.db
    first = create_handoff(db=db, actor=world.actor("alex"), session_id=sid, intent="escalate")
    claim_handoff(db=db, actor=world.actor("riley"), handoff_id=first.id)
    hand_back(db=db, actor=world.actor("riley"), session_id=sid, guidance="Look at the SPF record")
    again = create_handoff(db=db, actor=world.actor("alex"), session_id=sid, intent="escalate")
    claim_handoff(db=db, actor=world.actor("morgan"), handoff_id=again.id)
    reassign(db=db, actor=world.actor("riley"), session_id=sid, to_user_id=world.users["sam"].id)
    resolve_case(
        db=db,
        actor=world.actor("sam"),
        session_id=sid,
        fix="Removed the stale SPF include",
        root_cause="configuration",
    )


def test_case_note_texts_are_bounded():
    assert (
        case_note("released", name="Riley Chen", text="Out sick")
        == "Released to the queue by Riley Chen. Reason: Out sick"
    )
    assert case_note("resolved", text="x" * 5000, root_cause="Other").startswith("Resolved: " + "x" * 100)
    assert len(case_note("resolved", text="x" * 5000, root_cause="Other")) < 1600
