"""Process one batch of entries: fetch → extract → normalize → load; and its story unit.

The batch is the unit the flows schedule (one Prefect task per ~100 articles). It composes the
stages in order and never raises for bad input: a broken page becomes a recorded error and the
rest of the batch loads. Plain functions, so it runs and is tested without Prefect.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from contextlib import contextmanager
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from etl import store, stories
from etl.config import Settings, StoryConfig
from etl.fetch.http import PAGE_ACCEPT, Fetcher
from etl.fetch.urls import host_of
from etl.jobs import archiving, cpu
from etl.jobs.runs import reap_dead_runs
from etl.models import (
    REFUSED_FETCHES,
    ArchiveRef,
    IngestError,
    IngestErrorKind,
    ArticleRecord,
    AssignCounts,
    BatchResult,
    Extraction,
    ExtractionStatus,
    FetchResult,
    WorkItem,
)
from etl.parse.extract import with_feed_fallback
from etl.parse.normalize import RefusedEntry, build_record, storable_entry
from etl.parse.pool import ExtractionPool, PageJob, PageTicket, shared_pool

log = logging.getLogger(__name__)



def make_batches(items: Iterable[WorkItem], size: int, max_batches: int | None = None) -> list[list[WorkItem]]:
    """Chunks of at most ``size`` items, one source per chunk, so that a batch's fetches share
    one host's politeness budget and batches of different outlets can run side by side.

    With ``max_batches``, ``size`` grows as needed so that there are at most
    ``max(max_batches, number of sources)`` chunks: a backfill of 10,000 pages is not 100+
    Prefect task runs of batches plus as many of story assignment."""
    by_source: dict[str, list[WorkItem]] = defaultdict(list)
    for item in items:
        by_source[item.slug].append(item)

    def count(n: int) -> int:
        return sum(-(-len(group) // n) for group in by_source.values())

    if max_batches is not None:
        while count(size) > max(max_batches, len(by_source)):
            size = max(size + 1, size * 5 // 4)
    batches: list[list[WorkItem]] = []
    for slug in sorted(by_source):
        group = by_source[slug]
        batches.extend(group[i:i + size] for i in range(0, len(group), size))
    return batches


@dataclass(frozen=True)
class _Fetched:
    page: FetchResult
    archived: ArchiveRef | None
    extraction: PageTicket  # already running in the worker pool
    seconds: tuple[float, float]  # fetching, archiving
    unarchived: IngestError | None = None  # the page came back but could not be archived


def fetch_pages(fetcher: Fetcher, settings: Settings, items: Sequence[WorkItem],
                pool: ExtractionPool) -> list[_Fetched]:
    """Fetches the batch's pages in ``per_host_concurrency`` threads; each thread archives its
    page (compression releases the GIL) and hands it to the extraction pool at once, so the
    workers are busy from the first page on rather than after the batch's last fetch."""
    priority = time.monotonic()  # an earlier batch's pages are extracted first

    def one(item: WorkItem) -> _Fetched:
        started = time.perf_counter()
        with cpu.stage("fetch"):
            # Article links come from untrusted feeds: the fetcher checks every hop (SSRF) and,
            # for pages, robots.txt (cached per host).
            page = fetcher.fetch(item.entry.link, max_bytes=settings.max_page_bytes, accept=PAGE_ACCEPT,
                                 min_interval=item.min_request_interval, respect_robots=True)
        fetched = time.perf_counter()
        with cpu.stage("archive"):
            archived, unarchived = archiving.write_page(settings, page, item)
        archived_at = time.perf_counter()
        with cpu.stage("extract_submit"):
            ticket = pool.submit(PageJob(page.content if page.ok else None, page.final_url), priority)
        # The bytes are archived and in the pool's hands: the batch keeps the response without
        # them, so a batch in flight holds its pages' text, not their HTML (memory stays flat).
        return _Fetched(dataclasses.replace(page, content=b""), archived, ticket,
                        (fetched - started, archived_at - fetched), unarchived)

    workers = max(1, min(settings.per_host_concurrency, len(items)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as threads:
        return list(threads.map(one, items))


def _build_aligned(items: Sequence[WorkItem], pages: Sequence[FetchResult], pool: ExtractionPool,
                   errors: list[IngestError] | None = None) -> list[ArticleRecord | None]:
    """Extracts every page of the batch — all submitted to the worker pool at once — then applies
    the feed fallbacks and normalizes: one entry per item, None where the record could not be
    built (normalization refused it, or a bug; added to ``errors`` with the values it dropped)."""
    jobs = [PageJob(page.content if page.ok else None, page.final_url) for page in pages]
    return records_from(items, pages, pool.extract_pages(jobs), errors)


def records_from(items: Sequence[WorkItem], pages: Sequence[FetchResult],
                 page_results: Sequence[Extraction | None],
                 errors: list[IngestError] | None = None) -> list[ArticleRecord | None]:
    """Feed fallbacks and normalization of extracted pages (cheap: the main process's part),
    one entry per item: None where the record could not be built (recorded in ``errors``)."""
    errors = errors if errors is not None else []
    records: list[ArticleRecord | None] = []
    for item, page, page_result in zip(items, pages, page_results, strict=True):
        if page.error_kind in REFUSED_FETCHES:
            # We chose not to fetch it (robots.txt, unsafe address/scheme): a failed row that
            # says why, not a feed-summary stand-in.
            extraction = Extraction(status=ExtractionStatus.FAILED, error=page.describe_error())
        else:
            extraction = with_feed_fallback(page_result, item.entry, page.describe_error() or None)
        try:
            rec = build_record(
                source_id=item.source_id, feed_id=item.feed_id, feed_language=item.language,
                entry=item.entry, extraction=extraction, final_url=page.final_url,
                http_status=page.status, fetched_at=datetime.now(UTC),
            )
        except Exception as exc:  # one entry must never cost the batch
            kind = IngestErrorKind.ENTRY_REFUSED if isinstance(exc, RefusedEntry) else IngestErrorKind.ROW_FAILED
            if not isinstance(exc, RefusedEntry):
                log.exception("could not build the record of %s", item.entry.link)
            errors.append(IngestError(kind, f"{type(exc).__name__}: {exc}", item.entry.link,
                                      item.feed_id, item.source_id))
            records.append(None)
            continue
        errors.extend(IngestError(IngestErrorKind.VALUE_DROPPED, note, rec.url, rec.feed_id, rec.source_id)
                      for note in rec.notes)
        records.append(rec)
    return records


def process_batch(engine: Engine, fetcher: Fetcher, settings: Settings,
                  items: Sequence[WorkItem], only_new: bool = False, run_id: int | None = None) -> BatchResult:
    """Fetch → extract → normalize → load for one batch; one transaction for the load.

    Pages are claimed in PostgreSQL first: a page another run is fetching right now is left
    to it (its feed is reported in ``deferred_feeds``, so that feed's validators stay
    uncommitted and the entry is seen again if that run dies). With ``only_new`` (the ingest
    flow), entries stored since the poll — by a backfill, another worker — are only linked
    to their feed, not fetched again.

    Entries whose link cannot be stored are refused first (and reported in ``errors``); the
    page claims name the run (``run:<id>:…``), so that a later run that finds this run dead
    frees them at once.
    """
    with cpu.stage("claims"):
        items, refused = _storable(items)
        if only_new:
            items = _still_new(engine, items)
    owner = f"run:{run_id}:{uuid.uuid4().hex}" if run_id is not None else uuid.uuid4().hex
    try:
        result, waiting = _claim_and_load(engine, fetcher, settings, items, owner)
        # Pages another run was fetching: wait for that run to store them (then only the feed
        # reference is recorded) or to give them up (then they are fetched here).
        deadline = time.monotonic() + settings.page_claim_seconds
        next_reap = time.monotonic() + REAP_EVERY_SECONDS
        while waiting and time.monotonic() < deadline:
            time.sleep(CLAIM_POLL_SECONDS)
            if time.monotonic() >= next_reap:  # the owner may have died meanwhile: free its claims
                reap_dead_runs(engine, except_run=run_id)
                next_reap = time.monotonic() + REAP_EVERY_SECONDS
            with cpu.stage("claims"):
                waiting = _still_new(engine, waiting)
            more, waiting = _claim_and_load(engine, fetcher, settings, waiting, owner)
            result.add(more)
    finally:
        with cpu.stage("claims"):
            store.release_pages(engine, owner)
    result.deferred_feeds = sorted({i.feed_id for i in waiting if i.feed_id is not None})
    result.errors[:0] = refused
    result.failed += len(refused)
    return result


def _storable(items: Sequence[WorkItem]) -> tuple[list[WorkItem], list[IngestError]]:
    """Items whose entry can be stored (feed entries are made storable when polled; backfilled
    URLs come here raw), and the refusals of the others."""
    keep: list[WorkItem] = []
    refused: list[IngestError] = []
    for item in items:
        try:
            clean, _notes = storable_entry(item.entry)
        except RefusedEntry as exc:
            refused.append(IngestError(IngestErrorKind.ENTRY_REFUSED, str(exc), item.entry.link,
                                       item.feed_id, item.source_id))
            continue
        keep.append(item if clean == item.entry else dataclasses.replace(item, entry=clean))
    return keep, refused


CLAIM_POLL_SECONDS = 0.2
REAP_EVERY_SECONDS = 5.0


def claim_seconds(settings: Settings, items: Sequence[WorkItem]) -> float:
    """How long a batch holds its page claims: the claim TTL plus the time its politeness alone
    takes (a batch can grow past 100 pages when a run caps its batches), so that a live run's
    claims do not expire while it is still fetching them."""
    per_host: dict[str, float] = defaultdict(float)
    for item in items:
        per_host[host_of(item.entry.canonical_url)] += item.min_request_interval
    slowest = max(per_host.values(), default=0.0) / max(1, settings.per_host_concurrency)
    return settings.page_claim_seconds + slowest


def _claim_and_load(engine: Engine, fetcher: Fetcher, settings: Settings, items: Sequence[WorkItem],
                    owner: str) -> tuple[BatchResult, list[WorkItem]]:
    with cpu.stage("claims"):
        claimed = store.claim_pages(engine, (i.entry.canonical_url for i in items), owner,
                                    claim_seconds(settings, items))
    mine = [i for i in items if i.entry.canonical_url in claimed]
    return _load(engine, fetcher, settings, mine), [i for i in items if i.entry.canonical_url not in claimed]


def _still_new(engine: Engine, items: Sequence[WorkItem]) -> list[WorkItem]:
    """Items not stored yet; a feed's entry stored meanwhile only gets its feed reference."""
    by_feed: dict[int, list[WorkItem]] = defaultdict(list)
    loose: list[WorkItem] = []  # backfilled URLs: no feed listed them
    for item in items:
        if item.feed_id is None:
            loose.append(item)
        else:
            by_feed[item.feed_id].append(item)
    stored = store.stored_urls(engine, [i.entry.canonical_url for i in loose])
    keep: list[WorkItem] = [i for i in loose if i.entry.canonical_url not in stored]
    for feed_id, group in by_feed.items():
        fresh = {e.entry_key for e in store.new_entries(engine, feed_id, [i.entry for i in group])}
        keep.extend(i for i in group if i.entry.entry_key in fresh)
    return keep


def _load(engine: Engine, fetcher: Fetcher, settings: Settings, items: Sequence[WorkItem]) -> BatchResult:
    if not items:
        return BatchResult(0, 0, 0, 0)
    pool = shared_pool(settings)
    times: dict[str, float] = {}
    with timed(times, "fetch_wall"):
        fetched = fetch_pages(fetcher, settings, items, pool)
        with cpu.stage("fetch"):
            store.save_host_backoffs(engine, fetcher.drain_new_backoffs())  # a page's 429 parks its host for all
    times["fetch"] = sum(f.seconds[0] for f in fetched)
    times["archive"] = sum(f.seconds[1] for f in fetched)
    pages = [f.page for f in fetched]
    with timed(times, "extract_wait"), cpu.stage("extract_submit"):
        extractions = [pool.result(f.extraction) for f in fetched]
    # Pages that could not be archived still load; each is recorded (which page, why) and counted.
    errors: list[IngestError] = [f.unarchived for f in fetched if f.unarchived is not None]
    with timed(times, "normalize"), cpu.stage("normalize"):
        aligned = records_from(items, pages, extractions, errors)
    out = _store(engine, aligned, [f.archived for f in fetched], errors, times)
    out.unarchived = sum(1 for f in fetched if f.unarchived is not None)
    return out


def load_pages(engine: Engine, settings: Settings, items: Sequence[WorkItem],
               pages: Sequence[FetchResult]) -> BatchResult:
    """A batch whose responses are already at hand (a WARC backfill): extract, normalize and
    load with the same per-row accounting as :func:`process_batch` (``errors`` to record)."""
    errors: list[IngestError] = []
    aligned = _build_aligned(items, pages, shared_pool(settings), errors)
    return _store(engine, aligned, [None] * len(aligned), errors, {})


def _store(engine: Engine, aligned: Sequence[ArticleRecord | None], archived: Sequence[ArchiveRef | None],
           errors: list[IngestError], times: dict[str, float]) -> BatchResult:
    """Loads the records that could be built (``aligned``: None for the others) and indexes their
    archived responses; a row the database refuses is recorded in ``errors``, the rest load."""
    records = [r for r in aligned if r is not None]
    refs = [ref for ref, r in zip(archived, aligned, strict=True) if r is not None]
    with timed(times, "load"), cpu.stage("load"):
        loaded = store.upsert_articles(engine, records)
    by_url = {r.canonical_url: r for r in records}
    for url, why in loaded.failed:
        rec = by_url.get(url)
        errors.append(IngestError(IngestErrorKind.ROW_FAILED, why, rec.url if rec else url,
                                  rec.feed_id if rec else None, rec.source_id if rec else None))
    bad = {url for url, _ in loaded.failed}
    if any(ref is not None for ref in refs):
        with timed(times, "index"), cpu.stage("archive_index"):
            archiving.index_pages(engine, refs, records)
    # failed: rows stored as 'failed', rows the database refused, records never built
    failed = sum(1 for r in records if r.extraction_status == ExtractionStatus.FAILED or r.canonical_url in bad)
    failed += sum(1 for r in aligned if r is None)
    return BatchResult(loaded.inserted, loaded.updated, loaded.unchanged, failed,
                       loaded.duplicates, loaded.new_ids, errors=errors, stage_seconds=times)


@contextmanager
def timed(times: dict[str, float], stage: str) -> Iterator[None]:
    """Adds the block's wall time to ``times[stage]``: the stage breakdown a run logs (and
    bench/bench_e2e.py reports), from the code's own clocks rather than a profiler."""
    started = time.perf_counter()
    try:
        yield
    finally:
        times[stage] = times.get(stage, 0.0) + time.perf_counter() - started


def assign_stories(engine: Engine, article_ids: Sequence[int], config: StoryConfig,
                   run_id: int | None = None, stage: stories.StoryStage | None = None) -> AssignCounts | None:
    """Near-duplicates and stories for one loaded batch, its counts added to the run's row.
    ``stage``: the run's story stage (window state and profile cache kept across its batches).
    A failure is logged and returned as None, never raised: the articles stay loaded
    (``newsetl recluster --since`` assigns them later)."""
    try:
        with cpu.stage("stories"):
            counts = stories.assign(engine, article_ids, config, stage)
    except Exception:
        log.exception("story assignment failed for %d article(s)", len(article_ids))
        return None
    if run_id is not None:
        with cpu.stage("stories"):
            store.add_story_counts(engine, run_id, counts)
    return counts
