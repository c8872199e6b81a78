"""Retry rules for database work that failed for a reason that passes.

Two kinds: a transaction that lost a race (deadlock, serialization failure: PostgreSQL rolled
it back, running it again is safe and usually succeeds at once), and a database that went away
for a moment (a restart, a failover, a dropped connection: "terminating connection due to
administrator command", "server closed the connection unexpectedly", "the database system is
starting up"). Every load of ours is keyed and every transaction opens and commits on its own,
so the unit is simply run again, with a bounded, growing pause, for at most
``TRANSIENT_BUDGET_SECONDS`` in all.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

T = TypeVar("T")

# deadlock_detected, serialization_failure: PostgreSQL rolled the transaction back for us
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
# admin_shutdown, crash_shutdown, cannot_connect_now (starting up / shutting down),
# too_many_connections, idle_session_timeout
_GONE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "57P05"})
ATTEMPTS = 3
TRANSIENT_BUDGET_SECONDS = 60.0


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in CONFLICT_SQLSTATES


def is_transient(exc: BaseException) -> bool:
    """A failure that says nothing about the statement: a lost race, or a database that is
    (briefly) not there. Not: bad data, a constraint, a bug."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = getattr(exc.orig, "sqlstate", None) or ""
    if state in CONFLICT_SQLSTATES or state in _GONE_SQLSTATES or state.startswith("08"):
        return True
    import psycopg

    # No SQLSTATE: the connection broke (psycopg.OperationalError "server closed the
    # connection unexpectedly", "connection is lost", "connection failed").
    return not state and isinstance(exc.orig, (psycopg.OperationalError, psycopg.InterfaceError))


def retry_on_conflict(transaction: Callable[[], T], *, what: str, attempts: int = ATTEMPTS) -> T:
    """Runs ``transaction`` (which opens and commits its own transaction) again after a
    deadlock or serialization failure, up to ``attempts`` times in all, with a short pause;
    and after a lost connection or a restarting server, for up to ``TRANSIENT_BUDGET_SECONDS``."""
    conflicts = 0
    started = time.monotonic()
    pause = 0.2
    while True:
        try:
            return transaction()
        except DBAPIError as exc:
            if is_conflict(exc):
                conflicts += 1
                if conflicts >= attempts:
                    raise
                log.warning("%s: %s; retrying (%d/%d)", what, type(exc.orig).__name__, conflicts, attempts - 1)
                time.sleep(0.05 * conflicts)
                continue
            if not is_transient(exc) or time.monotonic() - started + pause > TRANSIENT_BUDGET_SECONDS:
                raise
            log.warning("%s: the database is unavailable (%s); retrying in %.1fs",
                        what, str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__, pause)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)


def retry_transient(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator form of :func:`retry_on_conflict` for a function that is one transaction
    (or a read): safe to call again from the start."""
    import functools

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def run(*args: object, **kwargs: object) -> T:
            return retry_on_conflict(lambda: fn(*args, **kwargs), what=what)
        return run
    return wrap
