"""The record of one run: its ``ingestion_runs`` row, its counts and its per-source report.

Every flow and command that changes the warehouse runs inside :func:`run_record`, which starts
the row, finishes it — ``completed``, or ``failed`` with the error, whatever the exception —
and publishes the report (a Prefect table artifact, when the caller passes a publisher). The
report's key names the run id and is stored on the row, so each leads to the other.

Plain data, no Prefect: publishing is a callable the flows pass in.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any
from uuid import UUID

import psutil
from sqlalchemy import Engine

from etl import store
from etl.models import (
    BatchResult,
    IngestErrorKind,
    PollOutcome,
    PollResult,
    RunCounts,
    RunKind,
    RunStatus,
    SourceCounts,
)

log = logging.getLogger(__name__)


class SourceTally:
    """slug → :class:`SourceCounts`, filled from the pipeline's results."""

    def __init__(self) -> None:
        self.by_source: dict[str, SourceCounts] = {}

    def of(self, slug: str) -> SourceCounts:
        return self.by_source.setdefault(slug, SourceCounts())

    def add_poll(self, slug: str, outcome: PollOutcome) -> None:
        c = self.of(slug)
        c.feeds_polled += 1
        c.feeds_failed += int(outcome.failed)
        c.items += outcome.entries_seen
        # Entries the feed listed that needed no fetch: this feed or another brought them before.
        c.duplicates += max(0, outcome.entries_seen - outcome.entries_new)

    def add_batch(self, slug: str, inserted: int, updated: int, unchanged: int, failed: int,
                  duplicates: int = 0) -> None:
        """``duplicates``: exact duplicates the load recognised (no row added), if it reports them."""
        c = self.of(slug)
        c.new += inserted
        c.updated += updated
        c.duplicates += unchanged + duplicates
        c.failed += failed

    def add_counts(self, slug: str, counts: SourceCounts) -> None:
        self.of(slug).add(counts)

    def total(self) -> SourceCounts:
        total = SourceCounts()
        for c in self.by_source.values():
            total.add(c)
        return total

    def rows(self) -> list[dict[str, Any]]:
        """One row per source, sorted by slug, then a 'total' row."""
        rows = [{"source": slug, **asdict(c)} for slug, c in sorted(self.by_source.items())]
        rows.append({"source": "total", **asdict(self.total())})
        return rows


