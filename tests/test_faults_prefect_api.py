"""The Prefect API goes away: a real ``prefect server start`` killed (its whole process group)
while ``newsetl ingest`` runs against it, then a rerun against a new server; and an API that is
down before a run starts.

The run's own outcome decides the exit code: a completed run exits 0 with every page loaded,
says what Prefect missed in one warning line (no traceback) and notes it on its row; the next
run against a live API reports normally. An API that is down at the start stops the run before
anything is done, with one line and exit 1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from etl.cli import stack
from tests.test_ingest_flow import _page
from tests.webserver import TestWeb, respond, static

REPO = Path(__file__).resolve().parent.parent
PAGES = 150
PAGE_DELAY = 0.15  # seconds per page: the run lasts long enough for the kill to land mid-run


class PrefectServer:
    """``prefect server start`` in its own process group, on a free port, with its own home."""

    def __init__(self, home: Path) -> None:
        self.port = stack.free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.log = home / f"server-{self.port}.log"
        env = {**os.environ, "PREFECT_HOME": str(home / f"prefect-{self.port}"),
               "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(self.port),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false",
               "DO_NOT_TRACK": "1"}
        env.pop("PREFECT_API_URL", None)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                stack.prefect_command("server", "start", "--host", "127.0.0.1", "--port", str(self.port)),
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 180
        while not stack.api_healthy(self.api_url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"prefect server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def flow_runs(self) -> list[dict]:
        return httpx.post(f"{self.api_url}/flow_runs/filter", json={}, timeout=30).json()

    def artifacts(self) -> list[dict]:
        return httpx.post(f"{self.api_url}/artifacts/filter", json={}, timeout=30).json()


@pytest.fixture
def servers() -> Iterator[list[PrefectServer]]:
    started: list[PrefectServer] = []
    yield started
    for server in started:
        server.kill()


@pytest.fixture
def slow_site() -> Iterator[TestWeb]:
    """One feed of ``PAGES`` articles, each page answered after ``PAGE_DELAY``."""
    with TestWeb() as web:
        def slow(body: bytes):  # noqa: ANN202
            def route(h):  # noqa: ANN001, ANN202
                time.sleep(PAGE_DELAY)
                respond(h, 200, body, {"Content-Type": "text/html; charset=utf-8"})
            return route

        items = []
        for i in range(PAGES):
            path = f"/en/world/story-{i}"
            web.route(path, slow(_page(f"Report number {i} from the capital, part {i % 7}").encode()))
            items.append(f"<item><title>Report {i}</title><link>{web.url(path)}</link><guid>r{i}</guid>"
                         f"<pubDate>Mon, 07 Dec 2026 0{i // 60}:{i % 60:02d}:00 GMT</pubDate></item>")
        web.route("/feed.xml", static('<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
                                      + "".join(items) + "</channel></rss>", content_type="application/rss+xml"))
        yield web


def _sources(tmp_path: Path, web: TestWeb) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(f'[[sources]]\nslug = "wire"\nname = "Wire"\nmin_request_interval = 0.0\n'
                    f'  [[sources.feeds]]\n  url = "{web.url("/feed.xml")}"\n  language = "en"\n')
    return path


def _env(api_url: str, tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(tmp_path / "client"),
            "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1", "NEWSETL_STORY_EMBEDDING": "0", "COLUMNS": "200"}


def _cli(sources: Path) -> list[str]:
    return [sys.executable, "-m", "etl.cli", "ingest", "--sources", str(sources), "--force"]


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_prefect_api_killed_mid_run_costs_the_run_nothing_and_the_next_run_reports(
        engine: Engine, servers: list[PrefectServer], slow_site: TestWeb, tmp_path: Path) -> None:
    sources = _sources(tmp_path, slow_site)
    first = PrefectServer(tmp_path)
    servers.append(first)
    started = time.monotonic()
    proc = subprocess.Popen(_cli(sources), env=_env(first.api_url, tmp_path), cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        killed_at = None
        while proc.poll() is None:
            loaded = _count(engine, "SELECT count(*) FROM articles")
            if killed_at is None and loaded >= PAGES // 3:
                first.kill()  # the server's whole process group, SIGKILL
                killed_at = loaded
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed_at is not None and killed_at < PAGES, "the run ended before the API was killed"
    print(f"API killed after {killed_at} articles; exit {proc.returncode} after {time.monotonic() - started:.0f} s",
          "stdout:", stdout, "stderr:", stderr, sep="\n")

    assert proc.returncode == 0, stdout + stderr
    assert _count(engine, "SELECT count(*) FROM articles") == PAGES
    assert f"{PAGES} new article(s)" in stdout
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stdout + stderr, stderr
    [warning] = lines
    assert warning.startswith(f"newsetl: warning: run 1 completed, but the Prefect API at {first.api_url} was "
                              "unreachable from "), warning
    assert "not recorded in Prefect: " in warning and "the flow run's final state" in warning
    with engine.connect() as conn:
        run = conn.execute(text("SELECT status, articles_new, notes FROM ingestion_runs WHERE id = 1")).one()
    assert (run.status, run.articles_new) == ("completed", PAGES)
    assert run.notes.startswith(f"Prefect API {first.api_url} unreachable from ")
    assert "the flow run's final state" in run.notes and "task-run events and logs" in run.notes

    # A new server: the next run works and reports there (state, artifact), with nothing to note.
    second = PrefectServer(tmp_path)
    servers.append(second)
    rerun = subprocess.run(_cli(sources), env=_env(second.api_url, tmp_path), cwd=REPO, text=True,
                           capture_output=True, timeout=600)
    assert rerun.returncode == 0 and rerun.stderr.strip() == "", rerun.stdout + rerun.stderr
    with engine.connect() as conn:
        again = conn.execute(text("SELECT id, status, notes, flow_run_id, artifact_key FROM ingestion_runs "
                                  "ORDER BY id DESC LIMIT 1")).one()
    assert (again.id, again.status, again.notes) == (2, "completed", None)
    [flow_run] = second.flow_runs()
    assert flow_run["id"] == str(again.flow_run_id) and flow_run["state"]["type"] == "COMPLETED"
    assert again.artifact_key in {a["key"] for a in second.artifacts()}


@pytest.mark.slow
def test_an_api_down_at_the_start_stops_the_run_with_one_line(engine: Engine, tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{stack.free_port()}/api"  # nothing listens there
    sources = tmp_path / "sources.toml"
    sources.write_text('[[sources]]\nslug = "wire"\nname = "Wire"\n'
                       '  [[sources.feeds]]\n  url = "http://127.0.0.1:9/feed.xml"\n')
    out = subprocess.run(_cli(sources), env=_env(nowhere, tmp_path), cwd=REPO, text=True, capture_output=True,
                         timeout=300)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip() == (f"newsetl: the Prefect API at {nowhere} is unreachable (ConnectError: [Errno 111] "
                                  "Connection refused); nothing was run. Start it, or unset PREFECT_API_URL to run "
                                  "with a temporary local server")
    assert _count(engine, "SELECT count(*) FROM ingestion_runs") == 0


def _health_site() -> TestWeb:
    """A real HTTP server answering the API's ``/health`` as Prefect does (what the watch asks)."""
    web = TestWeb()
    web.route("/api/health", static("true", content_type="application/json"))
    return web


