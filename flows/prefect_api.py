"""The Prefect API a run reports to, and what a run does when it goes away.

A run's *work* never needs the API: its tasks run in this process, their states travel as
events, and what the run did is committed to PostgreSQL with its ``ingestion_runs`` row. Only
the *reporting* needs it: the flow run's states, task-run events and logs, the report artifact.
When the API died mid-run, Prefect's client kept trying each of those — about a minute per call
(``PREFECT_CLIENT_MAX_RETRIES``), seven seconds per queued event — logged two lines per event,
then raised from the engine *after* the flow had returned: a completed run exited 1 with a
traceback, and lingered for many minutes sending events to nobody.

:class:`ApiWatch` probes the API's ``/health`` every few seconds while a run goes on. While the
API is unreachable, Prefect's own complaints about it are held back (counted), the report
artifact is not attempted, and what Prefect did not get is collected; at the end it becomes one
line on the run's row (``ingestion_runs.notes``) and, for ``newsetl ingest``
(:func:`call_flow`), one warning line on stderr — the run's own outcome decides the exit code.
An API that is down when a run would start stops it before anything is done
(:class:`ApiUnavailable`, one line, exit 1).

Plain Prefect glue, no business logic: the flows call :func:`watch_run`, the artifacts ask
:func:`current`, the CLI calls :func:`call_flow`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine

from etl import store

log = logging.getLogger(__name__)

PROBE_EVERY = 2.0     # seconds between health probes while a run goes on (a GET /health each)
PROBE_TIMEOUT = 5.0   # a probe that takes longer counts as a failure (two in a row: down)
START_PROBES = 3      # probes (1 s apart) before a run refuses to start for want of the API

ARTIFACT = "the run's report artifact"
FINAL_STATE = "the flow run's final state"
EVENTS = "task-run events and logs sent while it was down"
UNDER_WORKER = "; the flow run's final state and later events may not reach it either"


class ApiUnavailable(Exception):
    """The Prefect API is unreachable as a run would start: nothing was run."""


def api_url() -> str | None:
    """``PREFECT_API_URL`` as Prefect resolves it (environment, profile), or None."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def probe(url: str, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when the API answers ``/health``, else why not (one line). One request, no retry:
    a client of its own (with the profile's credentials), never the run's, which retries."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_KEY,
        PREFECT_CLIENT_MAX_RETRIES,
        temporary_settings,
    )

    try:
        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}), \
                SyncPrefectClient(url, api_key=PREFECT_API_KEY.value(), auth_string=PREFECT_API_AUTH_STRING.value(),
                                  httpx_settings={"timeout": timeout}) as client:
            exc = client.api_healthcheck()
    except Exception as caught:  # building the client failed: as unreachable as it gets
        exc = caught
    return None if exc is None else _one_line(exc)


def _is_transport_error(exc: BaseException) -> bool:
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, PrefectHTTPStatusError):
        return exc.response.status_code >= 500
    return type(exc).__module__.startswith("websockets")


