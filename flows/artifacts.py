"""Run reports as Prefect artifacts, linked both ways with their ``ingestion_runs`` row.

The artifact key names the run (``newsetl-ingest-run-42``) and the row stores the key and the
artifact id. Publishing is best effort: a Prefect API hiccup must not fail a run whose data is
already committed, so errors are logged, not raised.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from prefect import get_run_logger
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from sqlalchemy import Engine

from etl import store
from etl.jobs import runs
from flows import prefect_api


def publish_run_table(engine: Engine, run_id: int, kind: str, rows: list[dict[str, Any]],
                      note: str = "") -> str | None:
    """Creates the run's table artifact (one row per source) and records it on the run row."""
    key = runs.artifact_key(run_id, kind)
    description = (f"newsetl {kind} run — `ingestion_runs.id = {run_id}`. Per source: feeds polled "
                   "and failed, items (feed entries or backfill URLs), new and updated articles, "
                   "duplicates (already stored, not fetched again, or unchanged), failed extractions.")
    if note:
        description += "\n\n" + note
    watch = prefect_api.current()
    if watch is not None and not watch.check():  # gone: Prefect's client would retry for a minute
        watch.missed(prefect_api.ARTIFACT)
        return None
    try:
        # Prefect types it as a UUID or, in async callers, a coroutine; flows here are sync.
        artifact_id = cast(UUID, create_table_artifact(table=rows, key=key, description=description))
        store.link_artifact(engine, run_id, key, artifact_id)
        return key
    except Exception as exc:  # the run's data is committed; the report is a convenience
        if watch is not None and watch.is_api_error(exc):
            watch.missed(prefect_api.ARTIFACT)  # said once, with the rest Prefect missed
        else:
            get_run_logger().warning("could not publish the run artifact %s: %s", key, exc)
        return None


class ProgressReport:
    """A progress artifact (0–100 %) updated as a backfill goes through its windows."""

    def __init__(self, run_id: int, kind: str) -> None:
        self.id: UUID | None = None
        try:
            self.id = cast(UUID, create_progress_artifact(
                progress=0.0, key=runs.artifact_key(run_id, f"{kind}-progress"),
                description=f"newsetl {kind} run `ingestion_runs.id = {run_id}`: share of windows done"))
        except Exception as exc:
            get_run_logger().warning("could not create the progress artifact: %s", exc)

    def update(self, done: int, total: int, description: str | None = None) -> None:
        if self.id is None:
            return
        try:
            update_progress_artifact(self.id, 100.0 * done / total if total else 100.0,
                                     description=description)
        except Exception as exc:
            get_run_logger().warning("could not update the progress artifact: %s", exc)
