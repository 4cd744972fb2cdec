"""The root app state: who is signed in, and the helpers every handler uses.

Identity comes only from the server-side sign-in behind the browser's token, and is
re-resolved in every handler: the browser can call any handler with any arguments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import humanize
import psycopg
import redis.exceptions
import reflex as rx
import sqlalchemy.exc

from escalation_app import routes
from escalation_app.domain.actors import Actor
from escalation_app.domain.auth import end_auth_session, resolve_auth_session
from escalation_app.domain.db import session_scope
from escalation_app.domain.errors import AlreadyClaimed, DomainError, NotFound
from escalation_app.domain.types import utcnow
from escalation_app.services import realtime

logger = logging.getLogger(__name__)
T = TypeVar("T")

TOKEN_COOKIE = "escalation_desk_token"


def token_from_cookie_header(header: str | None) -> str:
    """The sign-in token in a `Cookie:` header ("" when absent)."""
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE:
            return value.strip().strip('"')
    return ""


# INTEGER primary keys (PostgreSQL int4): larger ids cannot exist, and would make the
# database raise instead of answering "not found".
MAX_ID = 2**31 - 1


def parse_id(raw: object, not_found: str) -> int:
    """An id from the browser (path or argument) as an int, or NotFound with `not_found`."""
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise NotFound(not_found) from None
    if not 0 < value <= MAX_ID:
        raise NotFound(not_found)
    return value


def path_part(path: str, index: int) -> str:
    """One segment of a route path ("" when missing): /sessions/12/history → 12 at index 1."""
    parts = path.strip("/").split("/")
    return parts[index] if len(parts) > index else ""


class NotSignedIn(DomainError):
    """The handler needs a signed-in user and there is none."""


async def run_db(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a domain function with a fresh DB session, off the event loop."""

    def call() -> T:
        with session_scope() as db:
            return fn(db=db, **kwargs)

    return await asyncio.to_thread(call)


def already_claimed_message(error: AlreadyClaimed) -> str:
    """'Already claimed by Riley Chen 2 minutes ago'."""
    return f"Already claimed by {error.winner_name} {humanize.naturaltime(utcnow() - error.claimed_at)}"


DATABASE_DID_NOT_ANSWER = "the database did not answer"
SESSION_STORE_DID_NOT_ANSWER = "the server's session store did not answer"

# Failures of what sits under a click (not of the click itself): the database or Redis
# went away, refused a connection or timed out. The transaction rolled back.
_DATABASE_UNREACHABLE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection came free
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def infrastructure_cause(error: BaseException) -> str | None:
    """What failed under a click, in words a person can act on; None for anything else."""
    if isinstance(error, redis.exceptions.RedisError):
        return SESSION_STORE_DID_NOT_ANSWER
    if isinstance(error, _DATABASE_UNREACHABLE):
        return DATABASE_DID_NOT_ANSWER
    if isinstance(error, sqlalchemy.exc.DBAPIError):
        return DATABASE_DID_NOT_ANSWER if error.connection_invalidated else "the database refused the change"
    if isinstance(error, psycopg.Error):
        return "the database refused the change"
    if isinstance(error, (TimeoutError, ConnectionError)):
        return "a service the server needs did not answer"
    return None


def failure_message(
    error: Exception, *, doing: str = "save", reading: bool = False, done: bool = False
) -> str:
    """The toast text for a click that failed with `error`.

    Domain errors say what the person did wrong. Infrastructure failures say what did not
    answer and whether anything changed: the domain's own transaction rolled back, unless
    it had already committed (`done`) and only the page's re-read failed.
    """
    if isinstance(error, AlreadyClaimed):
        return already_claimed_message(error)
    if isinstance(error, DomainError):
        return error.message
    cause = infrastructure_cause(error) or "something went wrong on the server"
    if done and not reading:
        return f"Saved — but this page could not be updated: {cause}. Reload to see it."
    if reading:
        return f"Could not {doing} — {cause}. Try again in a moment."
    return f"Could not {doing} — {cause}. Nothing was changed; try again."


