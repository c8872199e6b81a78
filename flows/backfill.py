"""The ``backfill`` flow: plan a past date range, then load it one window per task.

Started by hand (``prefect deployment run backfill/backfill --param ...``). The job is
``etl.jobs.backfill.run_backfill``, shared with the ``newsetl backfill`` command; this flow runs
its units as Prefect tasks and reports progress as an artifact.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from etl.config import load_settings
from etl.jobs import backfill as bf
from etl.jobs.metrics import STAGES, pushed_after
from etl.jobs.runs import Run, run_record
from etl.models import RunKind, WindowStatus
from etl.store import db
from flows.artifacts import ProgressReport, publish_run_table
from flows.submit import as_tasks

plan_backfill = task(name="plan-backfill", cache_policy=NO_CACHE, persist_result=False)(bf.prepare)
load_window = task(name="backfill-window", task_run_name="window-{window.unit}", cache_policy=NO_CACHE,
                   persist_result=False)(STAGES.timed("backfill", bf.run_window))


class FlowProgress(bf.Progress):
    """Logs the plan, adds each window's counts to the run's report, moves the progress artifact."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.artifact = ProgressReport(run.id, "backfill")
        self.job_key, self.todo, self.done = "", 0, 0

    def planned(self, plan: bf.Plan, todo: Sequence[bf.Window]) -> None:
        logger = get_run_logger()
        for err in plan.errors:
            logger.warning("plan: %s", err)
        logger.info("job %s: %d window(s), %d to do, %d candidate URL(s)", plan.job_key,
                    len(plan.windows), len(todo), plan.total_candidates)
        self.job_key, self.todo = plan.job_key, len(todo)

    def window_done(self, result: bf.WindowResult) -> None:
        self.done += 1
        for slug, counts in result.by_source.items():
            self.run.report.tally.add_counts(slug, counts)
        if result.status == WindowStatus.FAILED:
            get_run_logger().warning("window %s failed: %s", result.unit, result.error)
        self.artifact.update(self.done, self.todo, f"{self.done}/{self.todo} window(s) of job {self.job_key}; "
                                                   f"last: {result.unit} {result.status}")


@flow(name="backfill")
def backfill(
    mode: Literal["sitemap", "urls", "warc", "reextract"],
    since: date | None = None,
    until: date | None = None,
    sources: list[str] | None = None,
    urls_file: str | None = None,
    warc_files: list[str] | None = None,
    sitemap_urls: list[str] | None = None,
    window_days: int = 1,
    sources_file: str | None = None,
) -> dict:
    """Load the articles of [since, until) (UTC days) for some sources (all by default).

    mode: ``sitemap`` (robots.txt → sitemap index → news sitemaps), ``urls`` (``urls_file``, one
    URL a line), ``warc`` (``warc_files``, no network), ``reextract`` (re-run extraction from the
    archive). A rerun with the same parameters skips the windows already done.
    """
    settings = load_settings(sources_file)
    engine = db.get_engine(db.connect(settings))
    error: bf.BackfillError | None = None
    try:
        spec = bf.BackfillSpec.build(mode, sources, since, until, window_days, urls_file, warc_files, sitemap_urls)
        params = {**spec.parameters(), "sources_file": str(settings.sources_file)}
    except bf.BackfillError as exc:
        error, params = exc, {"mode": mode, "sources": sources, "since": since, "until": until,
                              "urls_file": urls_file, "warc_files": warc_files, "sitemap_urls": sitemap_urls,
                              "window_days": window_days}
    with pushed_after(engine, settings.pushgateway, "backfill"), \
            run_record(engine, RunKind.BACKFILL, params, report_kind="backfill", flow_run_id=flow_run.get_id(),
                       publish=publish_run_table) as run:
        if error is not None:
            raise error  # after the run row exists, so that `ingestion_runs` shows it
        progress = FlowProgress(run)
        result = bf.run_backfill(engine, settings, spec, run.id, progress, submit=as_tasks(plan_backfill, load_window))
        run.report.counts = result.run_counts()
        failed = [w.unit for w in result.windows if w.status == WindowStatus.FAILED]
        if failed:
            run.error = f"window(s) failed: {', '.join(failed)}"
        summary = result.summary()
        run.note = ", ".join(f"{k}: {v}" for k, v in summary.items() if k != "run_id")
        if result.plan.errors:
            run.note += "\n\nPlan errors:\n" + "\n".join(f"- {e}" for e in result.plan.errors[:50])
    progress.artifact.update(1, 1, f"finished: {run.note.splitlines()[0]}")
    get_run_logger().info("backfill finished: %s", summary)
    return summary
