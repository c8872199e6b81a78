"""Work a dead process leaves behind is taken over at once: its run row is closed as
``abandoned``, its feed leases and page claims freed, its articles given their stories; a
migration lock it held is broken; a run on a schema that is behind stops with a clear error.
A live run elsewhere keeps its leases, and the CLI says so."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from etl import store
from etl.config import load_sources
from etl.jobs.runs import process_home, reap_dead_runs
from etl.models import ArticleRecord, ExtractionStatus
from etl.store import db, migrations
from tests.test_extract import PARAS
from tests.test_faults import ingest_once, page, rss, settings_for, sources_file
from tests.webserver import TestWeb, static

REPO = Path(__file__).resolve().parent.parent


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def fresh_url(db_url: str) -> Iterator[str]:
    """An empty database next to the session's, dropped afterwards."""
    base = make_url(db_url)
    name = f"newsetl_fresh_{uuid.uuid4().hex[:8]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- migrations ----------------------------------------------------------------------------------

@pytest.mark.slow  # a fresh database, the CLI in subprocesses
def test_a_run_on_a_schema_that_is_behind_stops_with_a_clear_error(fresh_url: str) -> None:
    with pytest.raises(migrations.SchemaBehind, match=r"0001_initial.*newsetl db upgrade"):
        migrations.check_current(fresh_url)
    env = {**os.environ, "NEWSETL_DATABASE_URL": fresh_url}
    out = subprocess.run([sys.executable, "-m", "etl.cli", "status"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "newsetl db upgrade" in out.stderr + out.stdout
    # a run never migrates: still nothing applied
    assert migrations.pending(fresh_url)[:1] == ["0001_initial"]
    up = subprocess.run([sys.executable, "-m", "etl.cli", "db", "upgrade"], env=env, cwd=REPO,
                        capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    migrations.check_current(fresh_url)


_HOLD_LOCK = """
import sys, time
from yoyo import get_backend
backend = get_backend(sys.argv[1])
with backend.lock():
    print("locked", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow  # a fresh database, a lock holder process killed with -9
def test_a_migration_lock_left_by_a_killed_process_is_broken_not_waited_on(fresh_url: str) -> None:
    yoyo_url = make_url(fresh_url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, yoyo_url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with psycopg.connect(make_url(fresh_url).set(drivername="postgresql").render_as_string(hide_password=False)) as c:
        assert c.execute("SELECT pid FROM yoyo_lock").fetchone() == (holder.pid,)  # left behind
    applied = migrations.upgrade(fresh_url)  # yoyo alone: LockTimeout after 10 s, for ever
    assert applied[0] == "0001_initial" and migrations.pending(fresh_url) == []
    with psycopg.connect(make_url(fresh_url).set(drivername="postgresql").render_as_string(hide_password=False)) as c:
        assert c.execute("SELECT count(*) FROM yoyo_lock").fetchone() == (0,)


# --- dead runs, leases, claims, stories -----------------------------------------------------------

def _insert_run(engine: Engine, host: str, pid: int, silent_seconds: float) -> int:
    with engine.begin() as conn:
        return conn.execute(text(
            "INSERT INTO ingestion_runs (kind, host, pid, pid_started, heartbeat_at) "
            "VALUES ('manual', :h, :p, 0, now() - make_interval(secs => :s)) RETURNING id"),
            {"h": host, "p": pid, "s": silent_seconds}).scalar_one()


def test_a_dead_runs_leases_and_claims_are_taken_over_at_once_and_its_row_abandoned(
        engine: Engine, tmp_path: Path) -> None:
    with TestWeb() as web:
        feeds = {name: [web.url(f"/{name}.xml")] for name in ("a", "b", "c")}
        for name in feeds:
            web.route(f"/{name}.xml", static(rss([{"title": f"{name} story", "link": web.url(f"/p/{name}"),
                                                   "guid": name}]), content_type="application/rss+xml"))
            web.route(f"/p/{name}", static(page(f"{name} story")))
        settings = settings_for(sources_file(tmp_path, feeds))
        store.sync_sources(engine, load_sources(settings.sources_file))
        here = process_home()
        killed = _insert_run(engine, here, dead_pid(), 1.0)          # this host, process gone
        silent = _insert_run(engine, "elsewhere", 4242, 3600.0)     # another host, heartbeat stale
        alive = _insert_run(engine, "elsewhere", 4243, 1.0)         # another host, beating
        with engine.begin() as conn:
            ids = conn.execute(text("SELECT id FROM feeds ORDER BY url")).scalars().all()
            for feed_id, (run_id, host) in zip(ids, [(killed, here), (silent, "elsewhere"), (alive, "elsewhere")],
                                               strict=True):
                conn.execute(text("UPDATE feeds SET leased_until = now() + interval '900 s', leased_by = :w "
                                  "WHERE id = :id"), {"w": f"{host.split()[0]}:1:{run_id}", "id": feed_id})
            conn.execute(text("INSERT INTO page_claims VALUES (:u, :o, now() + interval '300 s')"),
                         {"u": web.url("/p/a"), "o": f"run:{killed}:batch"})
        out = ingest_once(engine, settings)
    assert sorted(out["abandoned"]) == sorted([killed, silent])
    with engine.connect() as conn:
        status = dict(conn.execute(text("SELECT id, status FROM ingestion_runs")).all())
        assert status[killed] == status[silent] == "abandoned" and status[alive] == "running"
        assert status[out["run_id"]] == "completed"
        titles = set(conn.execute(text("SELECT title FROM articles")).scalars())
    # the dead runs' feeds were polled at once (page /p/a included, its claim freed); the live
    # run's feed was left to it, and the cycle says so
    assert titles == {"a story", "b story"}
    assert out["cycle"].held == {f"elsewhere:1:{alive}": 1}


def test_maintenance_closes_dead_runs_too(engine: Engine) -> None:
    dead = _insert_run(engine, process_home(), dead_pid(), 1.0)
    # the same host name in another PID namespace (another container): its pid says nothing here
    other_ns = _insert_run(engine, f"{socket.gethostname()} pid:[1]", dead_pid(), 1.0)
    assert reap_dead_runs(engine) == [dead]
    assert reap_dead_runs(engine) == []  # once
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, finished_at, error FROM ingestion_runs WHERE id = :i"),
                           {"i": dead}).one()
    assert row.status == "abandoned" and row.finished_at is not None and "died" in row.error
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM ingestion_runs WHERE id = :i"),
                            {"i": other_ns}).scalar_one() == "running"


def test_articles_a_dead_run_loaded_without_stories_are_assigned_by_the_next_run(
        engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        source_id = conn.execute(text("INSERT INTO sources (slug, name) VALUES ('left', 'Left') RETURNING id")).scalar_one()
    body = "\n\n".join(PARAS)
    records = [ArticleRecord(source_id=source_id, feed_id=None, entry_key=f"k{i}", url=f"http://h/{i}",
                             canonical_url=f"http://h/{i}", final_url=None, guid=None, title=f"Left behind {i}",
                             description=None, body=f"{body} Variant {i}.", language="en", authors=[],
                             published_at=None, updated_at=None, fetched_at=None, content_hash=f"h{i}",
                             http_status=200, extraction_status=ExtractionStatus.OK, extraction_error=None)
               for i in range(3)]
    loaded = store.upsert_articles(engine, records)  # loaded, then the process "died"
    assert loaded.inserted == 3
    with TestWeb() as web:
        web.route("/empty.xml", static(rss([]), content_type="application/rss+xml"))
        out = ingest_once(engine, settings_for(sources_file(tmp_path, {"left": [web.url("/empty.xml")]})))
    assert out["cycle"].stories.processed == 3
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM story_articles")).scalar_one() == 3
        assert conn.execute(text(
            "SELECT count(*) FROM article_features WHERE assigned_at IS NOT NULL")).scalar_one() == 3


def test_articles_a_live_run_may_still_be_assigning_are_left_to_it(engine: Engine, tmp_path: Path) -> None:
    # A run on another machine, heartbeat fresh: alive. The articles it loaded since it started
    # may be queued in its story lane: the catch-up of a run starting now must leave them be.
    live = _insert_run(engine, "elsewhere pid:[1]", 4242, 0.0)
    with engine.begin() as conn:
        source_id = conn.execute(text("INSERT INTO sources (slug, name) VALUES ('live', 'Live') RETURNING id")).scalar_one()
    body = "\n\n".join(PARAS)
    store.upsert_articles(engine, [ArticleRecord(
        source_id=source_id, feed_id=None, entry_key=f"k{i}", url=f"http://h/{i}", canonical_url=f"http://h/{i}",
        final_url=None, guid=None, title=f"Still queued {i}", description=None, body=f"{body} Variant {i}.",
        language="en", authors=[], published_at=None, updated_at=None, fetched_at=None, content_hash=f"h{i}",
        http_status=200, extraction_status=ExtractionStatus.OK, extraction_error=None) for i in range(2)])
    with TestWeb() as web:
        web.route("/empty.xml", static(rss([]), content_type="application/rss+xml"))
        settings = settings_for(sources_file(tmp_path, {"live": [web.url("/empty.xml")]}))
        assert ingest_once(engine, settings)["cycle"].stories.processed == 0
        with engine.begin() as conn:  # the live run ends without assigning them (say it failed)
            conn.execute(text("UPDATE ingestion_runs SET status = 'failed', finished_at = now() WHERE id = :i"),
                         {"i": live})
        assert ingest_once(engine, settings)["cycle"].stories.processed == 2
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM story_articles")).scalar_one() == 2


def test_the_cli_says_when_feeds_were_skipped_for_a_live_run() -> None:
    from etl.cli.main import _print_summary, console

    with console.capture() as cap:
        _print_summary({"run_id": 7, "feeds_polled": 1, "feeds_failed": 0, "entries_seen": 1, "articles_new": 1,
                        "articles_updated": 0, "errors": 0, "feeds_held": {"hostB:12:6": 3},
                        "runs_abandoned": [4, 5]})
    said = cap.get()
    assert "skipped 3 feed(s) leased by another live run (hostB:12:6)" in said
    assert "closed 2 dead run(s) as abandoned (4, 5)" in said


def test_maintenance_prunes_old_ingest_errors_with_the_poll_log(engine: Engine,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from etl.config import load_settings
    from etl.jobs import maintenance

    monkeypatch.setenv("NEWSETL_RETENTION_DAYS", "30")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO ingest_errors (kind, detail, created_at) VALUES "
                          "('row_failed', 'old', now() - interval '40 days'), ('row_failed', 'new', now())"))
    result = maintenance.prune(engine, load_settings())
    assert result.status == "ok" and "1 ingest_errors row(s)" in result.detail
    with engine.connect() as conn:
        assert conn.execute(text("SELECT detail FROM ingest_errors")).scalars().all() == ["new"]
