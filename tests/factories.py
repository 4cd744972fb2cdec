"""Test data builders."""

from __future__ import annotations

from sqlmodel import Session, select

from escalation_app.domain.actors import Actor
from escalation_app.domain.casework import resolve_case
from escalation_app.domain.demo_data import load_demo_data
from escalation_app.domain.models import Account, Team, User
from escalation_app.domain.support_sessions import add_step, create_session


class World:
    """The demo accounts, with actors by first name."""

    def __init__(self, db: Session):
        load_demo_data(db)
        self.db = db
        self.users = {u.email.split("@")[0]: u for u in db.exec(select(User)).all()}
        self.northwind = db.exec(select(Account).where(Account.name == "Northwind MSP")).one()
        self.contoso = db.exec(select(Account).where(Account.name == "Contoso IT")).one()

    def actor(self, name: str) -> Actor:
        return Actor.from_user(self.users[name])

    def add_user(self, email: str, name: str, role: str, *, account: Account | None = None) -> Actor:
        account = account or self.northwind
        team = self.db.exec(select(Team).where(Team.account_id == account.id)).first()
        user = User(
            account_id=account.id,
            team_id=team.id if team else None,
            email=email,
            display_name=name,
            password_hash="x",
            account_role=role,
        )
        self.db.add(user)
        self.db.commit()
        self.users[email.split("@")[0]] = user
        return Actor.from_user(user)

    def new_session(self, owner: str = "alex", steps: int = 2, summary: str = "Mail flow stopped") -> int:
        actor = self.actor(owner)
        support_session = create_session(
            db=self.db, actor=actor, problem_summary=summary, problem_domain="Email", client_name="Acme"
        )
        for i in range(steps):
            add_step(
                db=self.db,
                actor=actor,
                session_id=support_session.id,
                tried=f"step {i + 1}",
                result=f"result {i + 1}",
            )
        return support_session.id


def resolve_session(*, db: Session, actor: Actor, session_id: int, fix: str = "Restarted the service"):
    """Resolve a session with a fix (root cause: configuration)."""
    return resolve_case(db=db, actor=actor, session_id=session_id, fix=fix, root_cause="configuration")
