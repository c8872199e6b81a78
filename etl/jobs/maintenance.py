"""Daily upkeep: recluster recent stories, re-extract failed articles, prune old logs.

Each step is a plain function ``(engine, settings, **options) -> StepResult``; :func:`run_steps`
runs the chosen ones in order, and one step failing never stops the others. The ``maintenance``
flow runs each step as a Prefect task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from etl import store, stories
from etl.config import Settings
from etl.jobs.reextract import reextract
from etl.jobs.submit import Submit, run_now
from etl.models import StepStatus

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    name: str
    status: StepStatus
    detail: str = ""


def recluster(engine: Engine, settings: Settings, days: int = 3) -> StepResult:
    since = datetime.now(UTC) - timedelta(days=days)
    counts = stories.recluster(engine, since, settings.stories)
    return StepResult("recluster", StepStatus.OK,
                      f"since {since:%Y-%m-%d %H:%M}Z; processed={counts.processed}, "
                      f"stories_new={counts.stories_new}, stories_joined={counts.stories_joined}, "
                      f"near_duplicates={counts.near_duplicates}, citations={counts.citations}")


def reextract_failures(engine: Engine, settings: Settings, days: int = 7) -> StepResult:
    since = datetime.now(UTC) - timedelta(days=days)
    res = reextract(engine, settings, since=since, only_failed=True)
    return StepResult("reextract", StepStatus.OK,
                      f"since {since:%Y-%m-%d %H:%M}Z; selected={res.selected}, updated={res.updated}, "
                      f"unchanged={res.unchanged}, failed={res.failed}, missing={res.missing}")


def prune(engine: Engine, settings: Settings, retention_days: int | None = None,
          run_retention_days: int | None = None) -> StepResult:
    """Deletes poll-log rows, ingest-error records and finished runs past their retention (``settings.retention``
    unless given). Articles, feeds, stories and backfill checkpoints are kept."""
    poll_days = retention_days if retention_days is not None else settings.retention.poll_days
    run_days = run_retention_days if run_retention_days is not None else settings.retention.run_days
    now = datetime.now(UTC)
    polls = store.prune_feed_polls(engine, now - timedelta(days=poll_days))
    errors = store.prune_ingest_errors(engine, now - timedelta(days=poll_days))
    detail = f"deleted {polls} feed_polls row(s) and {errors} ingest_errors row(s) older than {poll_days} d"
    try:
        runs = store.prune_runs(engine, now - timedelta(days=run_days))
    except IntegrityError as exc:  # a table of another stage still points at an old run
        return StepResult("prune", StepStatus.FAILED, f"{detail}; runs not pruned: {str(exc.orig)[:300]}")
    return StepResult("prune", StepStatus.OK, f"{detail}, {runs} ingestion_runs row(s) older than {run_days} d")


STEPS: dict[str, Callable[..., StepResult]] = {
    "recluster": recluster,
    "reextract": reextract_failures,
    "prune": prune,
}


def run_step(engine: Engine, settings: Settings, name: str, options: Mapping[str, Any]) -> StepResult:
    """One step by name; an unknown name or an exception is a failed step, not a crash."""
    step = STEPS.get(name)
    if step is None:
        return StepResult(name, StepStatus.FAILED, f"unknown step; known: {', '.join(STEPS)}")
    try:
        return step(engine, settings, **options)
    except Exception as exc:  # one step failing must not stop the others
        log.exception("maintenance step %s failed", name)
        return StepResult(name, StepStatus.FAILED, f"{type(exc).__name__}: {exc}"[:500])


def run_steps(engine: Engine, settings: Settings, names: Sequence[str],
              options: Mapping[str, Mapping[str, Any]], submit: Submit = run_now) -> list[StepResult]:
    """The named steps in order, each with its ``options[name]``."""
    return [submit(run_step, engine, settings, name, dict(options.get(name, {}))).result() for name in names]
