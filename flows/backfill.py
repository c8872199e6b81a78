"""The ``backfill`` flow: plan a past date range, then load it one window per task.

Started by hand (``prefect deployment run backfill/backfill --param ...``); the business logic
is ``etl.backfill``, shared with the ``newsetl backfill`` command. Windows run one after the
other so that checkpoints follow the dates and a source's politeness budget is never split
between two windows; the fetches inside a window still run concurrently per host.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from etl import store
from etl.config import Settings, load_settings
from etl.fetch.http import Fetcher
from etl.jobs import backfill as bf
from etl.jobs.runs import SourceTally
from etl.store import db
from flows.artifacts import ProgressReport, publish_run_table


@task(name="plan-backfill", cache_policy=NO_CACHE, persist_result=False)
def plan(db_url: str, settings: Settings, spec: bf.BackfillSpec,
         fetcher: Fetcher) -> tuple[list[bf.SourceInfo], bf.Plan]:
    sources = bf.resolve_sources(db.get_engine(db_url), settings, spec.sources)
    return sources, bf.plan_backfill(spec, sources, fetcher)


@task(name="backfill-window", task_run_name="window-{window.unit}", cache_policy=NO_CACHE,
      persist_result=False)
def load_window(db_url: str, fetcher: Fetcher, settings: Settings, spec: bf.BackfillSpec,
                window: bf.Window, sources: list[bf.SourceInfo], run_id: int,
                plan_complete: bool) -> bf.WindowResult:
    return bf.run_window(db.get_engine(db_url), fetcher, settings, spec, window, sources, run_id,
                         plan_complete=plan_complete)


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
    logger = get_run_logger()
    settings = load_settings(sources_file)
    db_url = db.connect(settings)
    engine = db.get_engine(db_url)
    try:
        spec = bf.BackfillSpec.build(mode, sources, since, until, window_days, urls_file, warc_files, sitemap_urls)
    except bf.BackfillError as exc:  # recorded on a run row too, so `ingestion_runs` shows it
        raw = {"mode": mode, "sources": sources, "since": since, "until": until, "urls_file": urls_file,
               "warc_files": warc_files, "sitemap_urls": sitemap_urls, "window_days": window_days}
        run_id = store.start_run(engine, "backfill", raw, flow_run.get_id())
        store.finish_run(engine, run_id, store.RunCounts(errors=1), status="failed", error=str(exc))
        raise
    run_id = store.start_run(engine, "backfill", {**spec.parameters(), "sources_file": str(settings.sources_file)},
                             flow_run.get_id())
    progress = ProgressReport(run_id, "backfill")
    tally = SourceTally()
    results: list[bf.WindowResult] = []
    plan_: bf.Plan | None = None
    try:
        with Fetcher(settings, host_slots=store.host_slot_reserver(engine)) as fetcher:
            srcs, plan_ = plan(db_url, settings, spec, fetcher)
            for err in plan_.errors:
                logger.warning("plan: %s", err)
            todo = bf.pending_windows(engine, plan_)
            logger.info("job %s: %d window(s), %d to do, %d candidate URL(s)", spec.job_key,
                        len(plan_.windows), len(todo), plan_.total_candidates)
            pending = {w.unit for w in todo}
            results = [bf.WindowResult(w.unit, "skipped") for w in plan_.windows if w.unit not in pending]
            for i, window in enumerate(todo, 1):
                res = load_window(db_url, fetcher, settings, spec, window, srcs, run_id, plan_.complete)
                results.append(res)
                for slug, c in res.by_source.items():
                    tally.add_counts(slug, c)
                if res.status == "failed":
                    logger.warning("window %s failed: %s", res.unit, res.error)
                progress.update(i, len(todo), f"{i}/{len(todo)} window(s) of job {spec.job_key}; last: {res.unit} {res.status}")
    except BaseException as exc:
        counts = bf.BackfillResult(run_id, spec.job_key, plan_ or bf.Plan(spec.job_key, []), results, tally.by_source).run_counts()
        store.finish_run(engine, run_id, counts, status="failed", error=f"{type(exc).__name__}: {exc}")
        publish_run_table(engine, run_id, "backfill", tally.rows(), note=f"failed: {type(exc).__name__}: {exc}")
        raise
    result = bf.BackfillResult(run_id, spec.job_key, plan_, results, tally.by_source)
    failed_windows = [w.unit for w in results if w.status == "failed"]
    store.finish_run(engine, run_id, result.run_counts(),
                     error=f"window(s) failed: {', '.join(failed_windows)}" if failed_windows else None)
    summary = result.summary()
    note = ", ".join(f"{k}: {v}" for k, v in summary.items() if k != "run_id")
    if plan_.errors:
        note += "\n\nPlan errors:\n" + "\n".join(f"- {e}" for e in plan_.errors[:50])
    publish_run_table(engine, run_id, "backfill", tally.rows(), note=note)
    progress.update(1, 1, f"finished: {note.splitlines()[0]}")
    logger.info("backfill finished: %s", summary)
    return summary
