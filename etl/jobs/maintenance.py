"""Daily upkeep steps: recluster recent stories, re-extract failed articles, prune old logs.

Each step is a plain function ``(engine, settings, **options) -> StepResult``. Reclustering and
re-extraction are other stages' functions (``etl.stories.recluster``,
``etl.reextract.reextract``), imported when the step runs: a missing one is reported as
'skipped' with the reason, never as a crash of the whole maintenance run.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from etl import store
from etl.config import Settings, load_retention


@dataclass
class StepResult:
    name: str
    status: str        # 'ok', 'skipped', 'failed'
    detail: str = ""


def optional_function(module: str, name: str) -> Callable[..., Any] | None:
    """``module.name`` if that stage is installed, else None."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    fn = getattr(mod, name, None)
    return fn if callable(fn) else None


def call_with_supported(fn: Callable[..., Any], engine: Engine, **options: Any) -> Any:
    """Calls ``fn(engine, <the options its signature names>)``.

    The stages' signatures are agreed as ``(engine, settings, since=, until=, sources=)``; this
    keeps maintenance working if one of them takes fewer keywords than offered."""
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return fn(engine, **{k: v for k, v in options.items() if takes_any or k in params})


def _describe(out: Any) -> str:
    if out is None:
        return ""
    if isinstance(out, dict):
        return ", ".join(f"{k}={v}" for k, v in out.items())
    if hasattr(out, "__dict__"):
        return ", ".join(f"{k}={v}" for k, v in vars(out).items() if not k.startswith("_"))
    return str(out)


def recluster(engine: Engine, settings: Settings, days: int = 3) -> StepResult:
    fn = optional_function("etl.stories", "recluster")
    if fn is None:
        return StepResult("recluster", "skipped", "etl.stories.recluster is not installed")
    since = datetime.now(UTC) - timedelta(days=days)
    out = call_with_supported(fn, engine, settings=settings, since=since, until=None, days=days)
    return StepResult("recluster", "ok", f"since {since:%Y-%m-%d %H:%M}Z; {_describe(out)}".rstrip("; "))


def reextract_failures(engine: Engine, settings: Settings, days: int = 7) -> StepResult:
    fn = optional_function("etl.jobs.reextract", "reextract")
    if fn is None:
        return StepResult("reextract", "skipped", "etl.jobs.reextract.reextract is not installed")
    since = datetime.now(UTC) - timedelta(days=days)
    out = call_with_supported(fn, engine, settings=settings, since=since, until=None, sources=(),
                              only_failed=True)
    return StepResult("reextract", "ok", f"since {since:%Y-%m-%d %H:%M}Z; {_describe(out)}".rstrip("; "))


def prune(engine: Engine, settings: Settings, retention_days: int | None = None,
          run_retention_days: int | None = None) -> StepResult:
    """Deletes poll-log rows and finished runs past their retention. Articles, feeds, stories
    and backfill checkpoints are kept."""
    retention = load_retention()
    poll_days = retention_days if retention_days is not None else retention.poll_days
    run_days = run_retention_days if run_retention_days is not None else retention.run_days
    now = datetime.now(UTC)
    with engine.begin() as conn:
        polls = conn.execute(store.query("prune_feed_polls"), {"cutoff": now - timedelta(days=poll_days)}).rowcount
    detail = f"deleted {polls} feed_polls row(s) older than {poll_days} d"
    try:
        with engine.begin() as conn:
            runs = conn.execute(store.query("prune_runs"), {"cutoff": now - timedelta(days=run_days)}).rowcount
    except IntegrityError as exc:  # a table of another stage still points at an old run
        return StepResult("prune", "failed", f"{detail}; runs not pruned: {str(exc.orig)[:300]}")
    return StepResult("prune", "ok", f"{detail}, {runs} ingestion_runs row(s) older than {run_days} d")


STEPS: dict[str, Callable[..., StepResult]] = {
    "recluster": recluster,
    "reextract": reextract_failures,
    "prune": prune,
}
