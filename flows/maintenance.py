"""The daily ``maintenance`` flow: recluster the recent window, re-extract failures, prune.

The first two steps belong to other stages (``etl.stories.recluster``,
``etl.reextract.reextract``); they are imported when the flow runs, and a step whose function
is not installed is reported as skipped rather than failing the other steps.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from etl import store
from etl.config import load_settings
from etl.jobs import maintenance
from etl.store import db
from flows.artifacts import publish_run_table


@task(name="maintenance-step", task_run_name="{name}", cache_policy=NO_CACHE, persist_result=False)
def step(name: str, db_url: str, params: dict) -> maintenance.StepResult:
    return maintenance.STEPS[name](db.get_engine(db_url), load_settings(), **params)


@flow(name="maintenance")
def maintenance_flow(recluster_days: int = 3, reextract_days: int = 7,
                     retention_days: int | None = None, run_retention_days: int | None = None,
                     steps: list[str] | None = None) -> dict:
    """recluster_days: story window to recluster; reextract_days: failed extractions to retry;
    retention: days of poll log / finished runs to keep (default $NEWSETL_RETENTION_DAYS,
    $NEWSETL_RUN_RETENTION_DAYS)."""
    logger = get_run_logger()
    settings = load_settings()
    db_url = db.connect(settings)
    engine = db.get_engine(db_url)
    params = {"recluster_days": recluster_days, "reextract_days": reextract_days,
              "retention_days": retention_days, "run_retention_days": run_retention_days,
              "steps": steps or list(maintenance.STEPS)}
    run_id = store.start_run(engine, "maintenance", params, flow_run.get_id())
    kwargs = {
        "recluster": {"days": recluster_days},
        "reextract": {"days": reextract_days},
        "prune": {"retention_days": retention_days, "run_retention_days": run_retention_days},
    }
    results: list[maintenance.StepResult] = []
    for name in steps or list(maintenance.STEPS):
        if name not in maintenance.STEPS:
            results.append(maintenance.StepResult(name, "failed", f"unknown step; known: {', '.join(maintenance.STEPS)}"))
            continue
        try:
            results.append(step(name, db_url, kwargs.get(name, {})))
        except Exception as exc:  # one step failing must not stop the others
            results.append(maintenance.StepResult(name, "failed", f"{type(exc).__name__}: {exc}"[:500]))
    for r in results:
        (logger.warning if r.status == "failed" else logger.info)("%s: %s %s", r.name, r.status, r.detail)
    failed = [r.name for r in results if r.status == "failed"]
    store.finish_run(engine, run_id, store.RunCounts(errors=len(failed)),
                     status="failed" if failed else "completed",
                     error=f"step(s) failed: {', '.join(failed)}" if failed else None)
    publish_run_table(engine, run_id, "maintenance",
                      [{"step": r.name, "status": r.status, "detail": r.detail} for r in results])
    return {"run_id": run_id, **{r.name: r.status for r in results}}
