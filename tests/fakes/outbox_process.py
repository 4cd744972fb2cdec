"""A backend process for crash tests: `python -m tests.fakes.outbox_process MODE`.

- `escalate N`: escalate N new sessions of Alex's (each commits with its jobs), then
  die by SIGKILL straight after the last commit, before any side effect ran.
- `work`: run the outbox worker loop until killed.

Reads DATABASE_URL and the SMTP_* settings from the environment, like the app.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from sqlmodel import Session, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.db import get_engine
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import SessionStep, SupportSession, User
from escalation_app.services.worker import Worker


def escalate(count: int) -> None:
    with Session(get_engine(), expire_on_commit=False) as db:
        alex = db.exec(select(User).where(User.email == "alex@northwind.example")).one()
        for n in range(count):
            support_session = SupportSession(
                account_id=alex.account_id,
                team_id=alex.team_id,
                owner_id=alex.id,
                problem_summary=f"Crash {n}",
            )
            db.add(support_session)
            db.flush()
            db.add(SessionStep(session_id=support_session.id, position=1, tried="Restarted it"))
            db.commit()
            create_handoff(
                db=db, actor=Actor.from_user(alex), session_id=support_session.id, intent="escalate"
            )
    print("committed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


async def work() -> None:
    print("working", flush=True)
    await Worker(poll_interval=0.2).run_forever()


if __name__ == "__main__":
    if sys.argv[1] == "escalate":
        escalate(int(sys.argv[2]))
    else:
        asyncio.run(work())
