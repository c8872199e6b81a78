"""Fixtures shared by the warehouse tests (imported by those modules, kept out of conftest.py).

``reader_url``: a throwaway LOGIN role that is a member of ``newsetl_reader`` and nothing else,
and a URL that connects as it. Roles are cluster-wide, so the name is random and the role is
dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import make_url

from etl.store import db


def admin_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def libpq_params(url: str) -> dict[str, str]:
    """host, port, user, password and dbname of ``url`` as libpq reads them, for the tools a test
    drives (dbt, psql): the embedded server's URL names its socket directory in the query
    (``?host=/tmp/...``), which ``make_url(url).host`` does not see. No default is filled in,
    so a tool never falls back to a server the suite was not told about."""
    params = conninfo_to_dict(admin_conninfo(url))
    assert params.get("host"), f"no host (TCP address or socket directory) in {url!r}"
    return params


@pytest.fixture(scope="module")
def reader_url(db_url: str) -> Iterator[str]:
    role = f"newsetl_test_login_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    with psycopg.connect(admin_conninfo(db_url), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}' IN ROLE newsetl_reader")
    url = make_url(db_url).set(username=role, password=password).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        db.get_engine(url).dispose()
        with psycopg.connect(admin_conninfo(db_url), autocommit=True) as conn:
            # end any session still open as the role (a failed test may leave one), then drop it
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            conn.execute(f"DROP ROLE {role}")


# The pull horizon is cluster-wide: any session on the server that holds a transaction id
# (another test run, a benchmark) delays changes. Tests wait that long before failing.
CATCH_UP_TIMEOUT = 240


def horizon_holders(conn: psycopg.Connection) -> list[tuple]:
    """Sessions holding a transaction id, oldest first: what keeps the horizon back."""
    return conn.execute(
        "SELECT pid, datname, backend_xid::text, now() - xact_start, state, left(query, 80) "
        "FROM pg_stat_activity WHERE backend_xid IS NOT NULL ORDER BY xact_start").fetchall()


def wait_for_horizon(conn: psycopg.Connection, past_xid: int, timeout: float = CATCH_UP_TIMEOUT) -> int:
    """Waits until every transaction up to ``past_xid`` is below the pull horizon, and returns
    the horizon."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        horizon = conn.execute("SELECT warehouse.pull_horizon()").fetchone()[0]
        if horizon > past_xid:
            return horizon
        assert time.monotonic() < deadline, f"horizon stuck below {past_xid}, held by {horizon_holders(conn)}"
        time.sleep(0.02)
