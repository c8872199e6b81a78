"""Per-host spacing shared through PostgreSQL: two fetchers (two runs, e.g. an ingest and a
backfill in different processes) keep one pace to a host together."""

import threading
import time
from dataclasses import replace

from sqlalchemy import Engine

from etl import store
from etl.config import load_settings
from etl.http import Fetcher
from tests.webserver import TestWeb, static

INTERVAL = 0.4


def _two_runs(urls: list[str], make_fetcher) -> float:
    """Two fetchers, each fetching ``urls`` from its own thread; seconds until all are done."""
    settings = replace(load_settings(), allow_private_networks=True)

    def run() -> None:
        with make_fetcher(settings) as f:
            for url in urls:
                assert f.fetch(url, max_bytes=1000, min_interval=INTERVAL).ok

    threads = [threading.Thread(target=run) for _ in range(2)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - start


def test_two_fetchers_share_one_pace_per_host(engine: Engine) -> None:
    with TestWeb("127.0.0.21") as web:
        urls = [web.route(f"/p{i}", static(f"page {i}")) for i in range(2)]
        elapsed = _two_runs(urls, lambda s: Fetcher(s, host_slots=store.host_slot_reserver(engine)))
        # 4 request starts to one host, one pace: the last cannot start before 3 intervals
        # after the first (a lower bound that load can only make longer).
        assert elapsed >= 3 * INTERVAL
        assert len(web.requests) == 4


def test_without_the_shared_slots_each_run_paces_alone(engine: Engine) -> None:
    """The contrast that shows the shared slots are what spaces the runs: per-process pacing
    alone lets the two runs' requests overlap (≈ one interval for two requests each)."""
    with TestWeb("127.0.0.22") as web:
        urls = [web.route(f"/p{i}", static(f"page {i}")) for i in range(2)]
        _two_runs(urls, Fetcher)
        starts = sorted(web.times)
        # with no shared pace, some two requests of different runs start closer than the interval
        assert min(b - a for a, b in zip(starts, starts[1:])) < INTERVAL


def test_a_database_hiccup_falls_back_to_per_process_pacing() -> None:
    def broken(host: str, interval: float) -> float:
        raise RuntimeError("connection lost")

    with TestWeb("127.0.0.23") as web:
        url = web.route("/p", static("x"))
        settings = replace(load_settings(), allow_private_networks=True)
        with Fetcher(settings, host_slots=broken) as f:
            assert f.fetch(url, max_bytes=100, min_interval=0.1).ok
