"""Migrations: the numbered SQL files of ``sql/`` are the schema's single source of truth, each
applied exactly once, in order, by yoyo-migrations.

Who applies them: ``newsetl db upgrade`` (and the commands that set a deployment up: ``demo``,
``stack up``). A run never migrates; it only checks that the schema is current
(:func:`check_current`) and stops with a clear error when it is behind. So a worker killed at
the wrong second can no longer strand the database under yoyo's lock.

The lock: yoyo's own is a row in ``yoyo_lock`` that a killed process leaves behind for good
(every later upgrade then fails with ``LockTimeout``). :func:`upgrade` first takes a PostgreSQL
*session* advisory lock, which the server releases the moment its holder's connection dies; a
process holding it is alive, so any ``yoyo_lock`` row found while holding it was left by a dead
process and is broken (logged) instead of waited on.
"""

from __future__ import annotations

import logging

import psycopg
from sqlalchemy.engine import make_url

from etl.store.queries import sql_dir

log = logging.getLogger(__name__)

# pg_advisory_lock key: 'nmig' (newsetl migrations)
ADVISORY_KEY = 0x6E6D6967


class SchemaBehind(RuntimeError):
    """The database lacks migrations this code needs: run ``newsetl db upgrade``."""


def _yoyo_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pending(url: str) -> list[str]:
    """Ids of the migrations not applied yet (reads yoyo's table; takes no lock)."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(_yoyo_url(url))
    try:
        return [m.id for m in backend.to_apply(read_migrations(str(sql_dir())))]
    finally:
        backend.connection.close()


def check_current(url: str) -> None:
    """Raises :class:`SchemaBehind` naming the missing migrations; what a run does at start."""
    missing = pending(url)
    if missing:
        raise SchemaBehind(f"the database schema is behind: {len(missing)} migration(s) not applied "
                           f"({', '.join(missing)}); run `newsetl db upgrade` first")


def upgrade(url: str, lock_timeout: float = 600.0) -> list[str]:
    """Applies pending migrations in order; returns the ids applied (empty when up to date).

    Serialized by a session advisory lock (waits for a *live* migrator, at most
    ``lock_timeout`` seconds); a ``yoyo_lock`` row left by a dead process is broken."""
    from yoyo import get_backend, read_migrations

    with psycopg.connect(_libpq_url(url), autocommit=True) as guard:
        guard.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(lock_timeout * 1000)}ms",))
        guard.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))
        backend = get_backend(_yoyo_url(url))
        try:
            stale = _stale_yoyo_lock(backend)
            if stale is not None:
                log.warning("breaking a migration lock left by dead process %s", stale)
                backend.break_lock()
            migrations = read_migrations(str(sql_dir()))
            with backend.lock():
                todo = backend.to_apply(migrations)
                ids = [m.id for m in todo]
                if todo:
                    backend.apply_migrations(todo)
        finally:
            backend.connection.close()
            guard.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))
    return ids


def _stale_yoyo_lock(backend: object) -> int | None:
    """The pid in ``yoyo_lock``, if a row is there (while we hold the advisory lock, only a
    dead process can have left it)."""
    cursor = backend.execute(f"SELECT pid FROM {backend.lock_table_quoted}")  # type: ignore[attr-defined]
    row = cursor.fetchone()
    backend.rollback()  # type: ignore[attr-defined]
    return int(row[0]) if row else None
