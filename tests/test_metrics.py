"""Prometheus metrics from the database: ``newsetl metrics --serve`` scraped over real HTTP and
parsed with prometheus_client's own parser; the ingest flow pushing to a (local, real HTTP)
Pushgateway at its end when NEWSETL_PUSHGATEWAY is set."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from etl import models, store
from etl.config import load_settings, parse_sources
from etl.jobs import metrics

REGISTRY = """
[[sources]]
slug = "alpha"
  [[sources.feeds]]
  url = "https://alpha.example/rss"
  [[sources.feeds]]
  url = "https://parked.example/rss"
  [[sources.feeds]]
  url = "https://alpha.example/broken"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) → value, from Prometheus' text format."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body) for s in family.samples}


def _poll(feed, error: str | None, ms: int) -> models.PollOutcome:
    return models.PollOutcome(
        feed_id=feed.id, url=feed.url, http_status=503 if error else 200, bytes=10, duration_ms=ms,
        entries_seen=0, entries_new=0, error_kind="http" if error else None, error=error,
        etag=None, last_modified=None, body_hash=None, next_poll_in=900)


def _seed(engine: Engine) -> None:
    store.sync_sources(engine, parse_sources(REGISTRY))
    feeds = {f.url: f for f in store.due_feeds(engine)}
    ok, parked, broken = (feeds[f"https://{u}"] for u in ("alpha.example/rss", "parked.example/rss",
                                                          "alpha.example/broken"))
    store.record_poll(engine, None, _poll(ok, None, 30))          # le 0.05
    store.record_poll(engine, None, _poll(parked, None, 200))     # le 0.25
    store.record_poll(engine, None, _poll(broken, None, 700))     # le 1.0: a success, then two failures
    store.record_poll(engine, None, _poll(broken, "HTTP 503", 70_000))  # +Inf
    store.record_poll(engine, None, _poll(broken, "HTTP 503", 250))     # le 0.25 (exactly on the bound)
    with engine.begin() as conn:
        conn.execute(text("UPDATE feed_polls SET polled_at = now() - interval '2 hours' "
                          "WHERE duration_ms = 700"))
        conn.execute(text("UPDATE feeds SET last_new_entry_at = now() - interval '3 hours' WHERE id = :id"),
                     {"id": ok.id})
        conn.execute(text("INSERT INTO host_backoff (host, until, http_status, reason) "
                          "VALUES ('parked.example', now() + interval '10 minutes', 429, 'HTTP 429')"))
        conn.execute(text(
            "INSERT INTO ingestion_runs (kind, status, started_at, finished_at, feeds_polled, feeds_failed, "
            "articles_new, articles_updated, duplicates, errors, stories_new, stories_joined) VALUES "
            "('scheduled', 'completed', now() - interval '40 seconds', now(), 3, 1, 5, 2, 4, 3, 2, 1), "
            "('scheduled', 'completed', now() - interval '10 seconds', now(), 3, 0, 1, 0, 0, 0, 1, 0), "
            "('scheduled', 'failed', now() - interval '100 seconds', now(), 1, 1, 0, 0, 0, 1, 0, 0), "
            "('scheduled', 'abandoned', now() - interval '3 hours', now(), 0, 0, 0, 0, 0, 0, 0, 0), "
            "('manual', 'running', now(), NULL, 0, 0, 7, 0, 0, 0, 0, 0)"))


@pytest.fixture
def served(engine: Engine, db_url: str) -> Iterator[str]:
    """`newsetl metrics --serve` as its own process, as an operator starts it."""
    _seed(engine)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "etl.cli", "metrics", "--serve", "--port", str(port)],
                            env={**os.environ, "NEWSETL_DATABASE_URL": db_url},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "metrics server did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow  # `newsetl metrics --serve` as a process of its own
