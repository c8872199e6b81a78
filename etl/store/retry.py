"""One retry rule for transactions that lost a race: a deadlock or a serialization failure rolls
the whole transaction back, so running it again is safe and usually succeeds at once."""

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
ATTEMPTS = 3


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in CONFLICT_SQLSTATES


def retry_on_conflict(transaction: Callable[[], T], *, what: str, attempts: int = ATTEMPTS) -> T:
    """Runs ``transaction`` (which opens and commits its own transaction) again after a
    deadlock or serialization failure, up to ``attempts`` times in all, with a short pause."""
    for attempt in range(1, attempts + 1):
        try:
            return transaction()
        except DBAPIError as exc:
            if not is_conflict(exc) or attempt == attempts:
                raise
            log.warning("%s: %s; retrying (%d/%d)", what, type(exc.orig).__name__, attempt, attempts - 1)
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")
