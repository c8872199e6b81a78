"""The ``ingest`` flow: sync sources → poll due feeds → load new entries in batches → stories.

The sequence is ``etl.jobs.cycle.run_cycle``; this flow only makes each unit a Prefect task.
Tasks are batches (one per leased chunk of ~100 feeds, one per ~100 articles), never one per
feed or article: a task run costs Prefect ~5–7 ms and its server falls behind past ~1,000 task
runs per flow run.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from etl import store
from etl.config import MAX_TASK_WORKERS, load_settings, load_sources
from etl.jobs import batch, polling
from etl.jobs.cycle import run_cycle
from etl.jobs.metrics import STAGES, pushed_after
from etl.jobs.runs import run_record
from etl.models import RunKind
from etl.store import db
from flows.artifacts import publish_run_table
from flows.prefect_api import watch_run
from flows.submit import as_tasks

# Each unit is timed for the stage-duration histogram the run pushes (etl.jobs.metrics).
sync_sources = task(name="sync-sources", cache_policy=NO_CACHE, persist_result=False)(
    STAGES.timed("sync", store.sync_sources))
poll_due_chunk = task(name="poll-due-chunk", cache_policy=NO_CACHE, persist_result=False)(
    STAGES.timed("poll", polling.lease_and_poll))
process_batch = task(name="process-batch", cache_policy=NO_CACHE, persist_result=False)(
    STAGES.timed("process", batch.process_batch))
assign_stories = task(name="assign-stories", cache_policy=NO_CACHE, persist_result=False)(
    STAGES.timed("stories", batch.assign_stories))


# NEWSETL_TASK_WORKERS (≤ MAX_TASK_WORKERS) decides how many of these threads a run keeps busy.
@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=MAX_TASK_WORKERS))  # type: ignore[arg-type]
def ingest(
    sources_file: str | None = None,
    sources: list[str] | None = None,
    force: bool = False,
    kind: Literal["scheduled", "manual", "demo"] = "manual",
) -> dict[str, Any]:
    """Poll the due feeds of the registry (all of them with ``force``) and load new articles."""
    settings = load_settings(sources_file)
    engine = db.get_engine(db.connect(settings))
    params = {"sources_file": str(settings.sources_file), "sources": sources or [], "force": force}
    # watch_run: should the Prefect API go away, the run goes on and its row says what Prefect missed
    with watch_run() as api, pushed_after(engine, settings.pushgateway, "ingest"), \
            run_record(engine, RunKind(kind), params, report_kind="ingest", flow_run_id=flow_run.get_id(),
                       publish=publish_run_table) as run:
        api.attach(engine, run.id)
        cycle = run_cycle(engine, settings, run_id=run.id, registry=load_sources(settings.sources_file),
                          slugs=sources or [], force=force, report=run.report,
                          submit=as_tasks(sync_sources, poll_due_chunk, process_batch, assign_stories))
    # feeds_held: due feeds skipped because another live run holds their lease (by holder);
    # runs_abandoned: dead runs this run closed (their leases and claims it took over)
    summary = {"run_id": run.id, **asdict(run.counts), "feeds_held": dict(cycle.held),
               "runs_abandoned": list(run.abandoned)}
    api.deliver(summary)  # for `newsetl ingest`, should the engine fail to report the end
    get_run_logger().info("ingest finished: %s", summary)
    return summary
