"""Backfill checkpoints: one ``backfill_windows`` row per finished window of a job, and the
session lock that keeps two runs of one job out of the same window."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from etl.store.queries import query


def done_units(engine: Engine, job_key: str) -> set[str]:
    """Windows of the job that are finished for good; a rerun skips them."""
    with engine.connect() as conn:
        return set(conn.execute(query("backfill_done_units"), {"job_key": job_key}).scalars())


def record_window(engine: Engine, checkpoint: Mapping[str, Any]) -> None:
    """Writes a window's checkpoint (the columns of ``backfill_windows``), once its loads are
    committed; a window done again (incomplete, failed) updates it and counts the attempt."""
    with engine.begin() as conn:
        conn.execute(query("backfill_record_window"), dict(checkpoint))


@contextmanager
def window_lock(engine: Engine, job_key: str, unit: str) -> Iterator[bool]:
    """Yields whether this run holds the (job, window) lock. It is a session advisory lock: a
    killed run's lock goes away with its connection."""
    key = f"newsetl-backfill:{job_key}:{unit}"
    with engine.connect() as conn:
        held = bool(conn.execute(query("backfill_window_lock"), {"key": key}).scalar())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(query("backfill_window_unlock"), {"key": key})
                conn.commit()