def _wait(condition, seconds: float = 30.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_flows_own_watch_notes_on_the_row_what_prefect_missed(engine: Engine,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """Under a worker there is no ``newsetl ingest`` around the flow: the flow's own watch sees
    the API go, notes it on the run's row and logs it once."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from etl import store
    from flows import prefect_api

    web = _health_site().__enter__()
    url = web.url("/api")
    run_id = store.start_run(engine, "scheduled", {})
    with temporary_settings(updates={PREFECT_API_URL: url}), caplog.at_level("WARNING", logger="flows"):
        with prefect_api.watch_run() as watch:
            assert prefect_api.current() is watch and watch.url == url
            watch.attach(engine, run_id)
            assert watch.check() and not watch.lost
            web.__exit__(None, None, None)  # the API goes away
            assert _wait(lambda: watch.down), "the watch did not see the API go"
        assert prefect_api.current() is None
    with engine.connect() as conn:
        notes = conn.execute(text("SELECT notes FROM ingestion_runs WHERE id = :id"), {"id": run_id}).scalar_one()
    assert notes.startswith(f"Prefect API {url} unreachable from ")
    assert notes.endswith("(ConnectError: [Errno 111] Connection refused); not recorded in Prefect: task-run "
                          "events and logs sent while it was down; the flow run's final state and later events "
                          "may not reach it either")
    assert [r.getMessage() for r in caplog.records if r.name == "flows.prefect_api"] == [notes]


def test_a_watch_holds_back_prefects_complaints_only_while_the_api_is_down(engine: Engine) -> None:
    import logging

    from flows import prefect_api

    web = _health_site().__enter__()
    raise_exceptions = logging.raiseExceptions
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Collect()
    logging.getLogger().addHandler(handler)
    events = logging.getLogger("prefect.events.clients")
    try:
        with prefect_api.ApiWatch(web.url("/api"), every=0.2) as watch:
            events.warning("Unable to connect to 'ws://…/events/in' while the API is up")
            logging.getLogger("etl.jobs.cycle").warning("ours, always shown")
            web.__exit__(None, None, None)
            assert _wait(lambda: watch.down)
            assert logging.raiseExceptions is False  # Prefect's log shipper prints to stderr otherwise
            events.warning("Unable to connect to 'ws://…/events/in'")
            logging.getLogger("prefect._internal.concurrency").error("Service 'EventsWorker' failed to process item")
            logging.getLogger("etl.jobs.cycle").warning("ours, still shown")
    finally:
        logging.getLogger().removeHandler(handler)
        for target in list(watch._quiet.attached):  # still down when the watch ended: detach for the next tests
            target.removeFilter(watch._quiet)
        logging.raiseExceptions = raise_exceptions
    assert seen == ["Unable to connect to 'ws://…/events/in' while the API is up", "ours, always shown",
                    "ours, still shown"]
    assert watch.held_back >= 1
