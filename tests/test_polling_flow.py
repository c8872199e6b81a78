"""Two real Prefect ``ingest`` flow runs at the same time over the same feeds: the leases in
PostgreSQL keep them from polling a feed twice, and the articles they share load once."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, text

from flows.ingest import ingest
from tests.test_extract import PARAS
from tests.test_polling import RSS_TYPE, registry, rss
from tests.webserver import TestWeb, respond, static


def test_two_concurrent_flow_runs(engine: Engine, prefect_harness: None, tmp_path: Path,
                                  monkeypatch) -> None:
    monkeypatch.setenv("NEWSETL_POLL_CHUNK_SIZE", "2")  # many small leases: the runs interleave
    page = "<html><body><article>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</article></body></html>"
    n_feeds = 16

    # The first feed answers wait until both runs have requests in flight (each Fetcher sends at
    # most 2 at a time to one host): the runs overlap for sure, whatever the start-up lag.
    arrived, lock, gate = [0], threading.Lock(), threading.Event()

    def feed(i: int):
        def route(h):
            with lock:
                arrived[0] += 1
                if arrived[0] >= 4:
                    gate.set()
            gate.wait(120)
            items = [(f"f{i}-{k}", web.url(f"/art/{(i + k) % 6}")) for k in range(2)]
            respond(h, 200, rss(items), {"Content-Type": RSS_TYPE})
        return route

    with TestWeb() as web:
        for i in range(n_feeds):
            web.route(f"/feed{i}", feed(i))
        for k in range(6):
            # distinct bodies: identical text under two URLs is one article (exact duplicate)
            web.route(f"/art/{k}", static(page.replace("</article>", f"<p>Closing note {k}.</p></article>")))
        sources = tmp_path / "sources.toml"
        sources.write_text(registry({"local": [web.url(f"/feed{i}") for i in range(n_feeds)]}))
        summaries: list[dict] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                summaries.append(ingest(sources_file=str(sources)))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert gate.is_set() and all(s["feeds_polled"] > 0 for s in summaries), summaries
        assert all(web.hits(f"/feed{i}") == 1 for i in range(n_feeds))
        assert sum(s["feeds_polled"] for s in summaries) == n_feeds
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*), count(DISTINCT feed_id) FROM feed_polls")).one() == (n_feeds, n_feeds)
            assert conn.execute(text("SELECT count(*), count(DISTINCT canonical_url) FROM articles")).one() == (6, 6)
            assert conn.execute(text("SELECT count(*) FROM article_feeds")).scalar() == 2 * n_feeds
            assert conn.execute(text("SELECT count(*) FROM ingestion_runs WHERE status = 'completed'")).scalar() == 2
