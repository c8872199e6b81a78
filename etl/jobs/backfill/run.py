"""Backfill: load the articles of a past date range, from sitemaps, a URL list or WARC files.

A backfill is *planned* (``etl.backfill_plan``: which URLs, in which window), then *run* here
one window at a time. Each window ends with a checkpoint row (``backfill_windows``), so a killed
backfill resumes at the window it was in and never redoes a finished one. Every load goes
through the same stages as feed entries (``batch.process_batch`` → extract → normalize →
store upserts), with the source's politeness, and a URL already stored — by this backfill, the
scheduled ingest or anyone — is skipped *before* it is fetched. Plain functions;
``flows/backfill.py`` and the ``newsetl backfill`` command drive them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from etl import store
from etl.config import Settings
from etl.fetch.http import Fetcher, FetchResult
from etl.jobs import batch
from etl.jobs.backfill.plan import (  # noqa: F401  (re-exported: the flow and the CLI use this module)
    MODES,
    UNDATED,
    BackfillError,
    BackfillSpec,
    Candidate,
    Plan,
    SourceInfo,
    SourceMatcher,
    Window,
    assign_windows,
    make_windows,
    plan_backfill,
    plan_reextract,
    plan_sitemaps,
    plan_urls,
    plan_warc,
    reextract_function,
    resolve_sources,
)
from etl.jobs.runs import SourceCounts
from etl.parse.feeds import FeedEntry

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Running one window


@dataclass
class WindowResult:
    unit: str
    status: str                         # 'done', 'incomplete', 'failed', 'skipped' (done before), 'busy'
    items: int = 0
    fetched: int = 0
    by_source: dict[str, SourceCounts] = field(default_factory=dict)
    error: str | None = None

    def counts(self) -> SourceCounts:
        total = SourceCounts()
        for c in self.by_source.values():
            total.add(c)
        return total


def done_units(engine: Engine, job_key: str) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(store.query("backfill_done_units"), {"job_key": job_key}).scalars())


def stored_urls(engine: Engine, canonical_urls: Sequence[str]) -> set[str]:
    if not canonical_urls:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(store.query("stored_urls"), {"urls": list(canonical_urls)}).scalars())


def _record_window(engine: Engine, spec: BackfillSpec, window: Window, result: WindowResult,
                   run_id: int | None) -> None:
    c = result.counts()
    with engine.begin() as conn:
        conn.execute(store.query("backfill_record_window"), {
            "job_key": spec.job_key, "unit": window.unit, "mode": spec.mode,
            "sources": list(spec.sources), "window_start": window.start, "window_end": window.end,
            "status": result.status, "run_id": run_id, "items": result.items,
            "fetched": result.fetched, "articles_new": c.new, "articles_updated": c.updated,
            "duplicates": c.duplicates, "failed": c.failed, "error": result.error,
        })


def _entry(c: Candidate) -> FeedEntry:
    return FeedEntry(entry_key=c.url, link=c.url, canonical_url=c.canonical_url, title=c.title,
                     published_at=c.published_at)


def _work_item(c: Candidate, src: SourceInfo) -> batch.WorkItem:
    return batch.WorkItem(feed_id=None, source_id=src.id, slug=src.slug, language=c.language,
                             min_request_interval=src.min_request_interval, entry=_entry(c))


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
            result.error_kind, result.error = "too_large", f"archived body exceeds cap of {max_bytes} bytes"
        else:
            result.content = body
    except Exception as exc:  # a damaged record is one failed page, not a failed window
        result.error_kind, result.error = "warc", f"{type(exc).__name__}: {exc}"[:300]
    return result


class _WindowLock:
    """A session advisory lock on (job, unit): two runs of one job never load one window at
    the same time, and a killed run's lock goes away with its connection."""

    def __init__(self, engine: Engine, job_key: str, unit: str) -> None:
        self.conn = engine.connect()
        self.key = f"newsetl-backfill:{job_key}:{unit}"
        self.held = bool(self.conn.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:k, 0))"),
                                           {"k": self.key}).scalar())
        self.conn.commit()

    def release(self) -> None:
        try:
            if self.held:
                self.conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:k, 0))"), {"k": self.key})
                self.conn.commit()
        finally:
            self.conn.close()


def run_window(engine: Engine, fetcher: Fetcher | None, settings: Settings, spec: BackfillSpec,
               window: Window, sources: Sequence[SourceInfo], run_id: int | None,
               plan_complete: bool = True, on_items: Callable[[int], None] | None = None) -> WindowResult:
    """Loads one window and writes its checkpoint. Never raises for bad input: an unexpected
    error is recorded on the window ('failed', retried by the next run) and returned."""
    lock = _WindowLock(engine, spec.job_key, window.unit)
    try:
        if not lock.held:
            return WindowResult(window.unit, "busy", error="another run of this job holds the window")
        if window.unit in done_units(engine, spec.job_key):
            return WindowResult(window.unit, "skipped")
        result = WindowResult(window.unit, "done", items=len(window.candidates))
        try:
            if spec.mode == "reextract":
                _reextract_window(engine, settings, spec, window, result)
            else:
                _load_window(engine, fetcher, settings, spec, window, sources, result, on_items)
        except Exception as exc:
            log.exception("backfill window %s failed", window.unit)
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"[:1000]
        else:
            # A window that is not over yet (today) or came from a partial plan is done again
            # by the next run; everything already stored is skipped then, so it costs little.
            if not plan_complete or (window.end is not None and window.end > datetime.now(UTC)):
                result.status = "incomplete"
        _record_window(engine, spec, window, result, run_id)
        return result
    finally:
        lock.release()


