"""Polling feeds: lease due feeds, poll them concurrently, record every poll in one write.

One poll: host parked? → skip (no request, no failure) · conditional GET · 304 or an unchanged
body hash → no parse · parse → entries not seen before · schedule from the feed's rhythm and
caching hints · 301/308 → new URL · 410 → deactivated · 429/503 → the *host* is parked for
Retry-After (persisted, so every worker respects it). Never raises: a broken feed is a
recorded error and the rest goes on.

Many workers: feeds are leased in PostgreSQL (FOR UPDATE SKIP LOCKED + an expiring lease), a
chunk at a time, so concurrent runs never poll one feed twice and a crashed worker's feeds are
free again after ``feed_lease_seconds``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from etl import store
from etl.config import Settings
from etl.fetch.http import FEED_ACCEPT, Fetcher
from etl.fetch.schedule import (
    bounds,
    cache_hint,
    entry_interval,
    feed_hint,
    next_poll_in,
    with_jitter,
)
from etl.fetch.urls import host_of
from etl.jobs import cpu
from etl.jobs.archiving import index_feeds, write_feed_response
from etl.jobs.runs import reap_dead_runs
from etl.jobs.submit import Submit, run_now
from etl.models import (
    ErrorKind,
    FeedEntry,
    FeedRow,
    IngestError,
    IngestErrorKind,
    PollOutcome,
    PollResult,
    Validators,
    WorkItem,
)
from etl.parse.feeds import FeedParseError, parse_feed
from etl.parse.normalize import RefusedEntry, storable_entry

log = logging.getLogger(__name__)

SCHEDULE_JITTER = 0.1  # ±10 % on every interval, so feeds polled together drift apart


def worker_id(run_id: int | None) -> str:
    """Who holds a lease: machine, process and run (shown by `newsetl status`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{run_id}"


def _skipped(feed: FeedRow, until: datetime) -> PollResult:
    """The feed's host is parked: due again when the host is free (plus jitter, so the feeds
    of one host do not all return in the same second). No request, no failure."""
    now = datetime.now(UTC)
    remaining = max((until - now).total_seconds(), 0.0)
    outcome = PollOutcome(
        feed_id=feed.id, url=feed.url, http_status=None, bytes=0, duration_ms=0,
        entries_seen=0, entries_new=0, error_kind=None, error=None, etag=None,
        last_modified=None, body_hash=None, next_poll_in=0.0,
        skipped_until=now + timedelta(seconds=with_jitter(remaining)),
    )
    return PollResult(feed.slug, outcome, [])


def poll_one(engine: Engine, fetcher: Fetcher, settings: Settings, feed: FeedRow,
             force: bool = False) -> PollResult:
    """Polls one feed and works out its new state; the caller records it (see poll_chunk)."""
    host = feed.host or host_of(feed.url)
    parked = fetcher.backoff_for(host)
    if parked is not None:
        return _skipped(feed, parked.until)
    res = fetcher.fetch(feed.url, max_bytes=settings.max_feed_bytes, etag=feed.etag,
                        last_modified=feed.last_modified, accept=FEED_ACCEPT,
                        min_interval=feed.min_request_interval)
    with cpu.stage("archive"):
        archived, unarchived = write_feed_response(settings, res)
    if res.error_kind == ErrorKind.HOST_BACKOFF:  # parked by another thread meanwhile, or a hop's host
        parked = fetcher.backoff_for(host_of(res.final_url)) or fetcher.backoff_for(host)
        if parked is not None:
            return _skipped(feed, parked.until)
    now = datetime.now(UTC)
    error_kind, error = res.error_kind, res.error
    answered = res.error_kind is None and res.status is not None and (res.ok or res.not_modified)
    body_hash = hashlib.sha256(res.content).hexdigest() if res.ok else None
    seen = 0
    items: list[WorkItem] = []
    gap = newest = ttl = None
    parsed_now = False
    problems: list[IngestError] = []
    if res.ok and (force or body_hash != feed.body_hash):
        try:
            parsed = parse_feed(res.content, res.headers.get("content-type"), res.final_url,
                                settings.max_entries_per_poll)
            parsed_now = True
            seen = len(parsed.entries)
            dates = [e.published_at for e in parsed.entries]
            gap = entry_interval(dates, now)
            newest = max((min(d, now) for d in dates if d is not None), default=None)
            ttl = feed_hint(parsed.ttl_minutes, parsed.update_period, parsed.update_frequency)
            entries, problems = storable_entries(feed, parsed.entries)
            fresh = store.new_entries(engine, feed.id, entries)
            items = [WorkItem(feed.id, feed.source_id, feed.slug, feed.language,
                              feed.min_request_interval, e) for e in fresh]
        except FeedParseError as exc:
            error_kind, error, body_hash = ErrorKind.PARSE, str(exc), None
        except Exception as exc:  # a feed must never take the run down
            log.exception("unexpected error parsing %s", feed.url)
            error_kind, error, body_hash = ErrorKind.INTERNAL, f"{type(exc).__name__}: {exc}", None
    failed = error_kind is not None

    # Schedule: the feed's rhythm (this poll's dates, else what we learned before), never more
    # often than the server (Cache-Control/Expires) or the feed (<ttl>, sy:updatePeriod) asked.
    entry_gap = gap or feed.entry_interval
    newest_known = max((d for d in (newest, feed.newest_entry_at) if d is not None), default=None)
    feed_ttl = ttl if parsed_now else feed.feed_ttl
    hints = [h for h in (cache_hint(res.headers, now) if answered else None, feed_ttl) if h]
    if res.backoff_until is not None:
        # The server said when to come back; that wins over our own back-off.
        low, _high = bounds(feed.min_interval, feed.max_interval)
        interval = max((res.backoff_until - now).total_seconds(), low)
    else:
        interval = next_poll_in(
            failed=failed, consecutive_failures=feed.consecutive_failures,
            min_interval=feed.min_interval, max_interval=feed.max_interval,
            hint=max(hints) if hints else None, entry_gap=entry_gap,
            silent_for=(now - newest_known).total_seconds() if newest_known else None,
            jitter=SCHEDULE_JITTER,
        )
    # Validators of a body we could not parse are not kept: a 304 must not hide a broken feed.
    validators = res.status in (200, 304) and error_kind is None
    pending = None
    if items and validators:
        # New entries are not loaded yet: keep the old validators until they are, so a run
        # killed in between re-reads this body next time instead of getting a 304.
        pending = Validators(feed.id, res.headers.get("etag"), res.headers.get("last-modified"),
                                   body_hash, res.status == 200)
        validators, body_hash_saved = False, None
    else:
        body_hash_saved = body_hash
    outcome = PollOutcome(
        feed_id=feed.id, url=res.final_url if res.status else feed.url, http_status=res.status,
        bytes=len(res.content) if res.content else 0, duration_ms=res.elapsed_ms,
        entries_seen=seen, entries_new=len(items), error_kind=error_kind, error=error,
        etag=res.headers.get("etag") if validators else None,
        last_modified=res.headers.get("last-modified") if validators else None,
        replace_validators=validators and res.status == 200,
        body_hash=body_hash_saved, next_poll_in=interval,
        new_url=res.permanent_url if answered and not failed else None,
        deactivate_reason=(f"HTTP 410 Gone on {now:%Y-%m-%d %H:%M}Z at {res.final_url}"
                           if res.status == 410 else None),
        entry_interval=gap, newest_entry_at=newest, feed_ttl=ttl, parsed=parsed_now,
    )
    return PollResult(feed.slug, outcome, items, pending, errors=problems, archived=archived,
                      unarchived=unarchived)


def storable_entries(feed: FeedRow, entries: Sequence[FeedEntry]) -> tuple[list[FeedEntry], list[IngestError]]:
    """The entries made storable (see etl.parse.normalize); one that cannot be (a link over
    the length limit) is left out and recorded, never allowed to fail the feed."""
    out: list[FeedEntry] = []
    problems: list[IngestError] = []
    for entry in entries:
        try:
            clean, notes = storable_entry(entry)
        except RefusedEntry as exc:
            problems.append(IngestError(IngestErrorKind.ENTRY_REFUSED, str(exc), entry.link, feed.id, feed.source_id))
            continue
        problems.extend(IngestError(IngestErrorKind.VALUE_DROPPED, n, clean.link, feed.id, feed.source_id)
                        for n in notes)
        out.append(clean)
    return out, problems


def _safe_poll(engine: Engine, fetcher: Fetcher, settings: Settings, feed: FeedRow,
               force: bool) -> PollResult:
    try:
        with cpu.stage("poll"):
            return poll_one(engine, fetcher, settings, feed, force)
    except Exception as exc:  # recorded, so the lease is released and the feed re-scheduled
        log.exception("unexpected error polling %s", feed.url)
        outcome = PollOutcome(
            feed_id=feed.id, url=feed.url, http_status=None, bytes=0, duration_ms=0,
            entries_seen=0, entries_new=0, error_kind=ErrorKind.INTERNAL,
            error=f"{type(exc).__name__}: {exc}"[:500], etag=None, last_modified=None,
            body_hash=None,
            next_poll_in=next_poll_in(failed=True, consecutive_failures=feed.consecutive_failures,
                                      min_interval=feed.min_interval, max_interval=feed.max_interval),
        )
        return PollResult(feed.slug, outcome, [])


def poll_chunk(engine: Engine, fetcher: Fetcher, settings: Settings, feeds: Sequence[FeedRow],
               run_id: int | None, force: bool = False) -> list[PollResult]:
    """Polls leased feeds concurrently (the Fetcher spaces requests per host and caps them
    globally), then records all polls in one transaction and persists any host back-off."""
    if not feeds:
        return []
    workers = max(1, min(settings.fetch_concurrency, len(feeds)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
        results = list(pool.map(lambda f: _safe_poll(engine, fetcher, settings, f, force), feeds))
    with cpu.stage("poll"):
        store.save_host_backoffs(engine, fetcher.drain_new_backoffs())
        store.record_polls(engine, run_id, [r.outcome for r in results])
    with cpu.stage("archive_index"):
        index_feeds(engine, [(r.archived, r.outcome.feed_id) for r in results])
    return results


def lease_and_poll(engine: Engine, fetcher: Fetcher, settings: Settings, run_id: int | None, *,
                   worker: str, run_started: datetime, slugs: Sequence[str] = (),
                   force: bool = False) -> list[PollResult]:
    """One unit of work for a task: claim a chunk of due feeds and poll it. Empty when nothing
    is left for this run."""
    with cpu.stage("poll"):
        fetcher.add_backoffs(store.active_host_backoffs(engine))  # other workers' Retry-After
        feeds = store.lease_feeds(engine, worker=worker, limit=settings.poll_chunk_size,
                                  lease_seconds=settings.feed_lease_seconds, run_started=run_started,
                                  slugs=slugs, force=force)
    try:
        return poll_chunk(engine, fetcher, settings, feeds, run_id, force)
    except BaseException:
        store.release_leases(engine, worker, [f.id for f in feeds])
        raise


def poll_due(engine: Engine, fetcher: Fetcher, settings: Settings, run_id: int | None, *,
             slugs: Sequence[str] = (), force: bool = False, worker: str | None = None,
             loops: int = 1, submit: Submit = run_now) -> list[PollResult]:
    """Every due feed: rounds of up to ``loops`` units of work (each leases a chunk and polls
    it), as many as the feeds left to lease fill, until none is left for this run. The ingest
    cycle submits the units as Prefect tasks (each one a task run: a unit that would find
    nothing is not started); scripts and tests run them at once."""
    worker = worker or worker_id(run_id)
    run_started = store.db_now(engine)
    results: list[PollResult] = []
    chunk = max(1, settings.poll_chunk_size)
    while True:
        if results:  # a run that died since our start (or the last round) leaves its leases to us
            reap_dead_runs(engine, except_run=run_id)
        with cpu.stage("poll"):
            left = store.count_leasable_feeds(engine, run_started=run_started, slugs=slugs, force=force)
        if not left:
            return results
        units = min(loops, -(-left // chunk))
        pending = [submit(lease_and_poll, engine, fetcher, settings, run_id, worker=worker,
                          run_started=run_started, slugs=list(slugs), force=force) for _ in range(units)]
        found = [r for p in pending for r in p.result()]
        if not found:  # another worker leased them meanwhile
            return results
        results.extend(found)
