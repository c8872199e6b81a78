"""Prometheus metrics: feed health, run counters and durations, read from the database.

There is no long-lived newsetl process to instrument — runs are separate processes started by
Prefect — so the metrics are what the database recorded, collected when Prometheus asks
(:class:`DatabaseCollector`): ``newsetl metrics --serve`` exposes them over HTTP, and each flow
run pushes them to a Pushgateway at its end when ``NEWSETL_PUSHGATEWAY`` is set
(:func:`push_after_run`), together with the durations of the run's own stages, timed in the
process (:data:`STAGES`). docs/metrics.md lists every metric.

Counters are totals over the rows the database keeps: when maintenance prunes old runs or
polls they go down, which Prometheus' ``rate()`` treats as a counter reset.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Histogram, push_to_gateway, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from etl.store.queries import query

log = logging.getLogger(__name__)
T = TypeVar("T")

# Bucket bounds (seconds). Feed polls: a 304 takes tens of ms, a slow outlet seconds, the total
# timeout is 60 s. Runs and stages: a quiet cycle takes seconds, a backfill window minutes.
POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RUN_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0)
DEFAULT_PORT = 9464
PUSH_JOB = "newsetl"


def _histogram(name: str, doc: str, bounds: Sequence[float], rows: Iterable[Any],
               labels: Sequence[str] = (), label_of: Callable[[Any], Sequence[str]] = lambda r: ()) -> Metric:
    """Rows of (``below``, ``n``, ``seconds``) — ``below`` counts the bounds strictly under a
    value, see sql/queries/metrics/poll_durations.sql — into cumulative buckets."""
    per_label: dict[tuple[str, ...], tuple[list[int], float]] = {}
    for r in rows:
        counts, total = per_label.setdefault(tuple(label_of(r)), ([0] * (len(bounds) + 1), 0.0))
        counts[int(r.below)] += int(r.n)
        per_label[tuple(label_of(r))] = (counts, total + float(r.seconds or 0.0))
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    for key, (counts, total) in sorted(per_label.items()):
        cumulative, buckets = 0, []
        for bound, n in zip([*map(str, bounds), "+Inf"], counts, strict=True):
            cumulative += n
            buckets.append((bound, float(cumulative)))
        family.add_metric(list(key), buckets, total)
    return family


def _neg_bounds(bounds: Sequence[float]) -> list[float]:
    return sorted(-b for b in bounds)


class DatabaseCollector(Collector):
    """Collects from the database at every scrape (a handful of aggregate queries)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        with self.engine.connect() as conn:
            feeds = conn.execute(query("metrics/feed_health")).all()
            parked = conn.execute(query("metrics/parked_hosts")).all()
            runs = conn.execute(query("metrics/run_counts")).all()
            running = conn.execute(query("metrics/runs_running")).scalar_one()
            polls = conn.execute(query("metrics/poll_durations"), {"neg_bounds": _neg_bounds(POLL_BUCKETS)}).all()
            run_times = conn.execute(query("metrics/run_durations"), {"neg_bounds": _neg_bounds(RUN_BUCKETS)}).all()
        labels = ["source", "feed"]
        failures = GaugeMetricFamily("newsetl_feed_consecutive_failures",
                                     "Failed polls in a row (0 after a success), per active feed.", labels=labels)
        since_ok = GaugeMetricFamily("newsetl_feed_seconds_since_last_success",
                                     "Seconds since the feed's last successful poll (since it was added, if never).",
                                     labels=labels)
        since_new = GaugeMetricFamily("newsetl_feed_seconds_since_last_new_article",
                                      "Seconds since a poll of the feed last found an entry not seen before "
                                      "(since it was added, if never).", labels=labels)
        feed_parked = GaugeMetricFamily("newsetl_feed_host_parked",
                                        "1 while the feed's host is parked by Retry-After, else 0.", labels=labels)
        for f in feeds:
            key = [f.source, f.feed]
            failures.add_metric(key, f.consecutive_failures)
            since_ok.add_metric(key, max(0.0, f.since_success))
            since_new.add_metric(key, max(0.0, f.since_new_article))
            feed_parked.add_metric(key, 1.0 if f.host_parked else 0.0)
        yield from (failures, since_ok, since_new, feed_parked)

        hosts = GaugeMetricFamily("newsetl_hosts_parked", "Hosts parked by Retry-After right now.",
                                  value=len(parked))
        left = GaugeMetricFamily("newsetl_host_parked_seconds_remaining",
                                 "Seconds until a parked host may be asked again.", labels=["host"])
        for h in parked:
            left.add_metric([h.host], h.seconds_left)
        yield from (hosts, left)

        run_labels = ["kind", "status"]
        yield GaugeMetricFamily("newsetl_runs_running", "Runs started and not finished (or dead unrecorded).",
                                value=running)
        runs_total = CounterMetricFamily("newsetl_runs", "Finished runs.", labels=run_labels)
        articles = CounterMetricFamily("newsetl_articles", "Articles handled by runs, by result: new, updated, "
                                       "duplicate (exact duplicate or already stored), failed (extraction failed).",
                                       labels=[*run_labels, "result"])
        stories = CounterMetricFamily("newsetl_stories", "Stories created (new) and articles that joined an "
                                      "existing story (joined), by runs.", labels=[*run_labels, "result"])
        polls_total = CounterMetricFamily("newsetl_feed_polls", "Feed polls made by runs, by result (ok, failed).",
                                          labels=[*run_labels, "result"])
        unarchived = CounterMetricFamily("newsetl_pages_unarchived", "Pages runs loaded without their WARC "
                                         "archive copy (full disk, I/O error): they cannot be re-extracted.",
                                         labels=run_labels)
        for r in runs:
            key = [r.kind, r.status]
            runs_total.add_metric(key, r.runs)
            for result, value in (("new", r.articles_new), ("updated", r.articles_updated),
                                  ("duplicate", r.articles_duplicate), ("failed", r.articles_failed)):
                articles.add_metric([*key, result], value)
            stories.add_metric([*key, "new"], r.stories_new)
            stories.add_metric([*key, "joined"], r.stories_joined)
            polls_total.add_metric([*key, "ok"], r.feeds_polled - r.feeds_failed)
            polls_total.add_metric([*key, "failed"], r.feeds_failed)
            unarchived.add_metric(key, r.pages_unarchived)
        yield from (runs_total, articles, stories, polls_total, unarchived)

        yield _histogram("newsetl_feed_poll_duration_seconds", "Duration of feed polls, over the kept poll log "
                         "(feed_polls.duration_ms).", POLL_BUCKETS, polls)
        yield _histogram("newsetl_run_duration_seconds", "Duration of finished runs, per kind.", RUN_BUCKETS,
                         run_times, labels=["kind"], label_of=lambda r: [r.kind])