def _load_window(engine: Engine, fetcher: Fetcher | None, settings: Settings, spec: BackfillSpec,
                 window: Window, sources: Sequence[SourceInfo], result: WindowResult,
                 on_items: Callable[[int], None] | None) -> None:
    by_slug = {s.slug: s for s in sources}
    items = [_work_item(c, by_slug[c.slug]) for c in window.candidates]
    candidates = {c.canonical_url: c for c in window.candidates}
    for chunk in batch.make_batches(items, settings.batch_size):
        slug = chunk[0].slug
        counts = result.by_source.setdefault(slug, SourceCounts())
        counts.items += len(chunk)
        # Checked per batch, right before fetching: the scheduled ingest may have stored some
        # of these since the plan was made.
        known = stored_urls(engine, [i.entry.canonical_url for i in chunk])
        todo = [i for i in chunk if i.entry.canonical_url not in known]
        counts.duplicates += len(chunk) - len(todo)
        if todo:
            if spec.mode == "warc":
                pages = [_read_warc_page(candidates[i.entry.canonical_url], settings.max_page_bytes) for i in todo]
                records = batch.build_records(todo, pages)
                out = store.upsert_articles(engine, records)
                failed = sum(1 for r in records if r.extraction_status == "failed")
            else:
                assert fetcher is not None
                out = batch.process_batch(engine, fetcher, settings, todo)
                failed = out.failed
            result.fetched += len(todo)
            counts.new += out.inserted
            counts.updated += out.updated
            # unchanged rows, and exact duplicates when the dedup stage reports them
            counts.duplicates += out.unchanged + getattr(out, "duplicates", 0)
            counts.failed += failed
            _assign_stories(engine, getattr(out, "new_ids", None))
        if on_items:
            on_items(len(chunk))


def _assign_stories(engine: Engine, article_ids: list[int] | None) -> None:
    """New articles join their stories as the ingest's do (``etl.stories.assign``), batch by
    batch, when that stage is installed and the load reported the new ids. Backfilled windows
    may arrive out of date order; the daily maintenance reclusters the recent window."""
    if not article_ids:
        return
    try:
        from etl import stories  # type: ignore[attr-defined]
    except ImportError:
        return
    assign = getattr(stories, "assign", None)
    if assign is None:
        return
    try:
        assign(engine, article_ids)
    except Exception:  # like the ingest: a story failure is logged, the articles stay loaded
        log.exception("story assignment failed for %d backfilled article(s)", len(article_ids))


def _reextract_window(engine: Engine, settings: Settings, spec: BackfillSpec, window: Window,
                      result: WindowResult) -> None:
    out = reextract_function()(engine, settings, since=window.start, until=window.end, sources=spec.sources)
    # The re-extraction stage reports its own counts; take the ones we know by name.
    data: dict[str, Any] = {}
    if isinstance(out, dict):
        data = out
    elif hasattr(out, "__dict__"):
        data = vars(out)
    counts = result.by_source.setdefault(",".join(spec.sources) or "all", SourceCounts())
    for key, attr in (("updated", "updated"), ("articles_updated", "updated"), ("failed", "failed"),
                      ("unchanged", "duplicates"), ("selected", "items")):
        if isinstance(data.get(key), int):
            setattr(counts, attr, getattr(counts, attr) + data[key])


# ---------------------------------------------------------------------------------------------
# The whole job (used by the CLI; the flow runs the same steps as tasks)


class Progress:
    """Hooks for a progress display; the default does nothing."""

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

    def run_counts(self) -> store.RunCounts:
        t = self.total()
        return store.RunCounts(entries_seen=self.plan.total_candidates, articles_new=t.new,
                               articles_updated=t.updated, duplicates=t.duplicates,
                               errors=t.failed + len(self.plan.errors)
                               + sum(1 for w in self.windows if w.status == "failed"))

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


def run_backfill(engine: Engine, settings: Settings, spec: BackfillSpec, run_id: int | None = None,
                 progress: Progress | None = None) -> BackfillResult:
    """Plan, then load every window not done yet, in date order (undated last)."""
    progress = progress or Progress()
    sources = resolve_sources(engine, settings, spec.sources)
    with Fetcher(settings, host_slots=store.host_slot_reserver(engine)) as fetcher:
        plan = plan_backfill(spec, sources, fetcher)
        todo = pending_windows(engine, plan)
        progress.planned(plan, todo)
        pending = {w.unit for w in todo}
        results = [WindowResult(w.unit, "skipped") for w in plan.windows if w.unit not in pending]
        for window in todo:
            res = run_window(engine, fetcher, settings, spec, window, sources, run_id,
                             plan_complete=plan.complete, on_items=progress.items_done)
            results.append(res)
            progress.window_done(res)
    by_source: dict[str, SourceCounts] = {}
    for res in results:
        for slug, c in res.by_source.items():
            by_source.setdefault(slug, SourceCounts()).add(c)
    return BackfillResult(run_id, spec.job_key, plan, results, by_source)
