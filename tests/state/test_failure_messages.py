"""What a person reads when a click fails, for each kind of failure the handlers meet."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
import redis.exceptions
import sqlalchemy.exc

from escalation_app.domain.errors import AlreadyClaimed, InvalidInput
from escalation_app.domain.types import utcnow
from escalation_app.state.base import failure_message


def _wrapped(cls, orig: Exception, **kwargs) -> Exception:
    """A DBAPI error as SQLAlchemy raises it."""
    return cls("SELECT 1", {}, orig, **kwargs)


DB_GONE = "Could not save — the database did not answer. Nothing was changed; try again."


@pytest.mark.parametrize(
    "error",
    [
        _wrapped(sqlalchemy.exc.OperationalError, psycopg.OperationalError("server closed the connection")),
        _wrapped(sqlalchemy.exc.InterfaceError, psycopg.InterfaceError("connection already closed")),
        _wrapped(sqlalchemy.exc.DBAPIError, psycopg.Error("lost"), connection_invalidated=True),
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
        psycopg.OperationalError("connection timeout expired"),
    ],
    ids=["operational", "interface", "invalidated", "pool timeout", "psycopg"],
)
def test_a_database_that_did_not_answer(error):
    assert failure_message(error) == DB_GONE


def test_redis_a_refused_change_and_an_unknown_failure_each_say_what_happened():
    assert failure_message(redis.exceptions.ConnectionError("Connection refused"), doing="park") == (
        "Could not park — the server's session store did not answer. Nothing was changed; try again."
    )
    integrity = _wrapped(sqlalchemy.exc.IntegrityError, psycopg.errors.UniqueViolation("duplicate key"))
    assert (
        failure_message(integrity)
        == "Could not save — the database refused the change. Nothing was changed; try again."
    )
    assert failure_message(TimeoutError()) == (
        "Could not save — a service the server needs did not answer. Nothing was changed; try again."
    )
    assert failure_message(KeyError("bug")) == (
        "Could not save — something went wrong on the server. Nothing was changed; try again."
    )


def test_reads_and_saves_whose_reread_failed_do_not_claim_nothing_changed():
    gone = _wrapped(sqlalchemy.exc.OperationalError, psycopg.OperationalError("gone"))
    assert failure_message(gone, doing="load the queue", reading=True) == (
        "Could not load the queue — the database did not answer. Try again in a moment."
    )
    assert failure_message(gone, done=True) == (
        "Saved — but this page could not be updated: the database did not answer. Reload to see it."
    )


def test_domain_errors_keep_their_own_message():
    assert failure_message(InvalidInput("Notes are too long."), done=True) == "Notes are too long."
    lost = AlreadyClaimed(winner_id=1, winner_name="Riley Chen", claimed_at=utcnow() - timedelta(minutes=2))
    assert failure_message(lost) == "Already claimed by Riley Chen 2 minutes ago"