def registry(engine: Engine, *, with_stages: bool = False) -> CollectorRegistry:
    """A registry holding the database's metrics (and, for a push, this process's stage timings)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(DatabaseCollector(engine))
    if with_stages:
        reg.register(STAGES)
    return reg


def serve(engine: Engine, port: int = DEFAULT_PORT, addr: str = "127.0.0.1") -> tuple[Any, threading.Thread]:
    """Serves ``/metrics`` in a daemon thread; returns (server, thread). ``server.shutdown()`` stops it."""
    return start_http_server(port, addr=addr, registry=registry(engine))


class StageClock(Collector):
    """Durations of a run's stages in this process (sync, poll, process, stories), as a
    histogram: the flows wrap each unit function with :meth:`timed`. Pushed at the end of a run
    (a Prefect process worker runs one flow run per process, so it is that run's timings)."""

    def __init__(self) -> None:
        self._registry = CollectorRegistry(auto_describe=True)
        self.histogram = Histogram("newsetl_stage_duration_seconds",
                                   "Duration of one unit of a run's stage in this process: sync (sources "
                                   "registry), poll (a chunk of feeds), process (fetch + extract + load a "
                                   "batch), stories (assign a batch to stories), backfill (a window).",
                                   ["stage"], buckets=STAGE_BUCKETS, registry=self._registry)

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()

    def timed(self, stage: str, fn: Callable[..., T]) -> Callable[..., T]:
        """``fn`` observed under ``stage``; ``__wrapped__`` still names ``fn`` (flows map
        units to tasks by it)."""
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.histogram.labels(stage).observe(time.perf_counter() - started)
        return wrapper


STAGES = StageClock()


def push_after_run(engine: Engine, gateway: str | None, flow: str) -> bool:
    """Pushes the metrics to the Pushgateway at ``gateway`` (``NEWSETL_PUSHGATEWAY``), grouped
    by job ``newsetl`` and ``flow``; does nothing without one. A push that fails is logged,
    never raised: the run's data is committed, monitoring must not fail it."""
    if not gateway:
        return False
    try:
        push_to_gateway(gateway, job=PUSH_JOB, registry=registry(engine, with_stages=True),
                        grouping_key={"flow": flow}, timeout=10)
    except Exception as exc:  # noqa: BLE001 - any transport error
        log.warning("could not push metrics to %s: %s", gateway, exc)
        return False
    return True


@contextmanager
def pushed_after(engine: Engine, gateway: str | None, flow: str) -> Iterator[None]:
    """``with pushed_after(...), run_record(...) as run:`` — pushes once the run is recorded,
    whether it completed or failed (a failed run is when the numbers matter)."""
    try:
        yield
    finally:
        push_after_run(engine, gateway, flow)


def exposition(engine: Engine) -> str:
    """The metrics in Prometheus' text format (``newsetl metrics`` without ``--serve``)."""
    from prometheus_client import generate_latest

    return generate_latest(registry(engine)).decode("utf-8")
