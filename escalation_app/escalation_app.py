"""The Reflex app: theme, pages, and the background sweeps that run with the server."""

from __future__ import annotations

import logging
import os

import reflex as rx
from reflex.utils import prerequisites

import escalation_app.pages  # noqa: F401  (registers every page)
from escalation_app import routes
from escalation_app.services import realtime, worker
from escalation_app.state import signin_http

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def index() -> rx.Component:
    # "/" only forwards; the sign-in guard on the target page does the rest.
    return rx.center(rx.spinner(), min_height="100vh")


def _private_state_files() -> None:
    """Reflex's dev-mode state files hold each tab's connection headers (the sign-in
    cookie among them): only this user may read them."""
    states = prerequisites.get_states_dir()
    states.mkdir(parents=True, exist_ok=True)
    os.chmod(states, 0o700)
    for path in states.iterdir():
        if path.is_file():
            os.chmod(path, 0o600)


_private_state_files()

app = rx.App(
    # The sign-in endpoints (HttpOnly cookie) in front of Reflex's own routes.
    api_transformer=signin_http.endpoints(),
    toaster=rx.toast.provider(position="bottom-right", close_button=True, duration=6000),
    stylesheets=["/live.css"],
    head_components=[rx.el.script(src="/live.js", defer=True)],
)
app.add_page(index, route="/", on_load=rx.redirect(routes.SESSIONS), title="Escalation Desk")

# Background work that lives as long as the server: the outbox worker runs every side
# effect of committed changes (live pushes, email, webhooks, PSA notes, AI assessments),
# including those a stop left behind.
app.register_lifespan_task(worker.run_worker)
# With Redis (several workers): deliver every worker's live pushes to this worker's tabs.
app.register_lifespan_task(realtime.run_relay)
# Who is viewing a handoff: tabs that went leave within a second; entries stay fresh.
app.register_lifespan_task(realtime.run_presence)
