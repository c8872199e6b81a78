"""End to end: the real Prefect ``ingest`` flow against local sites and real PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from flows.ingest import ingest
from tests.test_extract import PARAS
from tests.webserver import TestWeb, respond, static


def _rss(web: TestWeb, items: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<item><title>{title}</title><link>{web.url(path)}</link><guid>{path}</guid>"
        f"<pubDate>Fri, 20 Nov 2026 1{i}:00:00 GMT</pubDate><description>Summary of {title}</description></item>"
        for i, (path, title) in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'


def _page(title: str) -> str:
    return (f"<html lang='en'><head><title>{title}</title></head><body><nav>Home World</nav><article>"
            f"<h1>{title}</h1>" + "".join(f"<p>{p} ({title})</p>" for p in PARAS) + "</article></body></html>")


def _write_sources(tmp_path: Path, feeds: dict[str, str]) -> str:
    lines = ['[[sources]]\nslug = "local"\nname = "Local"\nmin_request_interval = 0.0']
    for name, url in feeds.items():
        lines.append(f'  [[sources.feeds]]\n  url = "{url}"\n  language = "en"\n  section = "{name}"')
    path = tmp_path / "sources.toml"
    path.write_text("\n".join(lines))
    return str(path)


def test_bad_feeds_are_recorded_and_the_rest_loads(engine: Engine, prefect_harness: None, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSETL_READ_TIMEOUT", "1")

    def slow(h):
        time.sleep(3)
        respond(h, 200, b"<rss/>")

    with TestWeb() as web:
        web.route("/good.xml", static(_rss(web, [("/a1", "Alpha"), ("/a2", "Beta"), ("/gone", "Gamma")]),
                                      content_type="application/rss+xml"))
        web.route("/a1", static(_page("Alpha")))
        web.route("/a2", static(_page("Beta")))
        web.route("/slow.xml", slow)
        web.route("/html.xml", static("<html><body>This is not a feed</body></html>"))
        sources = _write_sources(tmp_path, {
            "good": web.url("/good.xml"), "missing": web.url("/missing.xml"),
            "slow": web.url("/slow.xml"), "html": web.url("/html.xml"),
        })
        summary = ingest(sources_file=sources)
        assert summary["feeds_polled"] == 4 and summary["feeds_failed"] == 3
        assert summary["articles_new"] == 3
        with engine.connect() as conn:
            polls = dict(conn.execute(text(
                "SELECT f.section, p.error_kind FROM feed_polls p JOIN feeds f ON f.id = p.feed_id")).all())
            assert polls == {"good": None, "missing": "http", "slow": "timeout", "html": "parse"}
            errors = dict(conn.execute(text("SELECT section, last_error FROM feeds")).all())
            assert "HTTP 404" in errors["missing"] and errors["good"] is None
            rows = {r.title: r for r in conn.execute(text(
                "SELECT title, extraction_status, extraction_error, body, published_at FROM articles"))}
            assert rows["Alpha"].extraction_status == "ok" and "Darién" in rows["Alpha"].body
            # the page that 404s keeps the feed's title and summary and says why
            assert rows["Gamma"].extraction_status == "feed_summary"
            assert "HTTP 404" in rows["Gamma"].extraction_error
            assert rows["Gamma"].body == "Summary of Gamma"
            run = conn.execute(text("SELECT status, feeds_polled, feeds_failed, articles_new FROM ingestion_runs")).one()
            assert tuple(run) == ("completed", 4, 3, 3)

        # Rerun: nothing is due (schedule) → nothing polled; forced → polled, still no duplicates.
        again = ingest(sources_file=sources)
        assert again["feeds_polled"] == 0
        forced = ingest(sources_file=sources, force=True)
        assert forced["feeds_polled"] == 4 and forced["articles_new"] == 0
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM articles")).scalar() == 3
        assert web.hits("/a1") == 1  # known entries are never fetched again


def test_demo_sites_end_to_end_and_rerun_adds_nothing(engine: Engine, prefect_harness: None, demo_sites,
                                                      tmp_path: Path) -> None:
    sources = tmp_path / "demo.toml"
    sources.write_text(demo_sites.sources_toml(min_request_interval=0.0))
    summary = ingest(sources_file=str(sources), kind="demo")
    assert summary["feeds_failed"] == 0 and summary["feeds_polled"] == len(demo_sites.feed_urls())
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT a.title, a.body, a.published_at, a.language, a.extraction_status, a.authors, s.slug "
            "FROM articles a JOIN sources s ON s.id = a.source_id")).all()
    assert len(rows) >= 30 and summary["articles_new"] == len(rows)
    assert len(rows) == len(demo_sites.article_urls())
    for r in rows:
        assert r.title and r.published_at and r.language in {"en", "es", "fr"}, r
        assert r.extraction_status == "ok" and len(r.body.split()) > 150, r.title
        assert "cookie" not in r.body.lower() and "newsletter" not in r.body.lower(), r.title
    assert {r.slug for r in rows} == {"france24", "voa", "hemiwire"}
    panama = [r for r in rows if "Darién" in r.body and "120" in r.body]
    assert {(r.slug, r.language) for r in panama} >= {("france24", "en"), ("france24", "es"), ("france24", "fr"),
                                                      ("voa", "en"), ("voa", "es"), ("hemiwire", "en")}

    again = ingest(sources_file=str(sources), force=True, kind="demo")
    assert again["articles_new"] == 0 and again["feeds_failed"] == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM articles")).scalar() == len(rows)


def test_task_runs_per_flow_run_stay_bounded(engine: Engine, prefect_harness: None, demo_sites,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One article per batch would be one task run per article (and one more for its stories);
    the cycle caps the batches per run (here at 5 instead of 64, so that the demo's ~40 articles
    cross it) and story assignment never runs more units than there are batches."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    import etl.jobs.cycle

    monkeypatch.setattr(etl.jobs.cycle, "MAX_BATCHES_PER_RUN", 5)
    monkeypatch.setenv("NEWSETL_BATCH_SIZE", "1")
    sources = tmp_path / "demo.toml"
    sources.write_text(demo_sites.sources_toml(min_request_interval=0.0))
    summary = ingest(sources_file=str(sources), kind="demo")
    articles = len(demo_sites.article_urls())
    assert summary["articles_new"] == articles > 30
    with engine.connect() as conn:
        flow_run_id = conn.execute(text("SELECT flow_run_id FROM ingestion_runs WHERE id = :id"),
                                   {"id": summary["run_id"]}).scalar_one()
        unassigned = conn.execute(text("SELECT count(*) FROM articles a WHERE NOT EXISTS "
                                       "(SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id)")).scalar_one()
    assert unassigned == 0
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    names = [r.name.rsplit("-", 1)[0] for r in runs]
    sources_count = 3  # france24, voa, hemiwire: a batch never mixes sources
    assert 1 <= names.count("process-batch") <= max(5, sources_count)
    assert 1 <= names.count("assign-stories") <= names.count("process-batch")
    assert len(runs) == names.count("process-batch") + names.count("assign-stories") + names.count(
        "poll-due-chunk") + names.count("sync-sources")
    assert len(runs) < articles  # unbounded, it would be 2 per article plus the polls
