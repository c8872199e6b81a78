"""PostgreSQL restarted under a running ingest (``pg_ctl restart -m fast``, then
``-m immediate``: crash recovery): the run retries what failed, completes, and nothing is lost or
duplicated. The server is the test's own (tests/throwaway_pg.py), never the machine's."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from etl.store import db, migrations
from tests.test_faults import ingest_once, page, rss, settings_for, sources_file
from tests.throwaway_pg import ThrowawayPostgres
from tests.webserver import TestWeb, static

# slow: a PostgreSQL server of its own, restarted twice under a run
pytestmark = pytest.mark.slow

N = 16


def _slow(body: str, delay: float):  # type: ignore[no-untyped-def]
    route = static(body)

    def slow(h) -> None:  # type: ignore[no-untyped-def]
        time.sleep(delay)
        route(h)
    return slow


def _count(engine, sql: str) -> int:  # type: ignore[no-untyped-def]
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    except Exception:  # the server is restarting
        return -1


def test_a_run_survives_postgresql_restarts_and_completes(tmp_path: Path) -> None:
    with ThrowawayPostgres() as pg, TestWeb() as web:
        migrations.upgrade(pg.url)
        engine = db.get_engine(pg.url)
        items = [{"title": f"Story number {i}", "link": web.url(f"/p/{i}"), "guid": f"g{i}"} for i in range(N)]
        web.route("/feed.xml", static(rss(items), content_type="application/rss+xml"))
        for i in range(N):
            web.route(f"/p/{i}", _slow(page(f"Story number {i}", extra=f" Detail {i}."), 0.4))
        settings = settings_for(sources_file(tmp_path, {"restart": [web.url("/feed.xml")]}),
                                batch_size=4, task_workers=1, database_url=pg.url)
        outcome: dict[str, object] = {}

        def run() -> None:
            try:
                outcome["out"] = ingest_once(engine, settings)
            except BaseException as exc:  # noqa: BLE001 — the assertion below reports it
                outcome["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        restarts = []
        for mode, after in (("fast", 1), ("immediate", N // 2)):
            deadline = time.monotonic() + 120
            while _count(engine, "SELECT count(*) FROM articles") < after and time.monotonic() < deadline:
                if not worker.is_alive():
                    break
                time.sleep(0.05)
            if worker.is_alive():
                pg.restart(mode)
                restarts.append(mode)
        worker.join(300)
        assert "error" not in outcome, outcome.get("error")
        assert restarts == ["fast", "immediate"], "the run ended before both restarts: make pages slower"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM ingestion_runs")).scalar_one() == "completed"
            titles = conn.execute(text("SELECT title FROM articles")).scalars().all()
            assert sorted(titles) == sorted(f"Story number {i}" for i in range(N))  # none lost, none twice
            assert conn.execute(text("SELECT count(*) FROM article_feeds")).scalar_one() == N
            # every article has its story (or is a near-duplicate of one that has)
            assert conn.execute(text(
                "SELECT count(*) FROM articles a WHERE NOT EXISTS "
                "(SELECT 1 FROM story_articles s WHERE s.article_id = a.id)")).scalar_one() == 0
        engine.dispose()
