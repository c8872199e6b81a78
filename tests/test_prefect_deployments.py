"""The deployments on a real ``prefect server start``: the local stack is brought up the way an
operator does it (``etl.cli.stack.up`` = server, process pool, ``prefect deploy --all``, a worker),
flow runs are triggered by deployment, and the results are checked in PostgreSQL and in the
Prefect API. Everything started here is stopped by PID at the end.

The slowest test file of the suite (≈1 minute): one server for the whole module.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import Engine, text

from etl.cli import stack
from tests.test_ingest_flow import _page
from tests.webserver import TestWeb, static

# slow: a real Prefect server, process worker and deployments (prefect deploy --all)
pytestmark = pytest.mark.slow

RUN_TIMEOUT = 240  # seconds for a flow run to finish, start of its process included
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def site() -> Iterator[TestWeb]:
    """One outlet: robots.txt → news sitemap, a feed, and the article pages."""
    with TestWeb() as web:
        web.route("/robots.txt", static(f"User-agent: *\nSitemap: {web.url('/news.xml')}\n", content_type="text/plain"))
        urls = "".join(
            f"<url><loc>{web.url(p)}</loc><news:news><news:publication_date>{d}</news:publication_date>"
            f"<news:title>{t}</news:title></news:news></url>"
            for p, d, t in [("/en/world/20261120-panama", "2026-11-20T19:40:00Z", "Ministers meet in Panama"),
                            ("/en/world/20261121-quito", "2026-11-21T09:00:00Z", "Vote count in Quito"),
                            ("/en/world/20261101-old", "2026-11-01T09:00:00Z", "An older story")])
        web.route("/news.xml", static(
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>',
            content_type="application/xml"))
        items = "".join(f"<item><title>{t}</title><link>{web.url(p)}</link><guid>{p}</guid>"
                        f"<pubDate>Sat, 21 Nov 2026 1{i}:00:00 GMT</pubDate></item>"
                        for i, (p, t) in enumerate([("/en/world/20261121-lima", "Strike in Lima"),
                                                    ("/en/world/20261121-quito", "Vote count in Quito")]))
        web.route("/feed.xml", static(f'<?xml version="1.0"?><rss version="2.0"><channel><title>Local</title>'
                                      f"{items}</channel></rss>", content_type="application/rss+xml"))
        for path, title in [("/en/world/20261120-panama", "Ministers meet in Panama"),
                            ("/en/world/20261121-quito", "Vote count in Quito"),
                            ("/en/world/20261101-old", "An older story"),
                            ("/en/world/20261121-lima", "Strike in Lima")]:
            web.route(path, static(_page(title)))
        yield web


@pytest.fixture(scope="module")
def sources_file(site: TestWeb, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sources") / "sources.toml"
    path.write_text(f'[[sources]]\nslug = "local"\nname = "Local"\nhomepage = "{site.url("/")}"\n'
                    f'min_request_interval = 0.0\n  [[sources.feeds]]\n  url = "{site.url("/feed.xml")}"\n'
                    f'  language = "en"\n')
    return path


@pytest.fixture(scope="module")
def prefect_stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.StackConfig]:
    home = tmp_path_factory.mktemp("stack-home")
    empty_sources = home / "no-sources.toml"
    empty_sources.write_text("# the worker's default registry: nothing to poll\n")
    cfg = stack.StackConfig(
        state_dir=home / "stack", port=stack.free_port(), ui=False, startup_timeout=150,
        env={
            # What every flow run of the worker sees: the test database, local sites allowed.
            "NEWSETL_DATABASE_URL": db_url,
            "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1",
            "NEWSETL_HOME": str(home),
            "NEWSETL_SOURCES": str(empty_sources),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            # Schedules are checked as data; no scheduled run should start during the test.
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
        })
    try:
        stack.up(cfg, say=lambda _m: None)
        yield cfg
    finally:
        stack.down(cfg, say=lambda _m: None)


def _api(cfg: stack.StackConfig, method: str, path: str, attempts: int = 4, **kw: Any) -> Any:
    """A read of the API (every call here is one: GETs and /filter POSTs). On a busy machine the
    stack's server (SQLite underneath) can take longer than the 30 s timeout to answer: seen in
    a CI run, /deployments/filter just after the stack came up. A timed-out read is asked again."""
    for attempt in range(attempts):
        try:
            resp = httpx.request(method, f"{cfg.api_url}{path}", timeout=30, **kw)
            break
        except httpx.TimeoutException:
            if attempt == attempts - 1:
                raise
    resp.raise_for_status()
    return resp.json() if resp.content else None


def _deployments(cfg: stack.StackConfig) -> dict[str, dict]:
    return {d["name"]: d for d in _api(cfg, "POST", "/deployments/filter", json={})}


def _trigger(cfg: stack.StackConfig, name: str, parameters: dict[str, Any]) -> str:
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: cfg.api_url}):
        run = run_deployment(name, parameters=parameters, timeout=0, as_subflow=False)
    return str(run.id)


def _table(artifact: dict) -> list[dict]:
    data = artifact["data"]
    return json.loads(data) if isinstance(data, str) else data


def _artifact(cfg: stack.StackConfig, key: str) -> dict:
    [artifact] = _api(cfg, "POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}})
    return artifact


def _wait(cfg: stack.StackConfig, run_ids: list[str]) -> dict[str, dict]:
    deadline = time.monotonic() + RUN_TIMEOUT
    runs: dict[str, dict] = {}
    while time.monotonic() < deadline:
        try:
            runs = {r: _api(cfg, "GET", f"/flow_runs/{r}") for r in run_ids}
        except httpx.TimeoutException:  # a busy server (its SQLite writer locked): ask again
            continue
        if all(run["state"]["type"] in FINAL for run in runs.values()):
            return runs
        time.sleep(1)
    log = Path(cfg.state_dir / "logs" / "worker.log")
    pytest.fail(f"flow runs not finished after {RUN_TIMEOUT}s: "
                f"{ {r: v['state']['type'] for r, v in runs.items()} }\n{stack._tail(log, 40)}")


def test_deployments_have_their_schedules_and_limits(prefect_stack: stack.StackConfig) -> None:
    deps = _deployments(prefect_stack)
    assert set(deps) == {"ingest-feeds", "backfill", "maintenance"}
    ingest = deps["ingest-feeds"]
    [schedule] = ingest["schedules"]
    assert schedule["active"] and schedule["schedule"]["cron"] == "*/15 * * * *"
    assert schedule["schedule"]["timezone"] == "UTC"
    assert ingest["global_concurrency_limit"]["limit"] == 1
    assert ingest["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert ingest["parameters"]["kind"] == "scheduled"
    assert deps["backfill"]["schedules"] == [] and deps["backfill"]["enforce_parameter_schema"]
    assert deps["maintenance"]["schedules"][0]["schedule"]["cron"] == "30 3 * * *"
    for d in deps.values():
        assert d["work_pool_name"] == stack.DEFAULT_POOL and d["enforce_parameter_schema"]
        step = d["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]
        assert Path(step["directory"]) == prefect_stack.repo
    pool = _api(prefect_stack, "GET", f"/work_pools/{stack.DEFAULT_POOL}")
    assert pool["type"] == "process"
    info = stack.status(prefect_stack)
    assert info["api_healthy"] and info["processes"] == {"server": True, "worker": True}


def test_parameters_are_validated_by_the_server(prefect_stack: stack.StackConfig) -> None:
    with pytest.raises(Exception, match="mode"):
        _trigger(prefect_stack, "backfill/backfill", {"mode": "everything", "since": "2026-11-20"})


def test_flow_runs_on_the_worker(prefect_stack: stack.StackConfig, engine: Engine, site: TestWeb,
                                 sources_file: Path, demo_sites: Any, tmp_path: Path) -> None:
    """Four runs at once on one process worker: a sitemap backfill and a forced ingest of the
    local outlet (racing for one story), a URL-list backfill of the demo outlets, maintenance."""
    demo_sources = tmp_path / "demo-sources.toml"
    demo_sources.write_text(demo_sites.sources_toml())
    demo_urls = [u for u in demo_sites.article_urls() if "127.0.0.4" not in u]  # not the aggregator
    urls_file = tmp_path / "urls.txt"
    urls_file.write_text("\n".join(demo_urls) + "\n")
    demo_before = len(demo_sites.requests)
    ids = {
        "backfill": _trigger(prefect_stack, "backfill/backfill", {
            "mode": "sitemap", "sources": ["local"], "since": "2026-11-20", "until": "2026-11-22",
            "sources_file": str(sources_file)}),
        # only the local outlet: the demo backfill below adds the demo outlets' feeds to the
        # database while this run may be leasing, and an ingest polls every active feed it finds
        "scheduled": _trigger(prefect_stack, "ingest/ingest-feeds", {"sources_file": str(sources_file),
                                                                      "sources": ["local"], "force": True}),
        # France 24's URLs carry their day: only 2026-11-20's are fetched; VOA's carry none
        # and go to the 'undated' unit.
        "demo": _trigger(prefect_stack, "backfill/backfill", {
            "mode": "urls", "sources": ["france24", "voa"], "since": "2026-11-20", "until": "2026-11-21",
            "urls_file": str(urls_file), "sources_file": str(demo_sources)}),
        "maintenance": _trigger(prefect_stack, "maintenance/maintenance", {"steps": ["prune"]}),
    }
    runs = _wait(prefect_stack, list(ids.values()))
    assert {k: runs[v]["state"]["type"] for k, v in ids.items()} == dict.fromkeys(ids, "COMPLETED")

    with engine.connect() as conn:
        articles = conn.execute(text(
            "SELECT s.slug, a.title, a.language, a.extraction_status FROM articles a "
            "JOIN sources s ON s.id = a.source_id")).all()
        runs_by_flow = {r.flow_run_id: r for r in conn.execute(text(
            "SELECT id, kind, status, flow_run_id::text AS flow_run_id, artifact_key, artifact_id::text AS artifact_id "
            "FROM ingestion_runs"))}
        windows = conn.execute(text(
            "SELECT r.flow_run_id::text AS flow_run_id, w.unit, w.status FROM backfill_windows w "
            "JOIN ingestion_runs r ON r.id = w.run_id")).all()
    rows = {k: runs_by_flow[v] for k, v in ids.items()}
    assert {k: (r.kind, r.status) for k, r in rows.items()} == {
        "backfill": ("backfill", "completed"), "scheduled": ("scheduled", "completed"),
        "demo": ("backfill", "completed"), "maintenance": ("maintenance", "completed")}
    units = {k: {w.unit: w.status for w in windows if w.flow_run_id == v} for k, v in ids.items()}

    # The local outlet: the story both runs brought (feed and sitemap) is one row; the old
    # story is out of the range and never requested.
    assert sorted(a.title for a in articles if a.slug == "local") == [
        "Ministers meet in Panama", "Strike in Lima", "Vote count in Quito"]
    assert site.hits("/en/world/20261101-old") == 0
    assert units["backfill"] == {"2026-11-20": "done", "2026-11-21": "done"}

    # The demo outlets: 7 France 24 pages of 2026-11-20 and the 14 VOA pages, nothing else.
    fetched = [(slug, path) for slug, _m, path in demo_sites.requests[demo_before:] if path != "/robots.txt"]
    f24_paths = [p for slug, p in fetched if slug == "france24"]
    assert len(f24_paths) == 7 and all("/20261120-" in p for p in f24_paths), f24_paths
    assert len([p for slug, p in fetched if slug == "voa"]) == 14
    demo_rows = [a for a in articles if a.slug in {"france24", "voa"}]
    assert len(demo_rows) == 21 and all(a.extraction_status == "ok" for a in demo_rows)
    assert {a.language for a in demo_rows if a.slug == "france24"} == {"en", "es", "fr"}
    assert units["demo"] == {"2026-11-20": "done", "undated": "done"}

    # Each run published its per-source table, and the run row points at it.
    for kind, flow in (("backfill", "backfill"), ("scheduled", "ingest"), ("demo", "backfill"),
                       ("maintenance", "maintenance")):
        row = rows[kind]
        assert row.artifact_key == f"newsetl-{flow}-run-{row.id}"
        [artifact] = _api(prefect_stack, "POST", "/artifacts/filter",
                          json={"artifacts": {"key": {"any_": [row.artifact_key]}}})
        assert artifact["id"] == row.artifact_id and artifact["type"] == "table"
        assert artifact["flow_run_id"] == ids[kind] and f"ingestion_runs.id = {row.id}" in artifact["description"]
        table = _table(artifact)
        if kind == "maintenance":
            assert table == [{"step": "prune", "status": "ok", "detail": table[0]["detail"]}]
            continue
        by_source = {r["source"]: r for r in table}
        assert set(by_source) == ({"france24", "voa", "total"} if kind == "demo" else {"local", "total"})
        for r in by_source.values():
            assert set(r) >= {"feeds_polled", "new", "updated", "duplicates", "failed"}
        if kind == "scheduled":
            local = by_source["local"]
            assert local["feeds_polled"] == 1 and local["feeds_failed"] == 0 and local["items"] == 2
        elif kind == "backfill":
            assert by_source["local"]["feeds_polled"] == 0 and by_source["local"]["items"] == 2
        else:
            assert by_source["france24"]["new"] == 7 and by_source["voa"]["new"] == 14
    # The backfill and the ingest raced for one story: together they inserted each article once.
    assert _table(_artifact(prefect_stack, rows["backfill"].artifact_key))[-1]["new"] + \
        _table(_artifact(prefect_stack, rows["scheduled"].artifact_key))[-1]["new"] == 3
    progress = _artifact(prefect_stack, f"newsetl-backfill-progress-run-{rows['backfill'].id}")
    assert progress["type"] == "progress" and float(progress["data"]) == 100.0


def test_stack_down_stops_every_process(prefect_stack: stack.StackConfig) -> None:
    state = stack.read_state(prefect_stack)
    assert state is not None
    pids = [p["pid"] for p in state["processes"].values()]
    assert all(psutil.pid_exists(p) for p in pids)
    assert sorted(stack.down(prefect_stack, say=lambda _m: None)) == ["server", "worker"]
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
    assert not stack.api_healthy(prefect_stack.api_url)
    assert stack.read_state(prefect_stack) is None