def _request_url(exc: BaseException) -> str:
    """The URL an httpx error was about ('' when it says none)."""
    try:
        return str(exc.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is set
        return ""


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


class _QuietWhileDown(logging.Filter):
    """Holds back Prefect's warnings and errors while the API is unreachable: they all say that
    (two lines per queued event, a traceback per call), and the watch says it once instead."""

    def __init__(self, watch: ApiWatch) -> None:
        super().__init__()
        self.watch = watch
        self.last: logging.LogRecord | None = None
        self.attached: list[logging.Handler | logging.Logger] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith("prefect"):
            return True
        if not self.watch.down:
            exc = record.exc_info[1] if record.exc_info else None
            if not (any(_is_transport_error(e) for e in _chain(exc)) or "connect" in record.getMessage().lower()):
                return True
            # A complaint about the API before the watch is sure it is gone: probe now (in the
            # watch's thread, never here: this may be Prefect's event loop), and hold it back
            # if the last probe failed already.
            self.watch.nudge()
            if not self.watch.suspect:
                return True
        if record is not self.last:  # one record passes every handler: count it once
            self.last = record
            self.watch.held_back += 1
        return False

    def attach(self) -> None:
        """On every handler that could print or ship a Prefect record (handlers come and go as
        Prefect sets logging up; attaching again is harmless)."""
        targets: list[logging.Handler | logging.Logger] = list(logging.getLogger().handlers)
        for name, logger in list(logging.root.manager.loggerDict.items()):
            if name.startswith("prefect") and isinstance(logger, logging.Logger):
                targets.extend(logger.handlers)  # prefect._internal, for one, does not propagate
        for target in targets:
            if self not in target.filters:
                target.addFilter(self)
                self.attached.append(target)

    def detach(self) -> None:
        for target in self.attached:
            target.removeFilter(self)
        self.attached.clear()


_active: list[ApiWatch] = []
_active_lock = threading.Lock()


def current() -> ApiWatch | None:
    """The watch of the run going on in this process, if the run reports to an API."""
    with _active_lock:
        return _active[-1] if _active else None


class ApiWatch:
    """Probes the API every ``every`` seconds from a daemon thread while a run goes on, and
    keeps what Prefect could not get. Inert (never down) when ``url`` is None."""

    def __init__(self, url: str | None, every: float = PROBE_EVERY) -> None:
        self.url = url
        self.every = every
        self.down_since: datetime | None = None   # the outage going on
        self.first_down: datetime | None = None   # the first outage seen by this watch
        self.back_at: datetime | None = None      # when it last came back
        self.error: str | None = None             # the last probe's failure
        self.unreported: list[str] = []           # what Prefect did not get (ARTIFACT, FINAL_STATE)
        self.held_back = 0                        # Prefect log records held back while down
        # the run, as the flow reports it: its row (for the note) and its result
        self.engine: Engine | None = None
        self.run_id: int | None = None
        self.summary: dict[str, Any] | None = None
        self.failure: BaseException | None = None
        self._failed_at: datetime | None = None
        self._failures = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._quiet = _QuietWhileDown(self)
        self._raise_exceptions = logging.raiseExceptions

    @property
    def down(self) -> bool:
        return self.down_since is not None

    @property
    def suspect(self) -> bool:
        """Down, or the last probe failed."""
        return self.down or self._failures > 0

    def nudge(self) -> None:
        """Probe now rather than at the next tick."""
        self._wake.set()

    @property
    def lost(self) -> bool:
        """Prefect missed something of this run."""
        return self.first_down is not None or bool(self.unreported)

    def check(self) -> bool:
        """Probes now; True when the API answered. Down after two failed probes in a row, or
        at once when nothing listens (connection refused)."""
        if self.url is None:
            return True
        error = probe(self.url)
        now = datetime.now(UTC)
        with self._lock:
            if error is None:
                self._failures, self._failed_at = 0, None
                if self.down_since is not None:
                    self.down_since, self.back_at = None, now
                    logging.raiseExceptions = self._raise_exceptions
                return True
            self._failures += 1
            self._failed_at = self._failed_at or now
            self.error = error
            if self.down_since is None and (self._failures >= 2 or "ConnectError" in error):
                self.down_since = self._failed_at
                self.first_down = self.first_down or self._failed_at
                # Prefect's log shipper writes "--- Error logging to API ---" straight to stderr
                # unless logging is told not to raise (the stdlib's own production setting).
                logging.raiseExceptions = False
                self._quiet.attach()
            return False

    def _run(self) -> None:
        while True:
            self._wake.wait(self.every)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.check()
            except Exception:  # a watch must never take the run down
                log.debug("Prefect API probe failed", exc_info=True)

    def __enter__(self) -> ApiWatch:
        with _active_lock:
            _active.append(self)
        if self.url is not None:
            self._quiet.attach()
            self._thread = threading.Thread(target=self._run, name="prefect-api-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=PROBE_TIMEOUT + 1)
        with _active_lock:
            if self in _active:
                _active.remove(self)
        if not self.down:  # still down: Prefect's senders keep failing, keep them quiet
            self._quiet.detach()

    # --- what the flow tells the watch -----------------------------------------------------

    def attach(self, engine: Engine, run_id: int) -> None:
        """The run's row, for the note."""
        self.engine, self.run_id = engine, run_id

    def deliver(self, summary: dict[str, Any]) -> None:
        """The flow's result, for a caller the engine cannot give it to (it failed to report)."""
        self.summary = summary

    def missed(self, what: str) -> None:
        if what not in self.unreported:
            self.unreported.append(what)

    # --- what it says ----------------------------------------------------------------------

    def outage(self) -> str:
        """``unreachable from … [until …] (why)``."""
        since = self.first_down or self._failed_at or datetime.now(UTC)
        until = f" until {self.back_at:%Y-%m-%dT%H:%M:%SZ}" if self.back_at and not self.down else ""
        return f"unreachable from {since:%Y-%m-%dT%H:%M:%SZ}{until} ({self.error or 'no answer'})"

    def what_missed(self) -> list[str]:
        return [*self.unreported, *([EVENTS] if self.first_down is not None else [])]

    def note(self, after: str = "") -> str:
        """The run row's line: where, when, why, and what Prefect did not get."""
        return (f"Prefect API {self.url} {self.outage()}; not recorded in Prefect: "
                f"{', '.join(self.what_missed())}{after}")

    def record_note(self, after: str = "") -> None:
        """Adds :meth:`note` to the run's row. Never raises (the database may be gone too)."""
        if not self.lost or self.engine is None or self.run_id is None:
            return
        try:
            store.add_run_note(self.engine, self.run_id, self.note(after))
        except Exception as exc:
            log.warning("could not note on run %s what Prefect missed: %s", self.run_id, _one_line(exc))

    def is_api_error(self, exc: BaseException) -> bool:
        """Whether an exception means the API is gone: a request to it that failed in transit
        (or a 5xx), anywhere in the chain of causes — confirmed by a probe when the exception
        does not name the API's URL."""
        if self.url is None:
            return False
        for e in _chain(exc):
            if not _is_transport_error(e):
                continue
            if _request_url(e).startswith(self.url.rstrip("/")):
                return True
            return self.down or not self.check()
        return False


@contextmanager
def watch_run() -> Iterator[ApiWatch]:
    """The watch a flow reports to: its caller's (``newsetl ingest``, which says what happened
    once the engine is done too), else one of its own for this flow run — under a worker —
    which notes on the row what Prefect missed until the flow returned."""
    outer = current()
    watch = outer or ApiWatch(api_url())
    try:
        if outer is not None:
            yield outer
        else:
            with watch:
                yield watch
    except BaseException as exc:
        watch.failure = exc
        raise
    finally:
        if outer is None and watch.lost:  # under a worker: the row and the flow run's log say it
            watch.record_note(UNDER_WORKER)
            log.warning("%s", watch.note(UNDER_WORKER))


@dataclass
class FlowCall:
    """What :func:`call_flow` got: the flow's result (None when the run failed: ``failure``), the
    warning line to print when Prefect missed something (None otherwise), and whether the API
    is still unreachable (then Prefect's background senders need not be waited for: they would
    retry every queued event against it)."""

    summary: dict[str, Any] | None
    warning: str | None = None
    api_down: bool = False
    failure: BaseException | None = None
    engine: Engine | None = None  # the run's database, for a caller that exits without atexit


def call_flow(flow: Callable[..., dict[str, Any]], **parameters: Any) -> FlowCall:
    """Runs ``flow`` for the command line, whatever becomes of the Prefect API.

    - API unreachable at the start (three probes, a second apart): :class:`ApiUnavailable`,
      nothing is run.
    - API lost during the run: the run goes on; when the engine then fails to report, the
      flow's own result is used (the run's outcome decides), or the run's own failure is
      returned in :attr:`FlowCall.failure`. What Prefect missed is noted on the run's row and
      said in :attr:`FlowCall.warning`.
    Any other exception (the API is fine) propagates as the flow raised it.
    """
    url = api_url()
    if url is not None:
        for attempt in range(START_PROBES):
            error = probe(url)
            if error is None:
                break
            if attempt + 1 < START_PROBES:
                time.sleep(1.0)
        else:
            raise ApiUnavailable(f"the Prefect API at {url} is unreachable ({error}); nothing was run. "
                                 "Start it, or unset PREFECT_API_URL to run with a temporary local server")
    failure: BaseException | None = None
    summary: dict[str, Any] | None
    with ApiWatch(url) as watch:
        try:
            summary = flow(**parameters)
        except Exception as exc:
            if not watch.is_api_error(exc):
                if not watch.lost:
                    raise
                failure, summary = exc, None  # it failed on its own, and Prefect missed things too
            elif watch.run_id is None:  # the API went away between the probe and the run's start
                raise ApiUnavailable(f"the Prefect API at {url} went away as the run started "
                                     f"({_one_line(exc)}); nothing was run") from exc
            else:
                watch.missed(FINAL_STATE)
                summary = watch.summary if watch.failure is None else None
                if summary is None:
                    failure = watch.failure or exc
    if not watch.lost:
        return FlowCall(summary)
    watch.record_note()
    outcome = "failed" if failure is not None else "completed"
    return FlowCall(summary, warning_line(watch, outcome), api_down=not watch.check(), failure=failure,
                    engine=watch.engine)


def warning_line(watch: ApiWatch, outcome: str) -> str:
    """The one stderr line: the run's outcome, the outage, what Prefect missed, where it is noted."""
    run = f"run {watch.run_id}" if watch.run_id is not None else "the run"
    noted = f" (noted on ingestion_runs {watch.run_id})" if watch.run_id is not None else ""
    return (f"newsetl: warning: {run} {outcome}, but the Prefect API at {watch.url} was {watch.outage()}: "
            f"not recorded in Prefect: {', '.join(watch.what_missed())}{noted}")
