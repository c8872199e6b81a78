"""Backfill: load the articles of a past date range, from sitemaps, a URL list or WARC files.

A backfill is *planned* (``etl.jobs.backfill.plan``: which URLs, in which window), then *run*
here one window at a time. Each window ends with a checkpoint row (``backfill_windows``), so a
killed backfill resumes at the window it was in and never redoes a finished one. Every load
goes through the same stages as feed entries (``batch.process_batch`` → extract → normalize →
store upserts → stories), with the source's politeness, and a URL already stored — by this
backfill, the scheduled ingest or anyone — is skipped *before* it is fetched.

:func:`run_backfill` is the whole job, written once: the ``newsetl backfill`` command runs it
with a progress bar, the ``backfill`` flow with each unit as a Prefect task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from etl import store
from etl.config import Settings
from etl.fetch.http import Fetcher
from etl.jobs import batch
from etl.jobs.backfill.plan import (
    BackfillSpec,
    Candidate,
    Plan,
    SourceInfo,
    Window,
    plan_backfill,
    resolve_sources,
)
from etl.jobs.reextract import reextract
from etl.jobs.runs import ArchiveTrouble
from etl.jobs.submit import Submit, run_now
from etl.models import (
    ErrorKind,
    FeedEntry,
    FetchResult,
    IngestErrorKind,
    RunCounts,
    SourceCounts,
    WindowStatus,
    WorkItem,
)
from etl.store.backfills import done_units, record_window, window_lock

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Running one window


@dataclass
class WindowResult:
    unit: str
    status: WindowStatus
    items: int = 0
    fetched: int = 0
    by_source: dict[str, SourceCounts] = field(default_factory=dict)
    error: str | None = None
    unarchived: list[str] = field(default_factory=list)  # why, for each page loaded without its archive copy

    def counts(self) -> SourceCounts:
        total = SourceCounts()
        for c in self.by_source.values():
            total.add(c)
        return total


def _checkpoint(spec: BackfillSpec, window: Window, result: WindowResult, run_id: int | None) -> dict[str, Any]:
    c = result.counts()
    return {"job_key": spec.job_key, "unit": window.unit, "mode": spec.mode, "sources": list(spec.sources),
            "window_start": window.start, "window_end": window.end, "status": result.status,
            "run_id": run_id, "items": result.items, "fetched": result.fetched, "articles_new": c.new,
            "articles_updated": c.updated, "duplicates": c.duplicates, "failed": c.failed,
            "error": result.error}


def _work_item(c: Candidate, src: SourceInfo) -> WorkItem:
    entry = FeedEntry(entry_key=c.url, link=c.url, canonical_url=c.canonical_url, title=c.title,
                      published_at=c.published_at)
    return WorkItem(feed_id=None, source_id=src.id, slug=src.slug, language=c.language,
                    min_request_interval=src.min_request_interval, entry=entry)


def _read_warc_page(c: Candidate, max_bytes: int) -> FetchResult:
    """The archived response as if it had just been fetched; no network."""
    from warcio.archiveiterator import ArchiveIterator

    assert c.warc_path is not None and c.warc_offset is not None
    result = FetchResult(url=c.url, final_url=c.url)
    try:
        with open(c.warc_path, "rb") as fh:
            fh.seek(c.warc_offset)
            record = next(iter(ArchiveIterator(fh)))
            result.status = int(record.http_headers.get_statuscode())
            result.headers = {k.lower(): v for k, v in record.http_headers.headers}
            body = record.content_stream().read(max_bytes + 1)
        if len(body) > max_bytes:
            result.error_kind, result.error = ErrorKind.TOO_LARGE, f"archived body exceeds cap of {max_bytes} bytes"
        else:
            result.content = body
    except Exception as exc:  # a damaged record is one failed page, not a failed window
        result.error_kind, result.error = ErrorKind.WARC, f"{type(exc).__name__}: {exc}"[:300]
    return result


def run_window(engine: Engine, fetcher: Fetcher | None, settings: Settings, spec: BackfillSpec,
               window: Window, sources: Sequence[SourceInfo], run_id: int | None,
               plan_complete: bool = True, on_items: Callable[[int], None] | None = None) -> WindowResult:
    """Loads one window and writes its checkpoint. Never raises for bad input: an unexpected
    error is recorded on the window ('failed', retried by the next run) and returned."""
    with window_lock(engine, spec.job_key, window.unit) as held:
        if not held:
            return WindowResult(window.unit, WindowStatus.BUSY, error="another run of this job holds the window")
        if window.unit in done_units(engine, spec.job_key):
            return WindowResult(window.unit, WindowStatus.SKIPPED)
        result = WindowResult(window.unit, WindowStatus.DONE, items=len(window.candidates))
        try:
            if spec.mode == "reextract":
                _reextract_window(engine, settings, spec, window, result)
            else:
                _load_window(engine, fetcher, settings, spec, window, sources, result, run_id, on_items)
        except Exception as exc:
            log.exception("backfill window %s failed", window.unit)
            result.status, result.error = WindowStatus.FAILED, f"{type(exc).__name__}: {exc}"[:1000]
        else:
            # A window that is not over yet (today) or came from a partial plan is done again
            # by the next run; everything already stored is skipped then, so it costs little.
            if not plan_complete or (window.end is not None and window.end > datetime.now(UTC)):
                result.status = WindowStatus.INCOMPLETE
        record_window(engine, _checkpoint(spec, window, result, run_id))
        return result


def _load_window(engine: Engine, fetcher: Fetcher | None, settings: Settings, spec: BackfillSpec,
                 window: Window, sources: Sequence[SourceInfo], result: WindowResult, run_id: int | None,
                 on_items: Callable[[int], None] | None) -> None:
    by_slug = {s.slug: s for s in sources}
    items = [_work_item(c, by_slug[c.slug]) for c in window.candidates]
    candidates = {c.canonical_url: c for c in window.candidates}
    for chunk in batch.make_batches(items, settings.batch_size):
        counts = result.by_source.setdefault(chunk[0].slug, SourceCounts())
        counts.items += len(chunk)
        # Checked per batch, right before fetching: the scheduled ingest may have stored some
        # of these since the plan was made.
        known = store.stored_urls(engine, [i.entry.canonical_url for i in chunk])
        todo = [i for i in chunk if i.entry.canonical_url not in known]
        counts.duplicates += len(chunk) - len(todo)
        if todo:
            if spec.mode == "warc":
                pages = [_read_warc_page(candidates[i.entry.canonical_url], settings.max_page_bytes) for i in todo]
                out = batch.load_pages(engine, settings, todo, pages)
            else:
                assert fetcher is not None
                out = batch.process_batch(engine, fetcher, settings, todo, run_id=run_id)
            store.record_ingest_errors(engine, run_id, out.errors)
            result.unarchived.extend(e.detail for e in out.errors if e.kind == IngestErrorKind.ARCHIVE_FAILED)
            inserted, updated, unchanged, duplicates, new_ids = (
                out.inserted, out.updated, out.unchanged, out.duplicates, out.new_ids)
            failed = out.failed
            result.fetched += len(todo)
            counts.new += inserted
            counts.updated += updated
            counts.duplicates += unchanged + duplicates  # unchanged rows and exact duplicates
            counts.failed += failed
            # As the ingest does, batch by batch; backfilled windows may arrive out of date
            # order, and the daily maintenance reclusters the recent window.
            if new_ids:
                batch.assign_stories(engine, new_ids, settings.stories, run_id)
        if on_items:
            on_items(len(chunk))


def _reextract_window(engine: Engine, settings: Settings, spec: BackfillSpec, window: Window,
                      result: WindowResult) -> None:
    out = reextract(engine, settings, since=window.start, until=window.end, sources=spec.sources)
    counts = result.by_source.setdefault(",".join(spec.sources) or "all", SourceCounts())
    counts.items += out.selected
    counts.updated += out.updated
    counts.duplicates += out.unchanged
    counts.failed += out.failed


# ---------------------------------------------------------------------------------------------
# The whole job


class Progress:
    """Hooks for a progress display (the CLI's bars, the flow's artifact); the default does
    nothing."""

    def planned(self, plan: Plan, todo: Sequence[Window]) -> None: ...

    def items_done(self, n: int) -> None: ...

    def window_done(self, result: WindowResult) -> None: ...


@dataclass
class BackfillResult:
    run_id: int | None
    job_key: str
    plan: Plan
    windows: list[WindowResult]
    by_source: dict[str, SourceCounts]

    def status_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for w in self.windows:
            out[w.status] = out.get(w.status, 0) + 1
        return out

    def total(self) -> SourceCounts:
        total = SourceCounts()
        for c in self.by_source.values():
            total.add(c)
        return total

    def run_counts(self) -> RunCounts:
        t = self.total()
        return RunCounts(entries_seen=self.plan.total_candidates, articles_new=t.new,
                               articles_updated=t.updated, duplicates=t.duplicates,
                               errors=t.failed + len(self.plan.errors)
                               + sum(1 for w in self.windows if w.status == WindowStatus.FAILED),
                               pages_unarchived=sum(len(w.unarchived) for w in self.windows))

    def summary(self) -> dict[str, Any]:
        t = self.total()
        return {"run_id": self.run_id, "job_key": self.job_key, "windows": len(self.plan.windows),
                **{f"windows_{k}": v for k, v in sorted(self.status_counts().items())},
                "candidates": self.plan.total_candidates, "articles_new": t.new,
                "articles_updated": t.updated, "duplicates": t.duplicates, "failed": t.failed,
                "plan_errors": len(self.plan.errors), "out_of_range": self.plan.out_of_range,
                "sitemaps_fetched": self.plan.sitemaps_fetched}


def pending_windows(engine: Engine, plan: Plan) -> list[Window]:
    done = done_units(engine, plan.job_key)
    return [w for w in plan.windows if w.unit not in done]


def prepare(engine: Engine, settings: Settings, spec: BackfillSpec,
            fetcher: Fetcher | None) -> tuple[list[SourceInfo], Plan]:
    """The job's sources (synced into the database) and its plan."""
    sources = resolve_sources(engine, settings, spec.sources)
    return sources, plan_backfill(spec, sources, fetcher)