class DomainAction:
    """One handler's domain work inside `AppState._domain_action`: the actor, the call, the outcome."""

    def __init__(self, state: AppState):
        self._state = state
        self.actor: Actor | None = None
        # The domain call returned (its transaction committed): a later failure is the re-read's.
        self.done = False
        self.failure: rx.event.EventSpec | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None

    async def signed_in(self) -> Actor:
        """The signed-in actor, from the server-side sign-in (never from the browser's arguments)."""
        if self.actor is None:
            self.actor = await self._state._require_actor()
        return self.actor

    async def run(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        """`fn(db=..., actor=<signed-in actor>, **kwargs)` in its own transaction, off the event loop."""
        actor = await self.signed_in()
        result = await run_db(fn, actor=actor, **kwargs)
        self.done = True
        return result


class AppState(rx.State):
    """Signed-in user, as far as the page needs to know."""

    signed_in: bool = False
    user_name: str = ""
    user_email: str = ""
    user_role: str = ""
    # The signed-in user's id, for the page to tell their own queue cards (no Pick up).
    user_id: str = ""

    @rx.var
    def backend_origin(self) -> str:
        """scheme://host of the backend this tab's websocket reached (where the sign-in
        and sign-out forms post), or "" before the first event."""
        host = self.router.headers.host
        if not host:
            return ""
        scheme = "https" if self.router.headers.origin.lower().startswith("https:") else "http"
        return f"{scheme}://{host}"

    @rx.var
    def sign_out_action(self) -> str:
        return f"{self.backend_origin}{routes.SIGN_OUT_ENDPOINT}" if self.backend_origin else ""

    @rx.var
    def is_manager(self) -> bool:
        return self.user_role in ("owner", "admin")

    @rx.var
    def can_work(self) -> bool:
        return self.user_role in ("owner", "admin", "engineer")

    def _auth_token(self) -> str:
        """The sign-in token, from the HttpOnly cookie the websocket handshake carried.

        The sign-in endpoint (`state/signin_http.py`) sets it; no script can read it, and
        the page state never holds it.
        """
        return token_from_cookie_header(self.router.headers.raw_headers.get("cookie"))

    async def _actor(self) -> Actor | None:
        token = self._auth_token()

        def resolve() -> Actor | None:
            with session_scope() as db:
                return resolve_auth_session(db=db, token=token)

        return await asyncio.to_thread(resolve)

    async def _require_actor(self) -> Actor:
        actor = await self._actor()
        if actor is None:
            self._forget_user()
            raise NotSignedIn("Your session has ended. Please sign in again.")
        self._remember(actor)
        return actor

    async def _page_actor(self) -> Actor | None:
        """The signed-in actor for a page load; None means answer with `_login_redirect()`."""
        try:
            return await self._require_actor()
        except NotSignedIn:
            return None

    def _remember(self, actor: Actor) -> None:
        self.signed_in = True
        self.user_name = actor.display_name
        self.user_email = actor.email
        self.user_role = actor.role
        self.user_id = str(actor.id)

    def _forget_user(self) -> None:
        self.signed_in = False
        self.user_name = ""
        self.user_email = ""
        self.user_role = ""
        self.user_id = ""

    async def _clear_tab(self) -> None:
        """Forget the signed-in user and every page's data in this tab (keeps the router)."""
        await self._follow_live(None)
        (await self.get_state(AppState)).reset()

    async def _follow_live(
        self,
        actor: Actor | None,
        *,
        queue: bool = False,
        handoff_id: str = "",
        handoff_team_id: int | None = None,
        page: bool = True,
    ) -> None:
        """Set the live rooms this tab follows, after the page's server-side role check.

        Owners, admins and engineers follow their own bell plus the queue or handoff their
        page shows; viewers and signed-out tabs follow nothing. `page=False` (the bell,
        which loads on every page after the page's own handler) leaves the page's rooms
        alone on a live page and leaves them everywhere else. A tab that follows a
        handoff shows as viewing it (to its account's handoff screens and queue cards).
        """
        sid = self.router.session.session_id
        if actor is None or not actor.can_work_handoffs:
            await realtime.hub.forget(sid)
            return
        path = self.router.url.path or ""
        on_live_page = path.rstrip("/") == routes.ESCALATIONS or path.startswith("/handoffs/")
        await realtime.hub.follow(
            sid,
            user_id=actor.id,
            token=self._auth_token(),
            queue=realtime.QueueScope(actor.account_id, actor.team_id) if queue else None,
            handoff_id=handoff_id,
            viewing=realtime.Viewer(
                account_id=actor.account_id,
                handoff_id=handoff_id,
                team_id=handoff_team_id,
                user_id=actor.id,
                name=actor.display_name,
            )
            if handoff_id
            else None,
            keep_page=not page and on_live_page,
        )

    @contextlib.asynccontextmanager
    async def _domain_action(
        self, *, busy: str = "", doing: str = "save", reading: bool = False
    ) -> AsyncIterator[DomainAction]:
        """Run a handler's domain work; any failure becomes `action.failure`, a toast to return.

        Domain errors keep their own message; database and Redis failures get one a person
        can act on ("Could not save — the database did not answer. Nothing was changed; try
        again.") and are logged with their cause. `busy` names a flag of this state (a
        busy or claiming marker the handler set) that is put back to its default on every
        exit: success, error, or the handler being cancelled.
        """
        action = DomainAction(self)
        try:
            yield action
        except Exception as error:
            message = failure_message(error, doing=doing, reading=reading, done=action.done)
            if not isinstance(error, DomainError):
                logger.error(
                    "%s: could not %s (%s)",
                    type(self).__name__,
                    doing,
                    infrastructure_cause(error) or "unexpected error",
                    exc_info=error,
                )
            action.failure = rx.toast.error(message)
        finally:
            if busy:
                setattr(self, busy, type(self).get_fields()[busy].default)

    def _login_redirect(self):
        return rx.redirect(routes.login_then(self.router.url.path or "/"))

    @rx.event
    async def sign_out(self):
        token = self._auth_token()

        def end() -> None:
            with session_scope() as db:
                end_auth_session(db=db, token=token)

        async with self._domain_action(doing="sign out") as action:
            await asyncio.to_thread(end)
        if action.failed:
            return action.failure
        await self._follow_live(None)
        # AppState's own vars and every page state under it: the next person to use this
        # tab must not receive this user's data on their hydrate. The (now revoked) cookie
        # is cleared by the sign-out endpoint the page posts to; this handler covers a tab
        # that signs out over the websocket.
        self.reset()
        return rx.redirect(routes.LOGIN)