def test_served_metrics_over_http(served: str) -> None:
    res = httpx.get(served, timeout=10)
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    s = _samples(res.text)

    def feed(name: str, url: str) -> float:
        return s[(name, (("feed", url), ("source", "alpha")))]

    broken, ok, parked = "https://alpha.example/broken", "https://alpha.example/rss", "https://parked.example/rss"
    assert feed("newsetl_feed_consecutive_failures", broken) == 2
    assert feed("newsetl_feed_consecutive_failures", ok) == 0
    # last success of the broken feed: the poll two hours ago
    assert 7200 <= feed("newsetl_feed_seconds_since_last_success", broken) < 7200 + 120
    assert feed("newsetl_feed_seconds_since_last_success", ok) < 120
    assert 3 * 3600 <= feed("newsetl_feed_seconds_since_last_new_article", ok) < 3 * 3600 + 120
    assert feed("newsetl_feed_host_parked", parked) == 1 and feed("newsetl_feed_host_parked", ok) == 0
    assert s[("newsetl_hosts_parked", ())] == 1
    assert 500 < s[("newsetl_host_parked_seconds_remaining", (("host", "parked.example"),))] <= 600

    def run(name: str, status: str, result: str | None = None) -> float:
        labels = {"kind": "scheduled", "status": status, **({"result": result} if result else {})}
        return s[(name, tuple(sorted(labels.items())))]

    assert run("newsetl_runs_total", "completed") == 2 and run("newsetl_runs_total", "failed") == 1
    assert run("newsetl_articles_total", "completed", "new") == 6
    assert run("newsetl_articles_total", "completed", "updated") == 2
    assert run("newsetl_articles_total", "completed", "duplicate") == 4
    assert run("newsetl_articles_total", "completed", "failed") == 2      # errors 3 - 1 failed feed
    assert run("newsetl_stories_total", "completed", "new") == 3
    assert run("newsetl_stories_total", "completed", "joined") == 1
    assert run("newsetl_feed_polls_total", "failed", "failed") == 1
    assert s[("newsetl_runs_running", ())] == 1
    assert not any(name == "newsetl_articles_total" and ("kind", "manual") in labels for name, labels in s)

    buckets = {dict(labels)["le"]: v for (name, labels), v in s.items()
               if name == "newsetl_feed_poll_duration_seconds_bucket"}
    assert (buckets["0.05"], buckets["0.1"], buckets["0.25"], buckets["1.0"], buckets["60.0"], buckets["+Inf"]) == (
        1, 1, 3, 4, 4, 5)
    assert s[("newsetl_feed_poll_duration_seconds_count", ())] == 5
    assert s[("newsetl_feed_poll_duration_seconds_sum", ())] == pytest.approx(71.18)
    runs = {dict(labels)["le"]: v for (name, labels), v in s.items()
            if name == "newsetl_run_duration_seconds_bucket" and ("kind", "scheduled") in labels}
    # the abandoned run (closed 3 h after it started, when a later run found it dead) is counted
    # as a run, but its "duration" is not one
    assert (runs["5.0"], runs["15.0"], runs["60.0"], runs["120.0"], runs["+Inf"]) == (0, 1, 2, 3, 3)
    assert s[("newsetl_runs_total", (("kind", "scheduled"), ("status", "abandoned")))] == 1


class _Gateway(BaseHTTPRequestHandler):
    pushes: list[tuple[str, str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.pushes.append((self.command, self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT


@pytest.fixture
def gateway() -> Iterator[tuple[str, list]]:
    _Gateway.pushes = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Gateway.pushes
    server.shutdown()


def test_the_ingest_flow_pushes_at_its_end(engine: Engine, prefect_harness: None, demo_sites, tmp_path: Path,
                                           gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.ingest import ingest

    url, pushes = gateway
    monkeypatch.setenv("NEWSETL_PUSHGATEWAY", url)
    sources = tmp_path / "demo.toml"
    sources.write_text(demo_sites.sources_toml(min_request_interval=0.0))
    summary = ingest(sources_file=str(sources), kind="demo")
    assert len(pushes) == 1
    method, path, body = pushes[0]
    assert (method, path) == ("PUT", "/metrics/job/newsetl/flow/ingest")
    s = _samples(body)
    # the run itself is in the pushed counters (it finished before the push)
    assert s[("newsetl_articles_total", (("kind", "demo"), ("result", "new"), ("status", "completed")))] \
        == summary["articles_new"] > 0
    # and the durations of its stages, timed in this process
    stages = {dict(labels)["stage"]: v for (name, labels), v in s.items()
              if name == "newsetl_stage_duration_seconds_count"}
    assert {"sync", "poll", "process", "stories"} <= set(stages) and all(v >= 1 for v in stages.values())
    feeds = [v for (name, _l), v in s.items() if name == "newsetl_feed_consecutive_failures"]
    assert len(feeds) == len(demo_sites.feed_urls())


def test_push_is_optional_and_never_fails_a_run(engine: Engine) -> None:
    assert metrics.push_after_run(engine, None, "ingest") is False
    # nobody listens there: logged, not raised
    assert metrics.push_after_run(engine, f"http://127.0.0.1:{_free_port()}", "ingest") is False
    assert load_settings(environ={"NEWSETL_PUSHGATEWAY": "http://pushgw:9091"}).pushgateway == "http://pushgw:9091"
    assert load_settings(environ={}).pushgateway is None
