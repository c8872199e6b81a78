"""kill -9 of the whole ``newsetl ingest`` process group (CLI, flow, extraction workers) at
several points, then an immediate rerun: the same articles *and stories* as a clean run, the
killed run closed as ``abandoned``, and no waiting on its leases or page claims.

The CLI runs against the session's Prefect test server (PREFECT_API_URL), so no temporary
server start is timed or killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

# slow: the CLI in subprocesses, killed with -9 at several points and rerun
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "NEWSETL_BATCH_SIZE": "4",
            "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1", "NEWSETL_STORY_EMBEDDING": "0"}


def _cli(sources: Path) -> list[str]:
    return [sys.executable, "-m", "etl.cli", "ingest", "--sources", str(sources), "--force"]


def _run(sources: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    out = subprocess.run(_cli(sources), env=_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out, time.monotonic() - started


def _scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def _kill_when(engine: Engine, sources: Path, ready: Callable[[], bool]) -> bool:
    """Starts the CLI in its own process group and SIGKILLs the group once ``ready()``;
    returns whether it was killed before it finished by itself."""
    proc = subprocess.Popen(_cli(sources), env=_env(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if ready():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            time.sleep(0.02)
        return False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _snapshot(engine: Engine) -> dict[str, object]:
    """What a run leaves: the articles (by canonical URL), the stories as groups of article
    URLs, the near-duplicate links, the feed references."""
    with engine.connect() as conn:
        urls = sorted(conn.execute(text("SELECT canonical_url FROM articles")).scalars())
        groups = conn.execute(text(
            "SELECT array_agg(a.canonical_url ORDER BY a.canonical_url) FROM story_articles s "
            "JOIN articles a ON a.id = s.article_id GROUP BY s.story_id")).scalars().all()
        dups = sorted(conn.execute(text(
            "SELECT a.canonical_url || ' -> ' || o.canonical_url FROM articles a "
            "JOIN articles o ON o.id = a.duplicate_of")).scalars())
        refs = _scalar(engine, "SELECT count(*) FROM article_feeds")
    return {"articles": urls, "stories": sorted(tuple(g) for g in groups), "duplicates": dups, "feed_refs": refs}


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        tables = conn.execute(text(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT LIKE '%yoyo%'")).scalars().all()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


KILL_POINTS: dict[str, str] = {
    # the run row exists: start-up (registry sync, reaping, before any lease)
    "start-up": "SELECT count(*) FROM ingestion_runs WHERE status = 'running'",
    # feeds leased and being polled (or just polled), nothing loaded yet
    "polling": "SELECT count(*) FROM feeds WHERE leased_until > now() OR last_polled_at IS NOT NULL",
    # a third of the articles loaded: batches in flight, stories behind
    "loading": "SELECT count(*) FROM articles",
}


def test_kill_9_anywhere_then_rerun_gives_the_clean_runs_articles_and_stories(
        engine: Engine, prefect_harness: None, demo_sites, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sources = tmp_path / "demo.toml"
    sources.write_text(demo_sites.sources_toml(min_request_interval=0.0), encoding="utf-8")
    _out, clean_secs = _run(sources)
    clean = _snapshot(engine)
    n_articles, n_feeds = len(clean["articles"]), len(demo_sites.feed_urls())
    assert n_articles == len(demo_sites.article_urls()) and clean["stories"]
    thresholds = {"start-up": 1, "polling": 1, "loading": max(1, n_articles // 3)}
    timings = {"clean": clean_secs}
    for point, sql in KILL_POINTS.items():
        _reset(engine)
        killed = _kill_when(engine, sources, lambda: _scalar(engine, sql) >= thresholds[point])  # noqa: B023
        if not killed:
            pytest.fail(f"the run finished before the {point} kill point")
        with engine.connect() as conn:
            killed_run = conn.execute(text("SELECT id FROM ingestion_runs ORDER BY id DESC LIMIT 1")).scalar_one()
        out, timings[point] = _run(sources)
        after = _snapshot(engine)
        assert after == clean, f"after a kill at {point}: differs from the clean run"
        with engine.connect() as conn:
            runs = dict(conn.execute(text("SELECT id, status FROM ingestion_runs")).all())
            rerun = conn.execute(text("SELECT id, feeds_polled FROM ingestion_runs ORDER BY id DESC LIMIT 1")).one()
        assert runs[killed_run] == "abandoned" and runs[rerun.id] == "completed", runs
        # no waiting on the dead run's leases: the rerun polled every feed itself
        assert rerun.feeds_polled == n_feeds, out.stdout
        assert "leased by another live run" not in out.stdout
    print("seconds per run (clean, then the rerun after each kill):", {k: round(v, 1) for k, v in timings.items()})
