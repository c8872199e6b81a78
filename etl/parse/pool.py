"""Extraction in worker processes, with limits that hold against hostile pages.

Why processes: trafilatura shares one lxml parser, so threads give ~1.02× on two cores while two
processes give ~1.9×. Why pebble rather than ``concurrent.futures``: a plain
``ProcessPoolExecutor`` cannot kill a task that hangs; pebble kills the worker at the deadline
and starts a new one, so a pathological page costs at most its timeout. Workers are also
recycled every ``max_tasks`` pages (lxml and htmldate caches only grow).

Workers are forked from a *forkserver* that has trafilatura already imported: forking the
calling process itself is unsafe (Prefect runs tasks in threads, with event loops and locks that
a fork would copy mid-flight), and ``spawn`` would pay the ~1 s import on every recycle.

One pool per process, created lazily by :func:`shared_pool` and shut down at exit (or by
:func:`close_shared_pool`); it is safe to submit from many threads at once.
"""

from __future__ import annotations

import atexit
import functools
import heapq
import logging
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from pebble import ProcessExpired, ProcessPool

from etl.config import Settings
from etl.models import Extraction, ExtractionStatus
from etl.parse.extract import check_page, extract_page

log = logging.getLogger(__name__)

PageFn = Callable[[bytes | str, str | None, int | None], Extraction]

# Pages a batch may have waiting for a worker, counting those of older batches (which go
# first), before its next page's fetch thread waits: fetching runs far ahead of extraction
# (a page is fetched in ~1 ms of CPU and parsed in ~20), and without a bound every page of
# the batches in flight waited here, bytes and all (~600 pages, 100 MB, in a 10,000-page run).
WAITING_PER_WORKER = 16


@dataclass(frozen=True)
class PageJob:
    """One page to extract: its bytes (None when the fetch failed) and its final URL."""

    html: bytes | str | None
    url: str | None


@dataclass(frozen=True)
class PageTicket:
    """A page handed to the pool: settled at once (``future`` None) or running in a worker."""

    url: str | None
    settled: Extraction | None
    future: object | None


def _context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    # Imported (and warmed up) once in the fork server, so every (re)started worker starts warm.
    ctx.set_forkserver_preload(["etl.parse.warmup"])
    return ctx