class ArchiveTrouble:
    """Logs each cause of archive failures once per run — a full disk is one warning, not one
    per page — and counts the pages per cause. One per run (``RunReport.archive``), fed as the
    run's results come back."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory  # the archive directory, named in the warning
        self.logged: set[str] = set()
        self.pages: dict[str, int] = {}  # cause (e.g. 'ENOSPC') → pages not archived

    def failed(self, reason: str, what: str = "a page") -> None:
        cause = reason.split(":", 1)[0]
        if cause not in self.logged:
            self.logged.add(cause)
            where = f" under {self.directory}" if self.directory else ""
            log.warning("archive: %s could not be written%s (%s); the run goes on without archive "
                        "copies while this lasts (pages counted as pages_unarchived and listed in "
                        "ingest_errors as archive_failed); logged once per run", what, where, reason)
        if what == "a page":
            self.pages[cause] = self.pages.get(cause, 0) + 1


@dataclass
class RunReport:
    """What a run did so far: the row's counts and the per-source tally. Filled as results
    come back, so a run that fails half-way still records what it loaded."""

    counts: RunCounts = field(default_factory=RunCounts)
    tally: SourceTally = field(default_factory=SourceTally)
    archive: ArchiveTrouble = field(default_factory=ArchiveTrouble)

    def add_poll(self, res: PollResult) -> None:
        """A polled feed (a skipped one — host parked — is neither polled nor failed)."""
        if res.unarchived:
            self.archive.failed(res.unarchived, "a feed response")
        if res.outcome.skipped:
            return
        self.tally.add_poll(res.slug, res.outcome)
        self.counts.feeds_polled += 1
        self.counts.entries_seen += res.outcome.entries_seen
        if res.outcome.failed:
            self.counts.feeds_failed += 1
            self.counts.errors += 1

    def add_batch(self, slug: str, out: BatchResult) -> None:
        self.tally.add_batch(slug, out.inserted, out.updated, out.unchanged, out.failed)
        self.counts.articles_new += out.inserted
        self.counts.articles_updated += out.updated
        self.counts.errors += out.failed
        self.counts.duplicates += out.duplicates
        self.add_unarchived(out)

    def add_unarchived(self, out: BatchResult) -> None:
        """Pages the batch loaded without their archive copy: counted, each cause logged once."""
        self.counts.pages_unarchived += out.unarchived
        for e in out.errors:
            if e.kind == IngestErrorKind.ARCHIVE_FAILED:
                self.archive.failed(e.detail)

    def notes(self) -> list[str]:
        """What the row's ``notes`` say about the run's own work (archive trouble)."""
        if not self.counts.pages_unarchived:
            return []
        causes = ", ".join(f"{cause} ×{n}" for cause, n in sorted(self.archive.pages.items()))
        return [f"{self.counts.pages_unarchived} page(s) loaded without their archive copy"
                f"{f' ({causes})' if causes else ''}: they cannot be re-extracted; ingest_errors kind "
                "archive_failed lists them"]


# (engine, run id, report kind, table rows, note) → publishes the run's report somewhere.
Publisher = Callable[[Engine, int, str, list[dict[str, Any]], str], object]


@dataclass
class Run:
    """The open run inside :func:`run_record`. The body fills ``report`` (or replaces its
    counts), may set ``rows`` and ``note`` for the published report, and calls :meth:`fail`
    for a failure that is not an exception (a maintenance step that failed)."""

    id: int
    report_kind: str                    # 'ingest', 'backfill', 'maintenance': names the artifact
    report: RunReport = field(default_factory=RunReport)
    rows: list[dict[str, Any]] | None = None  # the published table; default: per-source tally
    note: str = ""                      # for the published report only
    notes: list[str] = field(default_factory=list)  # the row's ``notes``: what the run could not do or report
    status: RunStatus = RunStatus.COMPLETED
    error: str | None = None
    abandoned: list[int] = field(default_factory=list)  # dead runs this run closed at its start

    @property
    def counts(self) -> RunCounts:
        return self.report.counts

    def fail(self, error: str) -> None:
        self.status, self.error = RunStatus.FAILED, error


HEARTBEAT_SECONDS = 10.0
# A run whose heartbeat has been silent this long is dead wherever it ran (another machine,
# another container). On this host a dead process is recognised at once (see is_dead).
STALE_SECONDS = 120.0


def process_home() -> str:
    """Where a pid means something: the host name plus the PID namespace (two containers may
    share a host name, never a PID namespace), e.g. ``worker-1 pid:[4026531836]``."""
    try:
        return f"{socket.gethostname()} {os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return socket.gethostname()


def this_process() -> tuple[str, int, float]:
    """(host, pid, process start time): who runs a run, and a pid that cannot be mistaken for
    a later process that got the same number."""
    pid = os.getpid()
    return process_home(), pid, psutil.Process(pid).create_time()


def is_dead(run: store.RunningRun, host: str) -> bool:
    """A run's process is gone: on this host (and PID namespace), its pid no longer runs (or is
    another process now); anywhere, its heartbeat has been silent for ``STALE_SECONDS``."""
    if run.silent_seconds > STALE_SECONDS:
        return True
    if run.host != host or run.pid is None:
        return False
    try:
        started = psutil.Process(run.pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.Error:
        return False
    return run.pid_started is not None and abs(started - run.pid_started) > 1.0


def reap_dead_runs(engine: Engine, except_run: int | None = None) -> list[int]:
    """Closes the rows of dead runs as ``abandoned`` and frees their feed leases and page
    claims, so that this run takes their work over at once instead of waiting for the leases
    to expire. Returns the ids closed. Run by every run at its start and by maintenance."""
    host = process_home()
    dead = [r.id for r in store.running_runs(engine, except_run) if is_dead(r, host)]
    closed = store.abandon_runs(engine, dead, "abandoned: its process died (found by a later run)")
    if closed:
        log.warning("closed %d dead run(s) as abandoned and took over their leases and claims: %s",
                    len(closed), ", ".join(map(str, closed)))
    return closed


class Heartbeat:
    """A daemon thread that refreshes the run's ``heartbeat_at`` until stopped. A database
    hiccup skips a beat; it never stops the run."""

    def __init__(self, engine: Engine, run_id: int, every: float = HEARTBEAT_SECONDS) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(engine, run_id, every),
                                        name=f"heartbeat-{run_id}", daemon=True)

    def _beat(self, engine: Engine, run_id: int, every: float) -> None:
        while not self._stop.wait(every):
            try:
                store.heartbeat(engine, run_id)
            except Exception as exc:
                log.warning("heartbeat of run %s skipped: %s", run_id, str(exc).splitlines()[0] if str(exc) else exc)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def run_record(engine: Engine, kind: RunKind, parameters: Mapping[str, Any], *, report_kind: str,
               flow_run_id: UUID | str | None = None, publish: Publisher | None = None) -> Iterator[Run]:
    """Starts the run's row, yields the :class:`Run`, then finishes the row and publishes the
    report. An exception in the body marks the run failed with the error (and counts it as one
    error), is recorded, then re-raised; the row is never left ``running`` by a body that
    raised. Publishing never fails a run whose data is committed."""
    host, pid, pid_started = this_process()
    run = Run(store.start_run(engine, kind, dict(parameters), flow_run_id, host=host, pid=pid,
                              pid_started=pid_started), report_kind)
    try:
        with Heartbeat(engine, run.id):
            run.abandoned = reap_dead_runs(engine, except_run=run.id)
            yield run
    except BaseException as exc:
        run.fail(f"{type(exc).__name__}: {exc}")
        run.counts.errors += 1
        run.note = f"{run.note}\n\nfailed: {run.error}".strip()
        try:
            _close(engine, run, publish)
        except Exception:  # keep the run's own exception, which says what went wrong first
            log.exception("could not record the failure of run %s", run.id)
        raise
    _close(engine, run, publish)


def _close(engine: Engine, run: Run, publish: Publisher | None) -> None:
    store.finish_run(engine, run.id, run.counts, status=run.status, error=run.error,
                     notes=[*run.report.notes(), *run.notes])
    if publish is None:
        return
    try:
        publish(engine, run.id, run.report_kind,
                run.rows if run.rows is not None else run.report.tally.rows(), run.note)
    except Exception:  # the report is a convenience; the row says everything that matters
        log.exception("could not publish the report of run %s", run.id)


def artifact_key(run_id: int, kind: str = "run") -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    return f"newsetl-{kind}-run-{run_id}".lower().replace("_", "-")
