"""The daily ``maintenance`` flow: recluster the recent window, re-extract failures, prune.

The steps are ``etl.jobs.maintenance``; each runs as a Prefect task, and one failing never
stops the others (the run is then marked failed, with the steps that failed).
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from etl.config import load_settings
from etl.jobs import maintenance
from etl.jobs.metrics import pushed_after
from etl.jobs.runs import run_record
from etl.models import RunKind, StepStatus
from etl.store import db
from flows.artifacts import publish_run_table
from flows.submit import as_tasks

step = task(name="maintenance-step", task_run_name="{name}", cache_policy=NO_CACHE,
            persist_result=False)(maintenance.run_step)


@flow(name="maintenance")
def maintenance_flow(recluster_days: int = 3, reextract_days: int = 7,
                     retention_days: int | None = None, run_retention_days: int | None = None,
                     steps: list[str] | None = None) -> dict:
    """recluster_days: story window to recluster; reextract_days: failed extractions to retry;
    retention: days of poll log / finished runs to keep (default $NEWSETL_RETENTION_DAYS,
    $NEWSETL_RUN_RETENTION_DAYS)."""
    logger = get_run_logger()
    settings = load_settings()
    engine = db.get_engine(db.connect(settings))
    names = steps or list(maintenance.STEPS)
    params = {"recluster_days": recluster_days, "reextract_days": reextract_days,
              "retention_days": retention_days, "run_retention_days": run_retention_days, "steps": names}
    options: dict[str, dict[str, int | None]] = {
        "recluster": {"days": recluster_days},
        "reextract": {"days": reextract_days},
        "prune": {"retention_days": retention_days, "run_retention_days": run_retention_days},
    }
    with pushed_after(engine, settings.pushgateway, "maintenance"), \
            run_record(engine, RunKind.MAINTENANCE, params, report_kind="maintenance",
                       flow_run_id=flow_run.get_id(), publish=publish_run_table) as run:
        results = maintenance.run_steps(engine, settings, names, options, submit=as_tasks(step))
        for r in results:
            (logger.warning if r.status == StepStatus.FAILED else logger.info)("%s: %s %s", r.name, r.status, r.detail)
        failed = [r.name for r in results if r.status == StepStatus.FAILED]
        run.counts.errors = len(failed)
        if failed:
            run.fail(f"step(s) failed: {', '.join(failed)}")
        run.rows = [{"step": r.name, "status": str(r.status), "detail": r.detail} for r in results]
    return {"run_id": run.id, **{r.name: str(r.status) for r in results}}