class ExtractionPool:
    """A pebble process pool that turns every outcome — text, timeout, crash — into an
    :class:`Extraction`; :meth:`extract_pages` never raises for a page."""

    def __init__(self, workers: int = 2, timeout: float = 20.0, max_tasks: int = 1000,
                 max_bytes: int | None = None, page_fn: PageFn = extract_page) -> None:
        self.workers = max(1, workers)
        self.timeout = timeout
        self.max_tasks = max_tasks
        self.max_bytes = max_bytes
        self.page_fn = page_fn  # a module-level function (it is pickled by reference)
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()
        # Pages beyond what the workers can start next wait here, oldest batch first (see submit).
        self._waiting: list[tuple[float, int, PageJob, Future[Extraction]]] = []
        self._running = 0
        self._seq = 0
        self._feed_lock = threading.Lock()
        self._room = threading.Condition(self._feed_lock)  # a waiting page was handed to a worker
        self.max_waiting = WAITING_PER_WORKER * self.workers

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> "ExtractionPool":
        kwargs: dict[str, object] = {
            "workers": settings.extract_workers, "timeout": settings.extract_timeout,
            "max_tasks": settings.extract_max_tasks, "max_bytes": settings.max_extract_bytes,
        }
        kwargs.update(overrides)
        return cls(**kwargs)  # type: ignore[arg-type]

    def _get(self) -> ProcessPool:
        with self._lock:
            if self._pool is None or not self._pool.active:
                self._pool = ProcessPool(max_workers=self.workers, max_tasks=self.max_tasks,
                                         context=_context())
            return self._pool

    def extract_pages(self, jobs: Sequence[PageJob]) -> list[Extraction | None]:
        """Extracts every page of a batch, all submitted at once; returns, in order, the page
        half of the extraction (see ``etl.parse.extract.extract_page``), or None for a job without
        a page (failed fetch). Pages refused before parsing never reach a worker."""
        return [self.result(ticket) for ticket in [self.submit(job) for job in jobs]]

    def submit(self, job: PageJob, priority: float = 0.0) -> "PageTicket":
        """Starts one page's extraction (a page refused before parsing, or without bytes, is
        settled at once); :meth:`result` waits for it. The batch jobs call this from their fetch
        threads as each page arrives, so the workers start on the first page instead of
        waiting for the batch's last fetch.

        Only ``2 × workers`` pages are handed to the workers at a time; the others wait, lowest
        ``priority`` first (the batch jobs pass their start time): when several batches fetch
        at once, the oldest batch is extracted first and loaded first, so story assignment —
        which takes batches in order — starts early instead of after every batch in flight.

        Memory stays bounded: while ``max_waiting`` pages of this priority or older wait for a
        worker, the caller waits (a fetch thread pauses; the oldest batch is never held back
        by newer ones, whose pages come after its own)."""
        if job.html is None:
            return PageTicket(job.url, None, None)
        refused = check_page(job.html, self.max_bytes)
        if refused:
            return PageTicket(job.url, Extraction(status=ExtractionStatus.FAILED, error=refused), None)
        done: Future[Extraction] = Future()
        with self._room:
            # woken when a waiting page goes to a worker; the timeout re-checks in any case
            while sum(1 for w in self._waiting if w[0] <= priority) >= self.max_waiting:
                self._room.wait(1.0)
            self._seq += 1
            heapq.heappush(self._waiting, (priority, self._seq, job, done))
        self._feed()
        return PageTicket(job.url, None, done)

    def _feed(self) -> None:
        while True:
            with self._feed_lock:
                if not self._waiting or self._running >= 2 * self.workers:
                    return
                _, _, job, done = heapq.heappop(self._waiting)
                self._running += 1
                self._room.notify_all()
            try:
                fut = self._get().schedule(self.page_fn, args=(job.html, job.url, self.max_bytes),
                                           timeout=self.timeout)
            except BaseException as exc:  # pool closed under us: the page fails, the feed goes on
                with self._feed_lock:
                    self._running -= 1
                done.set_exception(exc)
                continue
            fut.add_done_callback(functools.partial(self._settle, done=done))

    def _settle(self, fut: Future[Extraction], *, done: Future[Extraction]) -> None:
        with self._feed_lock:
            self._running -= 1
        try:
            done.set_result(fut.result())
        except BaseException as exc:  # timeouts and dead workers are turned into rows by _collect
            done.set_exception(exc)
        self._feed()

    def result(self, ticket: "PageTicket") -> Extraction | None:
        """The ticket's extraction (None for a job without a page); never raises."""
        if ticket.future is None:
            return ticket.settled
        return self._collect(ticket.future, ticket.url)

    def _collect(self, fut: object, url: str | None) -> Extraction:
        try:
            return fut.result()  # type: ignore[attr-defined]
        except FutureTimeout:
            log.warning("extraction of %s timed out after %.1fs; worker killed", url, self.timeout)
            return Extraction(status=ExtractionStatus.FAILED,
                              error=f"extraction timed out after {self.timeout:g}s (worker killed)")
        except ProcessExpired as exc:
            log.warning("extraction worker died on %s: %s", url, exc)
            return Extraction(status=ExtractionStatus.FAILED, error=f"extraction worker died (exit code {exc.exitcode})")
        except Exception as exc:  # a page must never take the batch down
            log.warning("extraction of %s raised %s", url, exc)
            return Extraction(status=ExtractionStatus.FAILED, error=f"extraction raised {type(exc).__name__}: {exc}"[:300])

    def close(self) -> None:
        """Stops the workers (waiting for running tasks); the next use starts a new pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            pool.join()

    def __enter__(self) -> "ExtractionPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: ExtractionPool | None = None
_shared_key: tuple[object, ...] | None = None
_shared_lock = threading.Lock()


def shared_pool(settings: Settings) -> ExtractionPool:
    """The process's pool for these settings, created on first use (thread-safe)."""
    global _shared, _shared_key
    key = (settings.extract_workers, settings.extract_timeout, settings.extract_max_tasks,
           settings.max_extract_bytes)
    with _shared_lock:
        if _shared is not None and _shared_key != key:
            _shared.close()
            _shared = None
        if _shared is None:
            _shared, _shared_key = ExtractionPool.from_settings(settings), key
        return _shared


def close_shared_pool() -> None:
    global _shared
    with _shared_lock:
        pool, _shared = _shared, None
    if pool is not None:
        pool.close()


atexit.register(close_shared_pool)
