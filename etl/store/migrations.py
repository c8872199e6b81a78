"""Migrations: the numbered SQL files of ``sql/`` are the schema's single source of truth, each
applied exactly once, in order, by yoyo-migrations."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from etl.store.queries import sql_dir


def _yoyo_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def upgrade(url: str) -> list[str]:
    """Applies pending migrations in order; returns the ids applied (empty when up to date).

    yoyo takes a lock in the database, so two workers starting at once do not race.
    """
    from yoyo import get_backend, read_migrations

    backend = get_backend(_yoyo_url(url))
    migrations = read_migrations(str(sql_dir()))
    with backend.lock():
        pending = backend.to_apply(migrations)
        ids = [m.id for m in pending]
        if pending:
            backend.apply_migrations(pending)
    backend.connection.close()
    return ids
