"""One ingest cycle — written once, run by the ``ingest`` flow and by the Prefect-less path.

sync the registry → lease and poll the due feeds (rounds of ``task_workers`` chunks) → process
the new entries in batches (at most ``task_workers`` in flight) → assign each loaded batch's
stories, in batch order (assignment is order-dependent) in a thread of its own, while later
batches load → commit the feeds' validators.

The flow passes ``submit`` so that every unit becomes a Prefect task run; scripts, evaluations
and tests leave the default and the units run at once.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice

from sqlalchemy import Engine

from etl import store, stories
from etl.config import Settings, Source
from etl.fetch.http import Fetcher
from etl.jobs import batch, cpu, polling
from etl.jobs.runs import RunReport
from etl.jobs.story_lane import StoryLane
from etl.jobs.submit import Pending, Submit, run_now
from etl.models import AssignCounts, BatchResult, PollResult, WorkItem, add_seconds

log = logging.getLogger(__name__)

CATCH_UP_DAYS = 7
# Batches per cycle, whatever its size (larger batches past it): with one story assignment at
# most per batch, a flow run stays at ≤ 2 × 64 task runs of batches and stories plus its polls.
MAX_BATCHES_PER_RUN = 64


@dataclass
class CycleResult:
    polls: list[PollResult] = field(default_factory=list)
    batches: list[BatchResult] = field(default_factory=list)
    stories: AssignCounts = field(default_factory=AssignCounts)
    report: RunReport = field(default_factory=RunReport)
    held: dict[str, int] = field(default_factory=dict)  # due feeds other live runs hold: worker → count
    stage_seconds: dict[str, float] = field(default_factory=dict)  # busy seconds per stage
    stage_cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per stage (etl.jobs.cpu)

    @property
    def inserted(self) -> int:
        return sum(b.inserted for b in self.batches)

    @property
    def failed_polls(self) -> list[PollResult]:
        return [p for p in self.polls if p.outcome.failed]


def run_cycle(engine: Engine, settings: Settings, *, fetcher: Fetcher | None = None,
              run_id: int | None = None, registry: Sequence[Source] | None = None,
              slugs: Sequence[str] = (), force: bool = False, submit: Submit = run_now,
              report: RunReport | None = None) -> CycleResult:
    """Runs one cycle and returns what it did. ``registry``: sources to sync first (the flow
    passes the sources file; callers that synced already pass None). ``report``: filled as
    results come back, so a run that fails half-way still records what it loaded. Without a
    ``fetcher``, one with host pacing shared through PostgreSQL is opened for the cycle."""
    result = CycleResult(report=report or RunReport())
    if registry is not None:
        submit(store.sync_sources, engine, registry).result()
    if fetcher is None:
        with Fetcher(settings, host_slots=store.HostSlots(engine)) as own:
            return _cycle(engine, settings, own, run_id, slugs, force, submit, result)
    return _cycle(engine, settings, fetcher, run_id, slugs, force, submit, result)


def _cycle(engine: Engine, settings: Settings, fetcher: Fetcher, run_id: int | None, slugs: Sequence[str],
           force: bool, submit: Submit, result: CycleResult) -> CycleResult:
    # Feeds are leased a chunk per unit, task_workers units per round, until none is due:
    # concurrent runs (other workers, other machines) never poll the same feed.
    started = time.perf_counter()
    # CPU of the process so far (imports, settings, the flow run's start) and the ledger's
    # state: the cycle logs what each stage cost during it (etl.jobs.cpu).
    cpu_at_start, ledger = time.process_time(), cpu.snapshot()
    times: dict[str, float] = {}
    result.report.archive.directory = str(settings.archive_path)  # named when a write fails
    # Articles a dead run loaded but never gave a story go first, as they would have.
    with batch.timed(times, "catch_up"):
        catch_up_stories(engine, settings, run_id, submit, result)
    with batch.timed(times, "poll"):
        result.polls = polling.poll_due(engine, fetcher, settings, run_id, slugs=slugs, force=force,
                                        loops=settings.task_workers, submit=submit)
    with cpu.stage("cycle"):
        result.held = store.held_feeds(engine, polling.worker_id(run_id), slugs)
        items: list[WorkItem] = []
        for res in result.polls:
            store.record_ingest_errors(engine, run_id, res.errors)
            result.report.add_poll(res)
            if res.outcome.failed:
                log.warning("feed %s failed: %s: %s", res.outcome.url, res.outcome.error_kind, res.outcome.error)
            items.extend(res.items)
        batches = batch.make_batches(items, settings.batch_size, max_batches=MAX_BATCHES_PER_RUN)
    log.info("%d feed(s) polled, %d new entr(ies) in %d batch(es)", len(result.polls), len(items), len(batches))
    deferred: set[int] = set()
    # Stories are assigned in their own thread, batch after batch in load order, while later
    # batches are still fetched, extracted and loaded (see etl.jobs.story_lane).
    with StoryLane(submit, engine, settings.stories, run_id) as lane:
        for chunk, out in _in_order(submit, batches, engine, fetcher, settings, settings.task_workers, run_id):
            if out is None:  # the batch failed as a whole: its feeds keep their validators
                deferred.update(i.feed_id for i in chunk if i.feed_id is not None)
                result.report.counts.errors += 1
                continue
            with cpu.stage("cycle"):
                store.record_ingest_errors(engine, run_id, out.errors)
            result.batches.append(out)
            add_seconds(times, out.stage_seconds)
            result.report.add_batch(chunk[0].slug, out)
            deferred.update(out.deferred_feeds)
            lane.add(out.new_ids)
            times.setdefault("first_batch_loaded_at", time.perf_counter() - started)
        times["last_batch_loaded_at"] = time.perf_counter() - started
    result.stories.add(lane.counts)
    result.report.counts.errors += lane.errors
    times["stories"] = lane.seconds
    # Every new entry is loaded: now the feeds may answer 304 next time (except feeds with a
    # page another run was fetching: should that run die, the entry comes back).
    with cpu.stage("cycle"):
        store.commit_validators(engine, [p.pending_validators for p in result.polls if p.pending_validators
                                         and p.pending_validators.feed_id not in deferred])
    times["cycle"] = time.perf_counter() - started
    result.stage_seconds = times
    log.info("stage seconds: %s", json.dumps({k: round(v, 2) for k, v in sorted(times.items())}))
    spent = cpu.since(ledger)
    spent.update(process_at_start=cpu_at_start, process_in_cycle=time.process_time() - cpu_at_start)
    result.stage_cpu = spent
    log.info("stage cpu seconds: %s", json.dumps({k: round(v, 3) for k, v in sorted(spent.items())}))
    return result


def catch_up_stories(engine: Engine, settings: Settings, run_id: int | None, submit: Submit,
                     result: CycleResult) -> None:
    """Assigns stories to the articles of the last ``CATCH_UP_DAYS`` that no assignment has
    processed: a run killed between loading a batch and assigning it leaves them behind. At
    most ``MAX_BATCHES_PER_RUN`` units (larger ones past it), so task runs stay bounded."""
    with cpu.stage("stories"):
        since = store.db_now(engine) - timedelta(days=CATCH_UP_DAYS)
        ids = store.unstoried_articles(engine, since, run_id)
    size = max(settings.batch_size, -(-len(ids) // MAX_BATCHES_PER_RUN))
    stage = stories.StoryStage(engine, settings.stories) if ids else None
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        counts = submit(batch.assign_stories, engine, chunk, settings.stories, run_id, stage).result()
        if counts is None:
            result.report.counts.errors += 1
        else:
            result.stories.add(counts)
    if ids:
        log.info("assigned stories to %d article(s) left behind by an earlier run", len(ids))


@dataclass(frozen=True)
class _Failed:
    """A unit that failed when submitted; ``result()`` raises its exception."""

    exc: Exception

    def result(self) -> BatchResult:
        raise self.exc


def _in_order(submit: Submit, batches: list[list[WorkItem]], engine: Engine, fetcher: Fetcher,
              settings: Settings, in_flight: int,
              run_id: int | None = None) -> Iterator[tuple[list[WorkItem], BatchResult | None]]:
    """Processes the batches with at most ``in_flight`` submitted ahead, yielding them in order;
    a batch that failed as a whole yields None (logged): one bad batch is no poison pill for
    the batches after it, nor for the batches of other sources in flight."""
    def start(chunk: list[WorkItem]) -> tuple[list[WorkItem], Pending[BatchResult]]:
        try:
            return chunk, submit(batch.process_batch, engine, fetcher, settings, chunk, only_new=True,
                                 run_id=run_id)
        except Exception as exc:  # run_now runs the unit here: its failure surfaces at once
            return chunk, _Failed(exc)

    todo = iter(batches)
    waiting = deque(start(chunk) for chunk in islice(todo, in_flight))
    while waiting:
        chunk, pending = waiting.popleft()
        out: BatchResult | None
        try:
            out = pending.result()
        except Exception:
            log.exception("a batch of %d entr(ies) of %s failed; its feeds will offer them again",
                          len(chunk), chunk[0].slug)
            out = None
        waiting.extend(start(nxt) for nxt in islice(todo, 1))  # one in, one out
        yield chunk, out