def run_backfill(engine: Engine, settings: Settings, spec: BackfillSpec, run_id: int | None = None,
                 progress: Progress | None = None, submit: Submit = run_now) -> BackfillResult:
    """Plan, then load every window not done yet, one after the other in date order (undated
    last), so that checkpoints follow the dates and a source's politeness budget is never split
    between two windows; the fetches inside a window still run concurrently per host."""
    progress = progress or Progress()
    with Fetcher(settings, host_slots=store.host_slot_reserver(engine)) as fetcher:
        sources, plan = submit(prepare, engine, settings, spec, fetcher).result()
        todo = pending_windows(engine, plan)
        progress.planned(plan, todo)
        pending = {w.unit for w in todo}
        results = [WindowResult(w.unit, WindowStatus.SKIPPED) for w in plan.windows if w.unit not in pending]
        archive = ArchiveTrouble(str(settings.archive_path))  # a full disk: one warning per run
        for window in todo:
            res = submit(run_window, engine, fetcher, settings, spec, window, sources, run_id,
                         plan_complete=plan.complete, on_items=progress.items_done).result()
            for why in res.unarchived:
                archive.failed(why)
            results.append(res)
            progress.window_done(res)
    by_source: dict[str, SourceCounts] = {}
    for res in results:
        for slug, c in res.by_source.items():
            by_source.setdefault(slug, SourceCounts()).add(c)
    return BackfillResult(run_id, spec.job_key, plan, results, by_source)
