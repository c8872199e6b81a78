"""Backfill modes over local fixtures, against real PostgreSQL and a real local HTTP server:
sitemaps (only the range is fetched), a URL file, WARC files (no network at all), and a
backfill killed in the middle of its range that resumes where it stopped."""

from __future__ import annotations

import gzip
import io
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from etl.config import REPO_ROOT, load_settings
from etl.jobs import backfill as bf
from etl.store.backfills import window_lock
from tests.test_ingest_flow import _page
from tests.webserver import TestWeb, static

NEWS_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'


def _sources(tmp_path: Path, web: TestWeb, extra: str = "") -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(f'[[sources]]\nslug = "local"\nname = "Local"\nhomepage = "{web.url("/")}"\n'
                    f"min_request_interval = 0.0\n{extra}")
    return path


def _settings(monkeypatch: pytest.MonkeyPatch, sources: Path):
    monkeypatch.setenv("NEWSETL_SOURCES", str(sources))
    return load_settings()


def _news_url(web: TestWeb, path: str, title: str, pub: str | None = None, lastmod: str | None = None,
              lang: str = "en") -> str:
    news = (f"<news:news><news:publication><news:name>Local</news:name><news:language>{lang}</news:language>"
            f"</news:publication><news:publication_date>{pub}</news:publication_date>"
            f"<news:title>{title}</news:title></news:news>") if pub else ""
    lm = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
    return f"<url><loc>{web.url(path)}</loc>{lm}{news}</url>"


def _pages(web: TestWeb, titles: dict[str, str]) -> None:
    for path, title in titles.items():
        web.route(path, static(_page(title)))


