"""The ``ingestion_runs`` rows: one per flow or command run, with its counts and its report."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from etl.models import AssignCounts, RunCounts, RunKind, RunStatus
from etl.store.queries import query


def start_run(engine: Engine, kind: RunKind | str, parameters: dict[str, Any], flow_run_id: UUID | str | None = None) -> int:
    with engine.begin() as conn:
        return conn.execute(query("start_run"), {
            "flow_run_id": str(flow_run_id) if flow_run_id else None,
            "kind": kind, "parameters": json.dumps(parameters, default=str),
        }).scalar_one()


def finish_run(engine: Engine, run_id: int, counts: RunCounts, status: RunStatus = RunStatus.COMPLETED,
               error: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(query("finish_run"), {"run_id": run_id, "status": status, "error": error,
                                            **asdict(counts)})



def add_story_counts(engine: Engine, run_id: int, counts: AssignCounts) -> None:
    """Adds one batch's dedup/story counts to the run's row (exact duplicates are counted by
    the load path in ``ingestion_runs.duplicates``)."""
    with engine.begin() as conn:
        conn.execute(query("add_story_counts"), {
            "run_id": run_id, "near_duplicates": counts.near_duplicates, "stories_new": counts.stories_new,
            "stories_joined": counts.stories_joined, "citations": counts.citations})


def link_artifact(engine: Engine, run_id: int, key: str, artifact_id: UUID | str | None) -> None:
    """Stores the key and id of the run's Prefect artifact on its row (the key names the run)."""
    with engine.begin() as conn:
        conn.execute(query("link_run_artifact"), {
            "run_id": run_id, "key": key, "artifact_id": str(artifact_id) if artifact_id else None,
        })


def prune_runs(engine: Engine, cutoff: datetime) -> int:
    """Retention: deletes finished runs older than ``cutoff`` that no poll refers to any more."""
    with engine.begin() as conn:
        return conn.execute(query("prune_runs"), {"cutoff": cutoff}).rowcount
