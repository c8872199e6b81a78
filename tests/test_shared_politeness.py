"""Per-host spacing shared through PostgreSQL: two fetchers (two runs, e.g. an ingest and a
backfill in different processes) keep one pace to a host together."""

import threading
import time
from dataclasses import replace

from sqlalchemy import Engine

from etl import models, store
from etl.config import load_settings
from etl.fetch.http import Fetcher
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


def test_a_page_being_fetched_by_one_run_is_not_fetched_by_another(engine: Engine) -> None:
    """Two runs (an ingest and a backfill, two workers) given the same entry at the same
    moment: the page is requested once and loaded once; the run that found it claimed waits
    for the other and records nothing twice."""
    from etl.config import parse_sources
    from etl.jobs import batch
    from etl.models import FeedEntry
    from tests.test_extract import PARAS

    gate = threading.Event()

    def slow_page(h):
        gate.wait(5)  # hold the first run's fetch until the second run has tried
        static("<html><body><article>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</article></body></html>")(h)

    with TestWeb("127.0.0.24") as web:
        url = web.route("/a", slow_page)
        store.sync_sources(engine, parse_sources(
            f'[[sources]]\nslug = "s"\n  [[sources.feeds]]\n  url = "{web.url("/feed")}"\n  language = "en"'))
        feed = store.due_feeds(engine)[0]
        entry = FeedEntry(entry_key="g1", link=url, canonical_url=url, title="A")
        item = models.WorkItem(feed.id, feed.source_id, "s", "en", 0.0, entry)
        settings = replace(load_settings(), allow_private_networks=True)
        results: dict[str, models.BatchResult] = {}

        def run(name: str) -> None:
            with Fetcher(settings) as f:
                results[name] = batch.process_batch(engine, f, settings, [item], only_new=True)

        first = threading.Thread(target=run, args=("first",))
        first.start()
        while web.hits("/a") == 0:  # the first run is fetching
            time.sleep(0.01)
        # The second run finds the page claimed and waits for the first, which is held until
        # the second has tried; then it only records its feed reference.
        threading.Timer(0.5, gate.set).start()
        run("second")
        first.join()
        assert web.hits("/a") == 1
        assert results["first"].inserted == 1
        assert results["second"].inserted == 0 and results["second"].deferred_feeds == []
        # a third run after the load: the entry is stored now, so it is linked, not fetched
        run("third")
        assert web.hits("/a") == 1 and results["third"].inserted == 0 and results["third"].deferred_feeds == []


def test_grouped_slots_keep_the_shared_pace(engine: Engine) -> None:
    """HostSlots (what the cycle uses) reserves the slots of concurrent requests together;
    two runs using it still keep one pace."""
    with TestWeb("127.0.0.23") as web:
        urls = [web.route(f"/p{i}", static(f"page {i}")) for i in range(2)]
        elapsed = _two_runs(urls, lambda s: Fetcher(s, host_slots=store.HostSlots(engine)))
        assert elapsed >= 3 * INTERVAL
        assert len(web.requests) == 4


def test_concurrent_requests_share_statements_and_get_consecutive_slots(engine: Engine) -> None:
    slots = store.HostSlots(engine)
    asks = 8
    barrier = threading.Barrier(asks)
    starts: list[float] = []

    def ask() -> None:
        barrier.wait()
        wait = slots("group.example", INTERVAL)
        starts.append(time.monotonic() + wait)

    threads = [threading.Thread(target=ask) for _ in range(asks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert slots.requests == asks and slots.statements < asks  # grouped, not one each
    starts.sort()
    # one host: every request got its own slot, an interval apart (small slack for clocks)
    assert all(b - a >= INTERVAL - 0.05 for a, b in zip(starts, starts[1:])), starts
