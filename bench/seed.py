"""Bench data: demo accounts plus extra users, sign-in tokens and ready-to-escalate sessions."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import select

from escalation_app.domain.actors import Actor
from escalation_app.domain.auth import start_auth_session
from escalation_app.domain.db import make_engine, session_scope
from escalation_app.domain.demo_data import load_demo_data
from escalation_app.domain.handoffs import create_handoff
from escalation_app.domain.models import Account, AccountRole, Team, User
from escalation_app.domain.support_sessions import add_step, create_session


@dataclass
class Person:
    user_id: int
    name: str
    email: str
    token: str
    actor: Actor


class BenchData:
    """Seeded data in one bench database, and helpers to make more of it."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self.engine: Engine = make_engine(db_url)
        with session_scope(self.engine) as db:
            load_demo_data(db)
            self.account = db.exec(select(Account).where(Account.name == "Northwind MSP")).one()
            self.team = db.exec(select(Team).where(Team.account_id == self.account.id)).one()
        self.engineer = self.person("alex@northwind.example")
        self.seniors = [self.person("riley@northwind.example"), self.person("morgan@northwind.example")]
        self._extra = 0

    def person(self, email: str) -> Person:
        with session_scope(self.engine) as db:
            user = db.exec(select(User).where(User.email == email)).one()
            token = start_auth_session(db=db, user=user)
            return Person(user.id, user.display_name, user.email, token, Actor.from_user(user))

    def new_token(self, person: Person) -> str:
        with session_scope(self.engine) as db:
            user = db.get(User, person.user_id)
            return start_auth_session(db=db, user=user)

    def add_engineers(self, count: int, prefix: str = "claimer") -> list[Person]:
        """`count` distinct engineers in Northwind's team (dummy password hash: they never log in)."""
        people = []
        with session_scope(self.engine) as db:
            users = []
            for _ in range(count):
                self._extra += 1
                n = self._extra
                user = User(
                    account_id=self.account.id,
                    team_id=self.team.id,
                    email=f"{prefix}{n}@northwind.example",
                    display_name=f"Bench {prefix.title()} {n:03d}",
                    password_hash="x",
                    account_role=AccountRole.ENGINEER,
                )
                db.add(user)
                users.append(user)
            db.commit()
            for user in users:
                token = start_auth_session(db=db, user=user)
                people.append(Person(user.id, user.display_name, user.email, token, Actor.from_user(user)))
        return people

    def new_session(self, owner: Person | None = None, summary: str = "Bench session") -> int:
        """An active session of `owner` (the engineer Alex by default) with two steps."""
        actor = (owner or self.engineer).actor
        with session_scope(self.engine) as db:
            s = create_session(
                db=db, actor=actor, problem_summary=summary, problem_domain="Network", client_name="Bench Co"
            )
            add_step(db=db, actor=actor, session_id=s.id, tried="Rebooted the router", result="No change")
            add_step(
                db=db, actor=actor, session_id=s.id, tried="Checked DHCP leases", result="Pool exhausted"
            )
            return s.id

    def new_sessions(
        self, count: int, owner: Person | None = None, summary: str = "Bench session"
    ) -> list[int]:
        return [self.new_session(owner, f"{summary} {i}") for i in range(count)]

    def new_handoff(self, owner: Person | None = None) -> str:
        """An unclaimed escalation created straight through the domain (no live push)."""
        actor = (owner or self.engineer).actor
        session_id = self.new_session(owner, "Claim race")
        with session_scope(self.engine) as db:
            handoff = create_handoff(
                db=db, actor=actor, session_id=session_id, intent="escalate", notes="race"
            )
            # No after-commit here (no live push, no AI): mark it assessed so the server's
            # assessment sweep does not pick it up later and publish an "assessed" bump.
            handoff.ai_status = "not_needed"
            db.add(handoff)
            db.commit()
            return str(handoff.id)

    def dispose(self) -> None:
        self.engine.dispose()