def _rows(engine: Engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        return {r.title: r for r in conn.execute(text(
            "SELECT a.title, a.url, a.language, a.published_at, a.extraction_status, a.body, s.slug "
            "FROM articles a JOIN sources s ON s.id = a.source_id"))}


def _windows(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT unit, status FROM backfill_windows")).all())


@pytest.mark.slow  # three backfill runs over a sitemap index and its pages (~2 s)
def test_sitemap_backfill_fetches_only_the_range(engine: Engine, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with TestWeb() as web:
        web.route("/robots.txt", static("User-agent: *\nDisallow: /search\n\n"
                                        f"Sitemap: {web.url('/sitemap_index.xml')}\n", content_type="text/plain"))
        web.route("/sitemap_index.xml", static(
            f'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{web.url('/sitemaps/news.xml')}</loc><lastmod>2026-11-21T18:00:00Z</lastmod></sitemap>"
            f"<sitemap><loc>{web.url('/sitemaps/2026-11.xml.gz')}</loc><lastmod>2026-11-22</lastmod></sitemap>"
            f"<sitemap><loc>{web.url('/sitemaps/2026-10.xml')}</loc><lastmod>2026-10-31</lastmod></sitemap>"
            "</sitemapindex>", content_type="application/xml"))
        # France 24 style: the day is in the URL, and the news sitemap gives the exact time.
        web.route("/sitemaps/news.xml", static(
            f'<?xml version="1.0"?><urlset {NEWS_NS}>'
            + _news_url(web, "/en/americas/20261120-alpha", "Alpha in Panama", "2026-11-20T19:40:00+00:00")
            + _news_url(web, "/en/europe/20261121-beta", "Beta in Brussels", "2026-11-21T08:15:00Z", lang="fr")
            + _news_url(web, "/en/asia/20261125-gamma", "Gamma later", "2026-11-25T08:00:00Z")
            + "</urlset>", content_type="application/xml"))
        # VOA style: no date in the URL; only <lastmod> says when.
        monthly = (f'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                   + _news_url(web, "/a/delta/7890.html", "", lastmod="2026-11-20T10:00:00Z")
                   + _news_url(web, "/a/epsilon/7891.html", "", lastmod="2026-11-05T10:00:00Z")
                   + _news_url(web, "/a/zeta/7892.html", "")
                   + _news_url(web, "/en/americas/20261120-alpha", "", lastmod="2026-11-20T20:00:00Z")
                   + "</urlset>")
        web.route("/sitemaps/2026-11.xml.gz", static(gzip.compress(monthly.encode()), content_type="application/x-gzip"))
        web.route("/sitemaps/2026-10.xml", static("<urlset/>", content_type="application/xml"))
        _pages(web, {"/en/americas/20261120-alpha": "Alpha in Panama", "/en/europe/20261121-beta": "Beta in Brussels",
                     "/en/asia/20261125-gamma": "Gamma later", "/a/delta/7890.html": "Delta in Caracas",
                     "/a/epsilon/7891.html": "Epsilon earlier", "/a/zeta/7892.html": "Zeta undated"})
        settings = _settings(monkeypatch, _sources(tmp_path, web))
        spec = bf.BackfillSpec.build("sitemap", ["local"], "2026-11-20", "2026-11-22")
        result = bf.run_backfill(engine, settings, spec)

        assert [w.unit for w in result.plan.windows] == ["2026-11-20", "2026-11-21"]
        assert result.plan.complete and not result.plan.errors
        assert result.plan.sitemaps_skipped == 1 and web.hits("/sitemaps/2026-10.xml") == 0
        fetched = {p for _m, p, _h in web.requests}
        assert {"/en/americas/20261120-alpha", "/en/europe/20261121-beta", "/a/delta/7890.html"} <= fetched
        assert not fetched & {"/en/asia/20261125-gamma", "/a/epsilon/7891.html", "/a/zeta/7892.html"}
        assert web.hits("/en/americas/20261120-alpha") == 1  # listed twice, fetched once
        assert result.plan.undated_skipped == 1 and result.plan.out_of_range == 2

        rows = _rows(engine)
        assert set(rows) == {"Alpha in Panama", "Beta in Brussels", "Delta in Caracas"}
        alpha = rows["Alpha in Panama"]
        assert alpha.published_at == datetime(2026, 11, 20, 19, 40, tzinfo=UTC)
        assert alpha.extraction_status == "ok" and "Darién" in alpha.body and alpha.slug == "local"
        assert rows["Beta in Brussels"].language == "fr"  # <news:language> wins over <html lang>
        assert _windows(engine) == {"2026-11-20": "done", "2026-11-21": "done"}
        assert result.total().new == 3 and result.by_source["local"].items == 3

        # Rerun: both windows are done; no page is requested again.
        before = len(web.requests)
        again = bf.run_backfill(engine, settings, spec)
        assert again.status_counts() == {"skipped": 2}
        pages_after = [p for _m, p, _h in web.requests[before:] if not p.startswith(("/robots", "/sitemap"))]
        assert pages_after == []

        # Widening the range runs only the new window, and skips what is stored already.
        wider = bf.run_backfill(engine, settings, bf.BackfillSpec.build("sitemap", ["local"], "2026-11-20", "2026-11-26"))
        assert {w.unit: w.status for w in wider.windows}["2026-11-20"] == "skipped"
        assert web.hits("/en/asia/20261125-gamma") == 1 and web.hits("/en/americas/20261120-alpha") == 1
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM articles")).scalar() == 4


def test_url_file_backfill(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestWeb() as web, TestWeb("127.0.0.5") as other:
        _pages(web, {"/en/a/20261120-one": "One in Quito", "/en/a/20261121-two": "Two in Lima",
                     "/a/three.html": "Three undated"})
        extra = f'\n[[sources]]\nslug = "other"\nname = "Other"\nhomepage = "{other.url("/")}"\n'
        settings = _settings(monkeypatch, _sources(tmp_path, web, extra))
        urls = tmp_path / "urls.txt"
        urls.write_text("\n".join([
            "# exported by hand", "", web.url("/en/a/20261120-one"),
            web.url("/en/a/20261120-one?utm_source=rss#top"),     # the same page: fetched once
            web.url("/en/a/20261121-two"), web.url("/a/three.html"),
            web.url("/en/a/20261121-missing"),                     # 404: recorded as failed
            "ftp://example.org/file", "http://unknown.invalid/x",  # invalid; no such source
        ]) + "\n")
        spec = bf.BackfillSpec.build("urls", [], urls_file=urls)
        result = bf.run_backfill(engine, settings, spec)
        assert {w.unit: w.status for w in result.windows} == {
            "2026-11-20": "done", "2026-11-21": "done", "undated": "done"}
        assert result.plan.invalid == 1 and result.plan.unmatched == 1
        assert web.hits("/en/a/20261120-one") == 1 and other.requests == []
        rows = _rows(engine)
        assert {"One in Quito", "Two in Lima", "Three undated"} <= set(rows)
        with engine.connect() as conn:
            failed = conn.execute(text("SELECT url, extraction_error FROM articles WHERE extraction_status = 'failed'")).one()
        assert failed.url.endswith("/20261121-missing") and "HTTP 404" in failed.extraction_error
        assert result.total().failed == 1 and result.total().new == 4
        with engine.connect() as conn:  # no feed listed these; the runs keep no feed links
            assert conn.execute(text("SELECT count(*) FROM article_feeds")).scalar() == 0

        # A different list (a new job) that repeats a stored URL: it is skipped before fetching.
        urls2 = tmp_path / "urls2.txt"
        urls2.write_text(web.url("/en/a/20261121-two") + "\n")
        again = bf.run_backfill(engine, settings, bf.BackfillSpec.build("urls", ["local"], urls_file=urls2))
        assert again.job_key != result.job_key
        assert web.hits("/en/a/20261121-two") == 1 and again.total().duplicates == 1


def _warc(path: Path, records: list[tuple[str, str, int, bytes]]) -> None:
    """(url, WARC-Date, HTTP status, body) → a gzipped WARC with response + request records."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, when, status, body in records:
            http = StatusAndHeaders(f"{status} {'OK' if status == 200 else 'Not Found'}",
                                    [("Content-Type", "text/html; charset=utf-8"),
                                     ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), http_headers=http,
                warc_headers_dict={"WARC-Date": when}))
            writer.write_record(writer.create_warc_record(
                url, "request", payload=io.BytesIO(b""), warc_headers_dict={"WARC-Date": when},
                http_headers=StatusAndHeaders(f"GET {url} HTTP/1.1", [("Host", "x")], is_http_request=True)))


def test_warc_backfill_touches_no_network(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestWeb() as web:  # the pages "live" here, but the backfill must never ask for them
        settings = _settings(monkeypatch, _sources(tmp_path, web))
        warc1, warc2 = tmp_path / "own.warc.gz", tmp_path / "CC-NEWS-20261121.warc.gz"
        _warc(warc1, [
            (web.url("/en/a/20261120-panama"), "2026-11-20T20:00:00Z", 200, _page("Panama meeting").encode()),
            (web.url("/en/a/20261118-old"), "2026-11-18T20:00:00Z", 200, _page("Old story").encode()),
            (web.url("/en/a/20261120-gone"), "2026-11-20T21:00:00Z", 404, b"not found"),
        ])
        _warc(warc2, [
            ("https://www.elsewhere.example/news/20261121-other", "2026-11-21T01:00:00Z", 200, _page("Not ours").encode()),
            # no date in the URL: the capture date decides the window
            (web.url("/a/77.html"), "2026-11-21T06:30:00Z", 200, _page("Caracas vote").encode()),
        ])
        spec = bf.BackfillSpec.build("warc", ["local"], "2026-11-20", "2026-11-22", warc_files=[tmp_path])
        assert spec.warc_files == (str(warc2.resolve()), str(warc1.resolve()))  # a directory: its WARCs
        result = bf.run_backfill(engine, settings, spec)
        assert web.requests == []
        rows = _rows(engine)
        assert set(rows) == {"Panama meeting", "Caracas vote"}
        assert rows["Panama meeting"].extraction_status == "ok" and "Darién" in rows["Panama meeting"].body
        assert result.plan.unmatched == 1 and result.plan.out_of_range == 1
        assert _windows(engine) == {"2026-11-20": "done", "2026-11-21": "done"}
        again = bf.run_backfill(engine, settings, spec)
        assert again.status_counts() == {"skipped": 2} and web.requests == []


@pytest.mark.slow  # the CLI in a subprocess, killed with -9 mid-backfill, then resumed
def test_killed_backfill_resumes_where_it_stopped(engine: Engine, db_url: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def slow(title: str):
        def route(h):
            release.wait(60)  # holds the second window open until the test has killed the run
            static(_page(title))(h)
        return route

    with TestWeb() as web:
        days = {"20261120": ["a", "b"], "20261121": ["c", "d"], "20261122": ["e"]}
        for day, names in days.items():
            for n in names:
                path = f"/en/x/{day}-{n}"
                web.route(path, slow(f"Story {n}") if day == "20261121" else static(_page(f"Story {n}")))
        sources = _sources(tmp_path, web)
        urls = tmp_path / "urls.txt"
        urls.write_text("".join(web.url(f"/en/x/{d}-{n}") + "\n" for d, ns in days.items() for n in ns))
        env = {**os.environ, "NEWSETL_DATABASE_URL": db_url, "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1",
               "NEWSETL_SOURCES": str(sources), "PYTHONPATH": str(REPO_ROOT),
               "NEWSETL_PAGE_CLAIM_SECONDS": "1"}  # the killed run's page claims expire fast
        proc = subprocess.Popen(
            [sys.executable, "-m", "etl.cli", "backfill", "urls", "--urls-file", str(urls),
             "--since", "2026-11-20", "--until", "2026-11-23"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if _windows(engine).get("2026-11-20") == "done" and web.hits("/en/x/20261121-c") + web.hits("/en/x/20261121-d"):
                    break
                assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
                time.sleep(0.2)
            else:
                pytest.fail("the backfill never reached its second window")
            os.killpg(proc.pid, signal.SIGKILL)  # a real kill, in the middle of 2026-11-21
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            proc.stdout.close()
        release.set()

        assert _windows(engine) == {"2026-11-20": "done"}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM ingestion_runs")).scalar_one() == "running"
            assert set(conn.execute(text("SELECT title FROM articles")).scalars()) == {"Story a", "Story b"}

        monkeypatch.setenv("NEWSETL_PAGE_CLAIM_SECONDS", "1")
        settings = _settings(monkeypatch, sources)
        spec = bf.BackfillSpec.build("urls", [], "2026-11-20", "2026-11-23", urls_file=urls)
        result = bf.run_backfill(engine, settings, spec)
        assert {w.unit: w.status for w in result.windows} == {
            "2026-11-20": "skipped", "2026-11-21": "done", "2026-11-22": "done"}
        assert web.hits("/en/x/20261120-a") == 1 and web.hits("/en/x/20261120-b") == 1
        with engine.connect() as conn:
            titles = conn.execute(text("SELECT title FROM articles")).scalars().all()
        assert sorted(titles) == ["Story a", "Story b", "Story c", "Story d", "Story e"]


def test_a_window_held_by_another_run_is_left_alone(engine: Engine, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with TestWeb() as web:
        _pages(web, {"/en/x/20261120-a": "Story a"})
        settings = _settings(monkeypatch, _sources(tmp_path, web))
        urls = tmp_path / "urls.txt"
        urls.write_text(web.url("/en/x/20261120-a") + "\n")
        spec = bf.BackfillSpec.build("urls", [], urls_file=urls)
        sources = bf.resolve_sources(engine, settings, [])
        plan = bf.plan_urls(spec, sources)
        with window_lock(engine, spec.job_key, "2026-11-20") as held:
            assert held
            res = bf.run_window(engine, None, settings, spec, plan.windows[0], sources, None)
            assert res.status == "busy" and web.requests == []
        assert bf.run_backfill(engine, settings, spec).status_counts() == {"done": 1}


def test_windows_and_parameters() -> None:
    ws = bf.make_windows(date(2026, 11, 20), date(2026, 11, 27), 3)
    # aligned on a fixed 3-day grid from 1970-01-01 (2026-11-21 is on it), clipped to the range
    assert [w.unit for w in ws] == ["2026-11-20", "2026-11-21..2026-11-24", "2026-11-24..2026-11-27"]
    assert (ws[0].start, ws[-1].end) == (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))
    assert [w.unit for w in bf.make_windows(date(2026, 11, 20), date(2026, 11, 22), 1)] == ["2026-11-20", "2026-11-21"]
    with pytest.raises(bf.BackfillError, match="since"):
        bf.BackfillSpec.build("sitemap")
    with pytest.raises(bf.BackfillError, match="mode"):
        bf.BackfillSpec.build("rss", since="2026-11-20")
    with pytest.raises(bf.BackfillError, match="after"):
        bf.BackfillSpec.build("sitemap", since="2026-11-20", until="2026-11-20")
    with pytest.raises(bf.BackfillError, match="urls_file"):
        bf.BackfillSpec.build("urls")
    with pytest.raises(bf.BackfillError, match="not found"):
        bf.BackfillSpec.build("warc", warc_files=["/nonexistent.warc.gz"])
    spec = bf.BackfillSpec.build("sitemap", ["b", "a"], "2026-11-20", today=date(2026, 11, 23))
    assert spec.until == date(2026, 11, 24) and spec.sources == ("a", "b")
    # the range is not part of the job: a wider range reuses the windows already done
    assert spec.job_key == bf.BackfillSpec.build("sitemap", ["a", "b"], "2026-11-01", "2026-11-05").job_key


def test_backfill_flow_records_bad_parameters_and_links_its_report(
        engine: Engine, prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.backfill import backfill

    with TestWeb() as web:
        sources = _sources(tmp_path, web)
        with pytest.raises(bf.BackfillError, match="urls_file"):
            backfill(mode="urls", sources_file=str(sources))
        warc = tmp_path / "a.warc.gz"
        _warc(warc, [(web.url("/en/a/20261120-panama"), "2026-11-20T20:00:00Z", 200, _page("Panama meeting").encode())])
        summary = backfill(mode="warc", warc_files=[str(warc)], sources_file=str(sources))
        assert summary["articles_new"] == 1 and summary["windows_done"] == 1 and web.requests == []
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT id, status, error, artifact_key FROM ingestion_runs ORDER BY id")).all()
    assert runs[0].status == "failed" and "urls_file" in runs[0].error
    assert runs[1].status == "completed" and runs[1].artifact_key == f"newsetl-backfill-run-{runs[1].id}"


def test_reextract_mode_calls_the_stage_per_window(engine: Engine, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each window of a reextract job re-runs extraction over its own days (no network); a
    stand-in for etl.jobs.reextract.reextract records the calls and reports counts."""
    from etl.jobs.backfill import run as backfill_run
    from etl.jobs.reextract import ReextractResult

    calls = []

    def reextract(engine, settings, since=None, until=None, sources=()):
        calls.append((since, until, sources))
        return ReextractResult(selected=3, updated=2, unchanged=1, failed=0, missing=0)

    monkeypatch.setattr(backfill_run, "reextract", reextract)
    with TestWeb() as web:
        settings = _settings(monkeypatch, _sources(tmp_path, web))
        spec = bf.BackfillSpec.build("reextract", ["local"], "2026-11-20", "2026-11-22")
        result = bf.run_backfill(engine, settings, spec)
        assert calls == [(datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC), ("local",)),
                         (datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC), ("local",))]
        total = result.total()
        assert (total.items, total.updated, total.duplicates) == (6, 4, 2) and web.requests == []
        assert bf.run_backfill(engine, settings, spec).status_counts() == {"skipped": 2} and len(calls) == 2
