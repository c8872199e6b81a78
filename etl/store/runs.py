"""The ``ingestion_runs`` rows: one per flow or command run, with its counts and its report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from etl.models import AssignCounts, IngestError, RunCounts, RunKind, RunStatus
from etl.store.queries import query
from etl.store.retry import retry_transient


@retry_transient("starting the run's row")
def start_run(engine: Engine, kind: RunKind | str, parameters: dict[str, Any], flow_run_id: UUID | str | None = None,
              *, host: str | None = None, pid: int | None = None, pid_started: float | None = None) -> int:
    """The run's row; ``host``/``pid``/``pid_started`` name the process, so that a later run
    can tell whether it is still alive."""
    with engine.begin() as conn:
        return conn.execute(query("start_run"), {
            "flow_run_id": str(flow_run_id) if flow_run_id else None,
            "kind": kind, "parameters": json.dumps(parameters, default=str),
            "host": host, "pid": pid, "pid_started": pid_started,
        }).scalar_one()


def heartbeat(engine: Engine, run_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(query("run_heartbeat"), {"run_id": run_id})


@dataclass(frozen=True)
class RunningRun:
    id: int
    host: str | None
    pid: int | None
    pid_started: float | None
    silent_seconds: float


@retry_transient("listing running runs")
def running_runs(engine: Engine, except_run: int | None = None) -> list[RunningRun]:
    with engine.connect() as conn:
        return [RunningRun(r.id, r.host, r.pid, r.pid_started, float(r.silent_seconds))
                for r in conn.execute(query("running_runs"), {"run_id": except_run or 0})]


@retry_transient("closing dead runs")
def abandon_runs(engine: Engine, run_ids: Sequence[int], reason: str) -> list[int]:
    """Closes the rows of dead runs as ``abandoned`` and frees their feed leases and page
    claims at once (in one transaction); returns the ids this call closed."""
    if not run_ids:
        return []
    with engine.begin() as conn:
        closed = list(conn.execute(query("abandon_runs"), {"ids": list(run_ids), "reason": reason}).scalars())
        if closed:
            conn.execute(query("release_dead_leases"), {"ids": closed})
            conn.execute(query("release_dead_claims"), {"ids": closed})
    return closed


@retry_transient("recording rows that could not be stored")
def record_ingest_errors(engine: Engine, run_id: int | None, errors: Sequence[IngestError]) -> None:
    """``ingest_errors`` rows: entries refused, values dropped, rows whose load failed."""
    if not errors:
        return
    with engine.begin() as conn:
        conn.execute(query("record_ingest_error"), [
            {"run_id": run_id, "feed_id": e.feed_id, "source_id": e.source_id, "kind": e.kind,
             "url": e.url, "detail": e.detail} for e in errors])


def prune_ingest_errors(engine: Engine, cutoff: datetime) -> int:
    """Retention: deletes ``ingest_errors`` rows older than ``cutoff``."""
    with engine.begin() as conn:
        return conn.execute(query("prune_ingest_errors"), {"cutoff": cutoff}).rowcount


@retry_transient("looking for articles without a story")
def unstoried_articles(engine: Engine, since: datetime, run_id: int | None = None) -> list[int]:
    """Articles left without a story by a dead run (never those another live run, not
    ``run_id``, may still be assigning)."""
    with engine.connect() as conn:
        return list(conn.execute(query("unstoried_articles"), {"since": since, "run_id": run_id}).scalars())


@retry_transient("finishing the run's row")
def finish_run(engine: Engine, run_id: int, counts: RunCounts, status: RunStatus = RunStatus.COMPLETED,
               error: str | None = None, notes: Sequence[str] = ()) -> None:
    """``notes``: lines for the row's ``notes`` (what the run could not do or report), after any
    the run added while it went on."""
    with engine.begin() as conn:
        conn.execute(query("finish_run"), {"run_id": run_id, "status": status, "error": error,
                                            "notes": "\n".join(notes) or None, **asdict(counts)})


@retry_transient("adding a note to the run's row")
def add_run_note(engine: Engine, run_id: int, note: str) -> None:
    """Adds a line to the run's ``notes``, e.g. what Prefect did not get when its API went away."""
    with engine.begin() as conn:
        conn.execute(query("add_run_note"), {"run_id": run_id, "note": note})



@retry_transient("adding story counts")
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
