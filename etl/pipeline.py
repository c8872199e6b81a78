"""The two units of work the flows schedule: poll one feed, and process one batch of entries.

Each composes the stages in order (http → feeds → extract → normalize → store) and never
raises for bad input: a broken feed or page becomes a recorded error and the rest goes on.
Kept out of ``flows/`` so that it runs and is tested without Prefect.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine

from etl import archive, store
from etl.config import Settings
from etl.extract import extract_page, with_feed_fallback
from etl.extract_pool import ExtractionPool, PageJob, shared_pool
from etl.feeds import FeedEntry, FeedParseError, parse_feed
from etl.http import Fetcher, FetchResult
from etl.normalize import ArticleRecord, build_record
from etl.schedule import next_poll_in

log = logging.getLogger(__name__)

FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"


@dataclass(frozen=True)
class WorkItem:
    """One feed entry to fetch and load, with what it inherits from its feed."""

    feed_id: int
    source_id: int
    slug: str
    language: str | None
    min_request_interval: float
    entry: FeedEntry


@dataclass
class PollResult:
    outcome: store.PollOutcome
    items: list[WorkItem]


def poll_feed(engine: Engine, fetcher: Fetcher, settings: Settings, feed: store.FeedRow,
              run_id: int | None, force: bool = False) -> PollResult:
    """Fetches and parses one feed, records the poll, and returns the entries not yet stored."""
    res = fetcher.fetch(feed.url, max_bytes=settings.max_feed_bytes, etag=feed.etag,
                        last_modified=feed.last_modified, accept=FEED_ACCEPT,
                        min_interval=feed.min_request_interval)
    archive_responses(engine, settings, [res], "feed", feed_id=feed.id)  # raw archive (issue 4)
    error_kind, error = res.error_kind, res.error
    body_hash = hashlib.sha256(res.content).hexdigest() if res.ok else None
    seen = 0
    items: list[WorkItem] = []
    if res.ok and (force or body_hash != feed.body_hash):
        try:
            parsed = parse_feed(res.content, res.headers.get("content-type"), res.final_url,
                                settings.max_entries_per_poll)
            seen = len(parsed.entries)
            fresh = store.new_entries(engine, feed.id, parsed.entries)
            items = [WorkItem(feed.id, feed.source_id, feed.slug, feed.language,
                              feed.min_request_interval, e) for e in fresh]
        except FeedParseError as exc:
            error_kind, error, body_hash = "parse", str(exc), None
        except Exception as exc:  # a feed must never take the run down
            log.exception("unexpected error parsing %s", feed.url)
            error_kind, error, body_hash = "internal", f"{type(exc).__name__}: {exc}", None
    failed = error_kind is not None
    outcome = store.PollOutcome(
        feed_id=feed.id, url=feed.url, http_status=res.status,
        bytes=len(res.content) if res.content else 0, duration_ms=res.elapsed_ms,
        entries_seen=seen, entries_new=len(items), error_kind=error_kind, error=error,
        etag=res.headers.get("etag") if res.status in (200, 304) else None,
        last_modified=res.headers.get("last-modified") if res.status in (200, 304) else None,
        body_hash=body_hash,
        next_poll_in=next_poll_in(failed=failed, consecutive_failures=feed.consecutive_failures),
    )
    store.record_poll(engine, run_id, outcome)
    return PollResult(outcome, items)


def make_batches(items: Iterable[WorkItem], size: int) -> list[list[WorkItem]]:
    """Chunks of at most ``size`` items, one source per chunk, so that a batch's fetches share
    one host's politeness budget and batches of different outlets can run side by side."""
    by_source: dict[str, list[WorkItem]] = defaultdict(list)
    for item in items:
        by_source[item.slug].append(item)
    batches: list[list[WorkItem]] = []
    for slug in sorted(by_source):
        group = by_source[slug]
        batches.extend(group[i:i + size] for i in range(0, len(group), size))
    return batches


def fetch_pages(fetcher: Fetcher, settings: Settings, items: Sequence[WorkItem]) -> list[FetchResult]:
    def one(item: WorkItem) -> FetchResult:
        return fetcher.fetch(item.entry.link, max_bytes=settings.max_page_bytes, accept=PAGE_ACCEPT,
                             min_interval=item.min_request_interval)

    workers = max(1, min(settings.per_host_concurrency, len(items)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        return list(pool.map(one, items))


def build_records(items: Sequence[WorkItem], pages: Sequence[FetchResult],
                  pool: ExtractionPool | None = None) -> list[ArticleRecord]:
    """Extracts every page of the batch — all submitted to the worker pool at once — then
    applies the feed fallbacks and normalizes. Without a pool, extracts in this process."""
    jobs = [PageJob(page.content if page.ok else None, page.final_url) for page in pages]
    if pool is not None:
        page_results = pool.extract_pages(jobs)
    else:
        page_results = [extract_page(j.html, j.url) if j.html is not None else None for j in jobs]
    records = []
    for item, page, page_result in zip(items, pages, page_results, strict=True):
        extraction = with_feed_fallback(page_result, item.entry, page.describe_error() or None)
        records.append(build_record(
            source_id=item.source_id, feed_id=item.feed_id, feed_language=item.language,
            entry=item.entry, extraction=extraction, final_url=page.final_url,
            http_status=page.status, fetched_at=datetime.now(UTC),
        ))
    return records


@dataclass
class BatchResult:
    inserted: int
    updated: int
    unchanged: int
    failed: int  # rows whose extraction_status is 'failed'


def process_batch(engine: Engine, fetcher: Fetcher, settings: Settings,
                  items: Sequence[WorkItem]) -> BatchResult:
    """Fetch → extract → normalize → load for one batch; one transaction for the load."""
    pages = fetch_pages(fetcher, settings, items)
    refs = [archive.archive_fetch(settings, p, "page", PAGE_ACCEPT) for p in pages]  # raw archive (issue 4)
    records = build_records(items, pages, shared_pool(settings))
    loaded = store.upsert_articles(engine, records)
    store.index_archive(engine, [(ref, rec.canonical_url, None) for ref, rec in zip(refs, records, strict=True)])
    failed = sum(1 for r in records if r.extraction_status == "failed")
    return BatchResult(loaded.inserted, loaded.updated, loaded.unchanged, failed)


def archive_responses(engine: Engine, settings: Settings, responses: Sequence[FetchResult], kind: str,
                      feed_id: int | None = None) -> None:
    """Raw archive (issue 4): WARC records for each response, indexed in PostgreSQL. Never
    raises — losing the archive copy of a response must not lose the poll or the article."""
    try:
        accept = FEED_ACCEPT if kind == "feed" else PAGE_ACCEPT
        refs = [archive.archive_fetch(settings, r, kind, accept) for r in responses]
        store.index_archive(engine, [(ref, None, feed_id) for ref in refs])
    except Exception:
        log.exception("could not archive %d %s response(s)", len(responses), kind)
