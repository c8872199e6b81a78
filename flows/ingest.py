"""The ``ingest`` flow: sync sources → poll due feeds → process new entries in batches.

Tasks are batches (one per leased chunk of ~100 feeds, one per ~100 articles), never one per
feed or article: a task run
costs Prefect ~5–7 ms and its server falls behind past ~1,000 task runs per flow run.
"""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from etl import store, stories
from etl.config import Settings, load_settings, load_sources
from etl.fetch.http import Fetcher
from etl.jobs import batch, polling, runs
from etl.store import db
from flows.artifacts import publish_run_table

TASK_WORKERS = 4  # threads for concurrent feed polls / batches; fetches inside are rate-limited per host


@task(name="sync-sources", cache_policy=NO_CACHE, persist_result=False)
def sync_sources(db_url: str, settings: Settings) -> int:
    sources = load_sources(settings.sources_file)
    store.sync_sources(db.get_engine(db_url), sources)
    return sum(len(s.feeds) for s in sources)


@task(name="poll-due-chunk", cache_policy=NO_CACHE, persist_result=False)
def poll_due_chunk(db_url: str, fetcher: Fetcher, settings: Settings, run_id: int, worker: str,
                   run_started: object, slugs: list[str], force: bool) -> list[batch.PollResult]:
    """Leases a chunk of due feeds in PostgreSQL and polls it (empty when none is left)."""
    return polling.lease_and_poll(db.get_engine(db_url), fetcher, settings, run_id, worker=worker,
                                  run_started=run_started, slugs=slugs, force=force)


@task(name="process-batch", cache_policy=NO_CACHE, persist_result=False)
def process_batch(db_url: str, fetcher: Fetcher, settings: Settings,
                  items: list[batch.WorkItem]) -> batch.BatchResult:
    return batch.process_batch(db.get_engine(db_url), fetcher, settings, items, only_new=True)


@task(name="assign-stories", cache_policy=NO_CACHE, persist_result=False)
def assign_stories(db_url: str, run_id: int, article_ids: list[int]) -> stories.AssignCounts | None:
    """Near-duplicates and stories for one loaded batch; a failure is logged, never fatal."""
    engine = db.get_engine(db_url)
    try:
        counts = stories.assign(engine, article_ids)
    except Exception:
        get_run_logger().exception("story assignment failed for %d article(s)", len(article_ids))
        return None
    stories.record_run_counts(engine, run_id, counts)
    return counts


@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=TASK_WORKERS))
def ingest(
    sources_file: str | None = None,
    sources: list[str] | None = None,
    force: bool = False,
    kind: Literal["scheduled", "manual", "demo"] = "manual",
) -> dict[str, int]:
    """Poll the due feeds of the registry (all of them with ``force``) and load new articles."""
    logger = get_run_logger()
    settings = load_settings(sources_file)
    db_url = db.connect(settings)
    engine = db.get_engine(db_url)
    params = {"sources_file": str(settings.sources_file), "sources": sources or [], "force": force}
    run_id = store.start_run(engine, kind, params, flow_run.get_id())
    counts = store.RunCounts()
    tally = runs.SourceTally()  # per-source counts for the run's artifact
    try:
        sync_sources(db_url, settings)
        # Feeds are leased a chunk per task, TASK_WORKERS tasks at a time, until none is due:
        # concurrent runs (other workers, other machines) never poll the same feed.
        run_started = store.db_now(engine)
        worker = polling.worker_id(run_id)
        with Fetcher(settings, host_slots=store.host_slot_reserver(engine)) as fetcher:
            results: list[batch.PollResult] = []
            while True:
                futs = [poll_due_chunk.submit(db_url, fetcher, settings, run_id, worker, run_started,
                                              sources or [], force) for _ in range(TASK_WORKERS)]
                round_results = [r for fut in futs for r in fut.result()]
                if not round_results:
                    break
                results.extend(round_results)
            logger.info("%d feed(s) leased", len(results))
            items: list[batch.WorkItem] = []
            slug_of = runs.feed_slugs(engine, [r.outcome.feed_id for r in results])
            for res in results:
                if res.outcome.skipped:  # host parked by Retry-After: not polled, not a failure
                    continue
                tally.add_poll(slug_of[res.outcome.feed_id], res.outcome)
                counts.feeds_polled += 1
                counts.entries_seen += res.outcome.entries_seen
                if res.outcome.failed:
                    counts.feeds_failed += 1
                    counts.errors += 1
                    logger.warning("feed %s failed: %s: %s", res.outcome.url, res.outcome.error_kind,
                                   res.outcome.error)
                items.extend(res.items)
            batches = batch.make_batches(items, settings.batch_size)
            logger.info("%d new entr(ies) in %d batch(es)", len(items), len(batches))
            deferred: set[int] = set()
            for chunk, fut in zip(batches, [process_batch.submit(db_url, fetcher, settings, b) for b in batches]):
                out = fut.result()
                deferred.update(out.deferred_feeds)
                tally.add_batch(chunk[0].slug, out.inserted, out.updated, out.unchanged, out.failed)
                counts.articles_new += out.inserted
                counts.articles_updated += out.updated
                counts.errors += out.failed
                counts.duplicates += out.duplicates
                # in batch order, one at a time: story assignment is order-dependent
                if out.new_ids and assign_stories(db_url, run_id, out.new_ids) is None:
                    counts.errors += 1
            # Every new entry is loaded: now the feeds may answer 304 next time (except feeds
            # with a page another run was fetching: should that run die, the entry comes back).
            store.commit_validators(engine, [r.pending_validators for r in results if r.pending_validators
                                             and r.pending_validators.feed_id not in deferred])
    except BaseException as exc:
        store.finish_run(engine, run_id, counts, status="failed", error=f"{type(exc).__name__}: {exc}")
        publish_run_table(engine, run_id, "ingest", tally.rows(), note=f"failed: {type(exc).__name__}")
        raise
    store.finish_run(engine, run_id, counts)
    publish_run_table(engine, run_id, "ingest", tally.rows())
    summary = {"run_id": run_id, **vars(counts)}
    logger.info("ingest finished: %s", summary)
    return summary
