"""Oversize and control-character input on every text field, sent over the real websocket.

Each crafted event must answer with an error message and leave every table as it was.
"""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from escalation_app.domain.models import SupportSession, User
from escalation_app.state.admin import UsersAdminState
from escalation_app.state.integrations import IntegrationsState
from escalation_app.state.sessions import SessionDetailState, SessionsState
from tests.security.conftest import Tab, is_error, toast_says

NUL = "before\x00after"
ESCAPE = "red\x1b[31mtext"
HUGE = "x" * 300_000

SESSION_FORM = {
    "problem_summary": "Printer jammed",
    "problem_domain": "",
    "client_name": "",
    "psa_ticket_id": "",
}
USER_FORM = {
    "display_name": "Eve Adams",
    "email": "eve.input@northwind.example",
    "role": "engineer",
    "password": "long enough",
}
PSA_FORM = {
    "psa_type": "connectwise",
    "psa_url": "https://api-na.myconnectwise.net",
    "psa_client_id": "client-1",
    "psa_company_id": "northwind",
    "psa_public_key": "pub",
    "psa_secret": "secret",
    "psa_tenant": "",
}
WEBHOOK_FORM = {"slack_url": "", "teams_url": ""}

# (who, page, state, handler, base form, field) for every text field a person can store.
FIELDS = [
    ("alex", "/sessions", SessionsState, "create", SESSION_FORM, "problem_summary"),
    ("alex", "/sessions", SessionsState, "create", SESSION_FORM, "problem_domain"),
    ("alex", "/sessions", SessionsState, "create", SESSION_FORM, "client_name"),
    ("alex", "/sessions", SessionsState, "create", SESSION_FORM, "psa_ticket_id"),
    ("alex", "session", SessionDetailState, "add_step", {"tried": "Restarted", "result": ""}, "tried"),
    ("alex", "session", SessionDetailState, "add_step", {"tried": "Restarted", "result": ""}, "result"),
    ("alex", "session", SessionDetailState, "park", {"notes": "", "priority": "normal"}, "notes"),
    ("alex", "session", SessionDetailState, "escalate", {"notes": "", "priority": "normal"}, "notes"),
    ("riley", "/admin/users", UsersAdminState, "add_user", USER_FORM, "display_name"),
    ("riley", "/admin/users", UsersAdminState, "add_user", USER_FORM, "email"),
    ("riley", "/admin/users", UsersAdminState, "add_user", USER_FORM, "password"),
    ("riley", "/admin/integrations", IntegrationsState, "save", WEBHOOK_FORM, "slack_url"),
    ("riley", "/admin/integrations", IntegrationsState, "save", WEBHOOK_FORM, "teams_url"),
    *[
        ("riley", "/admin/integrations", IntegrationsState, "save_psa", PSA_FORM, field)
        for field in ["psa_url", "psa_client_id", "psa_company_id", "psa_public_key", "psa_secret"]
    ],
]


@pytest.fixture
def alex_session(app_engine) -> int:
    with Session(app_engine) as db:
        alex = db.exec(select(User).where(User.email == "alex@northwind.example")).one()
        session = SupportSession(
            account_id=alex.account_id,
            team_id=alex.team_id,
            owner_id=alex.id,
            problem_summary="Input attack target",
        )
        db.add(session)
        db.commit()
        return session.id


async def test_every_text_field_refuses_control_characters_and_oversize_input(
    live, sign_in, fingerprint, alex_session
):
    tokens = {who: sign_in(f"{who}@northwind.example") for who in ("alex", "riley")}
    tabs: dict[tuple[str, str], Tab] = {}
    refused: list[str] = []
    try:
        before = fingerprint()
        for who, page, state_cls, handler, form, field in FIELDS:
            path = f"/sessions/{alex_session}" if page == "session" else page
            if (who, path) not in tabs:
                tabs[who, path] = await Tab(live, tokens[who], path).__aenter__()
            for label, value in (("control", f"{form[field] or 'x'} {NUL} {ESCAPE}"), ("oversize", HUGE)):
                toasts = await tabs[who, path].send(state_cls, handler, form_data={**form, field: value})
                case = f"{state_cls.__name__}.{handler} {field} {label}"
                assert toasts, f"no answer to {case}"
                assert all(is_error(t) for t in toasts), (case, toasts)
                # URL and PSA credential fields answer with their own format message.
                if state_cls is not IntegrationsState and field != "password":
                    expected = "control character" if label == "control" else "at most"
                    assert toast_says(toasts, expected), (case, toasts)
                refused.append(case)
        assert fingerprint() == before
        assert len(refused) == 2 * len(FIELDS)
        # Positive control: the same tab and handler store a clean step.
        toasts = await tabs["alex", f"/sessions/{alex_session}"].send(
            SessionDetailState, "add_step", form_data={"tried": "Restarted the spooler", "result": "Fixed"}
        )
        assert toast_says(toasts, "Step added")
        assert fingerprint() != before
    finally:
        for tab in tabs.values():
            await tab.__aexit__(None, None, None)
