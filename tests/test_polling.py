"""Polling against real local servers that misbehave on purpose, with real PostgreSQL.

Every test drives the real poll path (lease → fetch → parse when changed → new-entry lookup →
record) through ``etl.jobs.polling``; the Prefect flow only wraps it in tasks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from sqlalchemy import Engine, text

from etl import models, store
from etl.config import load_settings, parse_sources
from etl.fetch.http import Fetcher
from etl.jobs import batch, polling
from etl.parse.feeds import parse_feed
from tests.webserver import TestWeb, reset_connection, respond, static

RSS_TYPE = "application/rss+xml; charset=utf-8"


def rss(items: list[tuple[str, str]], extra: str = "") -> bytes:
    """items: (guid, link); dated one hour apart, newest first."""
    body = "".join(
        f"<item><title>Title {guid}</title><link>{link}</link><guid>{guid}</guid>"
        f"<pubDate>{format_datetime(datetime(2026, 11, 20, 12, tzinfo=UTC) - timedelta(hours=i), usegmt=True)}</pubDate>"
        f"<description>Summary {guid}</description></item>"
        for i, (guid, link) in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{extra}{body}</channel></rss>'.encode()


def registry(feeds: dict[str, list[str]], interval: float = 0.0) -> str:
    out = []
    for slug, urls in feeds.items():
        out.append(f'[[sources]]\nslug = "{slug}"\nmin_request_interval = {interval}')
        out.extend(f'  [[sources.feeds]]\n  url = "{u}"\n  language = "en"' for u in urls)
    return "\n".join(out)


@pytest.fixture
def settings():
    return replace(load_settings(), read_timeout=1.0, connect_timeout=1.0, total_timeout=5.0,
                   allow_private_networks=True)


def sync(engine: Engine, feeds: dict[str, list[str]]) -> None:
    store.sync_sources(engine, parse_sources(registry(feeds)))


def poll(engine: Engine, settings, load: bool = True, **kw) -> list[models.PollResult]:
    """One polling cycle; with ``load`` the held-back validators are committed as the flow does
    once the new entries are loaded (these tests are about feeds, not pages)."""
    with Fetcher(settings) as f:
        results = polling.poll_due(engine, f, settings, None, **kw)
    if load:
        store.commit_validators(engine, [r.pending_validators for r in results if r.pending_validators])
    return results


def make_due(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE feeds SET next_poll_at = now()"))


def feed_row(engine: Engine, url_like: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT * FROM feeds WHERE registry_url LIKE :u"),
                                 {"u": f"%{url_like}"}).mappings().one())


def polls_of(engine: Engine, url_like: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT p.* FROM feed_polls p JOIN feeds f ON f.id = p.feed_id "
            "WHERE f.registry_url LIKE :u ORDER BY p.id"), {"u": f"%{url_like}"}).mappings()]


# -- conditional GET ---------------------------------------------------------------------------

def test_304_and_changing_etags(engine: Engine, settings) -> None:
    state = {"etag": '"v1"', "body": rss([("g1", "https://ex.com/1"), ("g2", "https://ex.com/2")])}

    def feed(h):
        if h.headers.get("If-None-Match") == state["etag"]:
            respond(h, 304, b"", {"ETag": state["etag"]})
        else:
            respond(h, 200, state["body"], {"Content-Type": RSS_TYPE, "ETag": state["etag"]})

    with TestWeb() as web:
        web.route("/feed", feed)
        sync(engine, {"s": [web.url("/feed")]})
        first = poll(engine, settings)
        assert [r.outcome.entries_new for r in first] == [2]
        assert feed_row(engine, "/feed")["etag"] == '"v1"'

        make_due(engine)
        second = poll(engine, settings)
        assert second[0].outcome.http_status == 304 and second[0].outcome.entries_seen == 0
        assert web.requests[1][2]["if-none-match"] == '"v1"'

        state.update(etag='"v2"', body=rss([("g3", "https://ex.com/3"), ("g1", "https://ex.com/1"),
                                            ("g2", "https://ex.com/2")]))
        make_due(engine)
        third = poll(engine, settings)
        assert third[0].outcome.http_status == 200 and third[0].outcome.entries_seen == 3
        row = feed_row(engine, "/feed")
        assert row["etag"] == '"v2"' and row["consecutive_failures"] == 0
        assert [p["http_status"] for p in polls_of(engine, "/feed")] == [200, 304, 200]
        assert all(p["duration_ms"] is not None and p["bytes"] is not None for p in polls_of(engine, "/feed"))


def test_last_modified_only(engine: Engine, settings) -> None:
    stamp = "Fri, 20 Nov 2026 10:00:00 GMT"

    def feed(h):
        if h.headers.get("If-Modified-Since") == stamp:
            respond(h, 304)
        else:
            respond(h, 200, rss([("g1", "https://ex.com/1")]), {"Content-Type": RSS_TYPE, "Last-Modified": stamp})

    with TestWeb() as web:
        web.route("/lm", feed)
        sync(engine, {"s": [web.url("/lm")]})
        poll(engine, settings)
        make_due(engine)
        again = poll(engine, settings)
        assert again[0].outcome.http_status == 304
        assert "if-none-match" not in web.requests[1][2]
        row = feed_row(engine, "/lm")
        assert row["last_modified"] == stamp and row["etag"] is None


def test_unchanged_body_not_parsed_but_newest_validators_saved(engine: Engine, settings) -> None:
    """A server that ignores validators and rotates its ETag: the body hash stops the parse,
    and the new ETag is stored anyway (feedbin #726)."""
    n = {"i": 0}
    body = rss([("g1", "https://ex.com/1")])

    def feed(h):
        n["i"] += 1
        respond(h, 200, body, {"Content-Type": RSS_TYPE, "ETag": f'"e{n["i"]}"'})

    with TestWeb() as web:
        web.route("/same", feed)
        sync(engine, {"s": [web.url("/same")]})
        assert poll(engine, settings)[0].outcome.entries_seen == 1
        make_due(engine)
        second = poll(engine, settings)[0].outcome
        assert second.http_status == 200 and second.entries_seen == 0 and not second.failed
        assert feed_row(engine, "/same")["etag"] == '"e2"'


# -- failures ----------------------------------------------------------------------------------

def test_429_retry_after_parks_only_that_host(engine: Engine, settings) -> None:
    with TestWeb("127.0.0.1") as one, TestWeb("127.0.0.2") as two:
        one.route("/limited", static(b"slow down", 429, headers={"Retry-After": "120"}))
        one.route("/sibling", static(rss([("s1", "https://ex.com/s1")]), content_type=RSS_TYPE))
        two.route("/other", static(rss([("o1", "https://ex.com/o1")]), content_type=RSS_TYPE))
        sync(engine, {"a": [one.url("/limited")], "b": [one.url("/sibling"), two.url("/other")]})
        before = datetime.now(UTC)
        first = poll(engine, settings, slugs=["a"])
        assert first[0].outcome.http_status == 429 and "Retry-After: 120" in first[0].outcome.error
        with engine.connect() as conn:
            parked = conn.execute(text("SELECT host, until FROM host_backoff")).one()
        assert parked.host == "127.0.0.1"
        assert before + timedelta(seconds=120) <= parked.until <= datetime.now(UTC) + timedelta(seconds=133)
        limited = feed_row(engine, "/limited")
        assert limited["active"] and limited["consecutive_failures"] == 1
        assert limited["next_poll_at"] >= parked.until - timedelta(seconds=1)

        # A new run (new Fetcher: the back-off comes from PostgreSQL) skips the sibling on the
        # parked host without a request or a failure, and polls the other host normally.
        results = poll(engine, settings)
        assert one.hits("/sibling") == 0 and two.hits("/other") == 1
        assert {r.outcome.url.rsplit("/", 1)[1]: r.outcome.skipped for r in results} == {"other": False}
        sibling = feed_row(engine, "/sibling")
        assert sibling["consecutive_failures"] == 0 and sibling["last_polled_at"] is None
        # --force ignores the schedule, not the host's Retry-After
        poll(engine, settings, force=True)
        assert one.hits("/sibling") == 0 and one.hits("/limited") == 1


def test_retry_after_http_date_and_cap(engine: Engine, settings) -> None:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    with TestWeb("127.0.0.1") as one, TestWeb("127.0.0.3") as three:
        one.route("/busy", static(b"", 503, headers={"Retry-After": format_datetime(later, usegmt=True)}))
        three.route("/far", static(b"", 429, headers={"Retry-After": str(30 * 86400)}))
        sync(engine, {"s": [one.url("/busy"), three.url("/far")]})
        poll(engine, settings)
        with engine.connect() as conn:
            until = dict(conn.execute(text("SELECT host, until FROM host_backoff")).all())
        assert later <= until["127.0.0.1"] <= later + timedelta(seconds=6 * 60 + 5)
        now = datetime.now(UTC)
        assert now + timedelta(hours=24) - timedelta(seconds=5) <= until["127.0.0.3"] <= now + timedelta(hours=26.5)


def test_500_backs_off_growing_and_never_deactivates(engine: Engine, settings) -> None:
    state = {"status": 500}

    def feed(h):
        if state["status"] == 500:
            respond(h, 500, b"oops")
        else:
            respond(h, 200, rss([("g1", "https://ex.com/1")]), {"Content-Type": RSS_TYPE})

    with TestWeb() as web:
        web.route("/flaky", feed)
        sync(engine, {"s": [web.url("/flaky")]})
        waits, since = [], None
        for _ in range(4):
            poll(engine, settings)
            row = feed_row(engine, "/flaky")
            waits.append((row["next_poll_at"] - row["last_polled_at"]).total_seconds())
            since = since or row["failing_since"]
            assert row["failing_since"] == since and row["active"]
            make_due(engine)
        assert feed_row(engine, "/flaky")["consecutive_failures"] == 4
        assert waits[1] > waits[0] * 1.5 and waits[3] > waits[2] * 1.5  # doubling (±10 % jitter)
        assert "HTTP 500" in feed_row(engine, "/flaky")["last_error"]
        state["status"] = 200
        poll(engine, settings)
        row = feed_row(engine, "/flaky")
        assert row["consecutive_failures"] == 0 and row["failing_since"] is None and row["last_error"] is None


def test_transport_errors_recorded_by_kind(engine: Engine, settings) -> None:
    def slow(h):
        time.sleep(2.5)
        respond(h, 200, b"late")

    def truncated(h):
        h.send_response(200)
        h.send_header("Content-Type", RSS_TYPE)
        h.send_header("Content-Length", "5000")
        h.end_headers()
        h.wfile.write(rss([("g1", "https://ex.com/1")])[:300])
        h.wfile.flush()
        h.close_connection = True

    with TestWeb() as web:
        web.route("/slow", slow)
        web.route("/reset", reset_connection)
        web.route("/truncated", truncated)
        web.route("/invalid", static(b"<rss><channel><title>x</title><item><title>a</ti", content_type=RSS_TYPE))
        web.route("/recoverable", static(b'<rss version="2.0"><channel><title>x</title><item><title>a & b</title>'
                                         b"<link>https://ex.com/a</link></item></channel>", content_type=RSS_TYPE))
        urls = [web.url(p) for p in ("/slow", "/reset", "/truncated", "/invalid", "/recoverable")]
        urls += ["http://127.0.0.1:1/refused", "http://no-such-host.invalid/feed"]
        sync(engine, {"s": urls})
        poll(engine, settings)
        with engine.connect() as conn:
            kinds = {r.url.rsplit("/", 1)[1]: (r.error_kind, r.error) for r in conn.execute(text(
                "SELECT url, error_kind, error FROM feed_polls"))}
        assert kinds["slow"][0] == "timeout" and "read timeout" in kinds["slow"][1]
        assert kinds["reset"][0] == "reset"
        assert kinds["truncated"][0] == "truncated"
        assert kinds["refused"][0] == "connect"
        assert kinds["feed"][0] == "dns"
        # broken XML without a single entry is a parse error; nothing crashed
        assert kinds["invalid"][0] == "parse"
        assert kinds["recoverable"] == (None, None)  # broken XML whose entries can be read
        with engine.connect() as conn:
            assert conn.execute(text("SELECT bool_and(active) FROM feeds")).scalar()


def test_50mb_body_stopped_at_the_feed_cap(engine: Engine, settings) -> None:
    def endless(h):
        h.send_response(200)
        h.send_header("Content-Type", RSS_TYPE)
        h.send_header("Connection", "close")  # no Content-Length: only streaming can stop it
        h.end_headers()
        chunk = b"<!-- padding -->" * 4096
        try:
            for _ in range(50 * 1024 * 1024 // len(chunk)):
                h.wfile.write(chunk)
        except OSError:
            pass
        h.close_connection = True

    with TestWeb() as web:
        web.route("/huge", endless)
        sync(engine, {"s": [web.url("/huge")]})
        out = poll(engine, settings)[0].outcome
        assert out.error_kind == "too_large" and str(settings.max_feed_bytes) in out.error


def test_301_moves_the_feed_302_does_not(engine: Engine, settings) -> None:
    with TestWeb() as web:
        web.route("/old", static(b"", 301, headers={"Location": "/new"}))
        web.route("/new", static(rss([("g1", "https://ex.com/1")]), content_type=RSS_TYPE))
        web.route("/temp", static(b"", 302, headers={"Location": "/new2"}))
        web.route("/new2", static(rss([("g2", "https://ex.com/2")]), content_type=RSS_TYPE))
        web.route("/perm308", static(b"", 308, headers={"Location": "/temp"}))  # 308 then 302
        reg = {"s": [web.url("/old"), web.url("/temp"), web.url("/perm308")]}
        sync(engine, reg)
        poll(engine, settings)
        assert feed_row(engine, "/old")["url"] == web.url("/new")
        assert feed_row(engine, "/temp")["url"] == web.url("/temp")
        assert feed_row(engine, "/perm308")["url"] == web.url("/perm308")  # a temporary hop in the chain
        # syncing the same file again neither re-creates nor deactivates the moved feed
        sync(engine, reg)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM feeds WHERE active")).scalar() == 3
        make_due(engine)
        poll(engine, settings)
        assert web.hits("/old") == 1 and web.hits("/new") == 2
        # the file now lists the new URL: the same row is adopted, history kept
        sync(engine, {"s": [web.url("/new"), web.url("/temp"), web.url("/perm308")]})
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT url, registry_url, active FROM feeds WHERE url LIKE '%/new'")).all()
        assert rows == [(web.url("/new"), web.url("/new"), True)]
        assert len(polls_of(engine, "/new")) == 2


def test_410_deactivates_with_a_reason_and_stays_off(engine: Engine, settings) -> None:
    with TestWeb() as web:
        web.route("/gone", static(b"", 410))
        sync(engine, {"s": [web.url("/gone")]})
        poll(engine, settings)
        row = feed_row(engine, "/gone")
        assert not row["active"] and "410" in row["deactivated_reason"]
        sync(engine, {"s": [web.url("/gone")]})
        assert not feed_row(engine, "/gone")["active"]
        assert poll(engine, settings, force=True) == []


def test_xml_bomb_feeds_refused(engine: Engine, settings) -> None:
    laughs = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "' + b"A" * 10_000 + b'">]>'
              b'<rss version="2.0"><channel><title>t</title><item><title>x</title>'
              b'<link>https://ex.com/a</link><description>' + b"&a;" * 10_000 + b"</description></item></channel></rss>")
    xxe = (b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           b'<rss version="2.0"><channel><title>t</title><item><title>&x;</title>'
           b'<link>https://ex.com/b</link></item></channel></rss>')
    with TestWeb() as web:
        web.route("/laughs", static(laughs, content_type=RSS_TYPE))
        web.route("/xxe", static(xxe, content_type=RSS_TYPE))
        sync(engine, {"s": [web.url("/laughs"), web.url("/xxe")]})
        results = poll(engine, settings)
        assert {r.outcome.error_kind for r in results} == {"parse"}
        assert all("entities" in r.outcome.error for r in results)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM article_feeds")).scalar() == 0


def test_entry_cap_per_poll(engine: Engine, settings) -> None:
    items = [(f"g{i}", f"https://ex.com/{i}") for i in range(30)]
    with TestWeb() as web:
        web.route("/many", static(rss(items), content_type=RSS_TYPE))
        sync(engine, {"s": [web.url("/many")]})
        out = poll(engine, replace(settings, max_entries_per_poll=10))[0].outcome
        assert out.entries_seen == 10 and out.entries_new == 10


def test_schedule_follows_the_feeds_rhythm_and_hints(engine: Engine, settings) -> None:
    fresh = [(f"g{i}", f"https://ex.com/{i}") for i in range(10)]

    def hourly_now(extra: str = ""):
        def route(h):
            now = datetime.now(UTC)
            body = "".join(f"<item><title>{g}</title><link>{u}</link><guid>{g}</guid>"
                           f"<pubDate>{format_datetime(now - timedelta(hours=i), usegmt=True)}</pubDate></item>"
                           for i, (g, u) in enumerate(fresh))
            respond(h, 200, f'<rss version="2.0"><channel><title>t</title>{extra}{body}</channel></rss>'.encode(),
                    {"Content-Type": RSS_TYPE})
        return route

    with TestWeb() as web:
        web.route("/hourly", hourly_now())
        web.route("/ttl", hourly_now("<ttl>180</ttl>"))
        web.route("/maxage", static(rss(fresh), content_type=RSS_TYPE, headers={"Cache-Control": "max-age=7200"}))
        sync(engine, {"s": [web.url("/hourly"), web.url("/ttl"), web.url("/maxage")]})
        poll(engine, settings)

        def wait(name: str) -> float:
            row = feed_row(engine, name)
            return (row["next_poll_at"] - row["last_polled_at"]).total_seconds()

        assert 1800 * 0.89 <= wait("/hourly") <= 1800 * 1.11       # half the hourly gap
        assert feed_row(engine, "/hourly")["entry_interval"] == pytest.approx(3600, rel=0.01)
        assert 3 * 3600 * 0.89 <= wait("/ttl") <= 3 * 3600 * 1.11  # <ttl>180</ttl>
        # /maxage's entries are days old: silence dominates, but never under max-age
        assert wait("/maxage") >= 7200 * 0.89
        assert feed_row(engine, "/ttl")["feed_ttl"] == 10800


# -- article links from feeds ------------------------------------------------------------------

def test_article_links_to_private_addresses_are_refused(engine: Engine, settings) -> None:
    """The feed is served from loopback (allowed for this one call); its items point at
    loopback, a private range, the metadata address and file://, checked with the switch off."""
    strict = replace(settings, allow_private_networks=False)
    with TestWeb() as web:
        secret = web.route("/secret", static("internal admin page"))
        links = [secret, "http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"]
        feed_url = web.route("/feed", static(rss([(f"g{i}", u) for i, u in enumerate(links)]), content_type=RSS_TYPE))
        sync(engine, {"s": [feed_url]})
        feed = store.due_feeds(engine)[0]
        with Fetcher(strict) as fetcher:
            assert fetcher.fetch(feed_url, max_bytes=10**6, min_interval=0).error_kind == "blocked"
            res = fetcher.fetch(feed_url, max_bytes=10**6, min_interval=0, allow_private=True)
            entries = parse_feed(res.content, res.headers.get("content-type"), res.final_url).entries
            assert len(entries) == 4
            items = [models.WorkItem(feed.id, feed.source_id, feed.slug, "en", 0.0, e) for e in entries]
            out = batch.process_batch(engine, fetcher, strict, items)
        assert out.failed == 4 and web.hits("/secret") == 0 and web.hits("/robots.txt") == 0
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT url, extraction_status, extraction_error, body FROM articles")).all()
        assert len(rows) == 4
        for r in rows:
            assert r.extraction_status == "failed" and r.body is None
            assert r.extraction_error.startswith("blocked: ")
        errors = " ".join(r.extraction_error for r in rows)
        assert "non-public address 10.0.0.1" in errors and "169.254.169.254" in errors and "'file'" in errors


def test_robots_txt_respected_for_pages_and_fetched_once(engine: Engine, settings) -> None:
    from tests.test_extract import PARAS

    page = "<html><body><article><h1>T</h1>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</article></body></html>"
    with TestWeb() as web:
        web.route("/robots.txt", static("User-agent: *\nDisallow: /private/\n", content_type="text/plain"))
        web.route("/private/a", static(page))
        web.route("/public/b", static(page))
        web.route("/public/c", static(page))
        feed_url = web.route("/feed", static(rss([("a", web.url("/private/a")), ("b", web.url("/public/b")),
                                                   ("c", web.url("/public/c"))]), content_type=RSS_TYPE))
        sync(engine, {"s": [feed_url]})
        with Fetcher(settings) as fetcher:
            items = polling.poll_due(engine, fetcher, settings, None)[0].items
            for item in items:  # one batch per item: robots.txt still fetched once per host
                batch.process_batch(engine, fetcher, settings, [item])
        assert web.hits("/private/a") == 0 and web.hits("/public/b") == 1 and web.hits("/robots.txt") == 1
        with engine.connect() as conn:
            rows = {g.rsplit("/", 1)[-1]: v for g, v in conn.execute(text(
                "SELECT guid, extraction_status || ' ' || coalesce(extraction_error, '') FROM articles"))}
        assert rows["a"].startswith("failed robots: robots.txt disallows"), rows
        assert rows["b"].startswith("ok")


# -- many workers ------------------------------------------------------------------------------

@pytest.mark.slow  # two ingests racing in threads over slow feeds (~2.5 s)
def test_two_concurrent_ingests_never_poll_a_feed_twice(engine: Engine, settings) -> None:
    from tests.test_extract import PARAS

    page = "<html><body><article>" + "".join(f"<p>{p}</p>" for p in PARAS) + "</article></body></html>"
    n_feeds = 24

    def slow_feed(i: int):
        def route(h):
            time.sleep(0.05)  # keeps both runs busy at the same time
            # every feed shares articles with others: both runs may try to load the same URL
            items = [(f"f{i}-{k}", web.url(f"/art/{(i + k) % 10}")) for k in range(3)]
            respond(h, 200, rss(items), {"Content-Type": RSS_TYPE})
        return route

    with TestWeb() as web:
        for i in range(n_feeds):
            web.route(f"/feed{i}", slow_feed(i))
        for k in range(10):
            # distinct bodies: identical text under two URLs is one article (exact duplicate)
            web.route(f"/art/{k}", static(page.replace("</article>", f"<p>Closing note {k}.</p></article>")))
        sync(engine, {"s": [web.url(f"/feed{i}") for i in range(n_feeds)]})
        small = replace(settings, poll_chunk_size=3, fetch_concurrency=3)
        polled: dict[str, int] = {}
        errors: list[BaseException] = []

        def ingest_run(name: str) -> None:
            try:
                with Fetcher(small) as fetcher:
                    results = polling.poll_due(engine, fetcher, small, None, worker=name)
                    polled[name] = len(results)
                    items = [it for r in results for it in r.items]
                    for chunk in batch.make_batches(items, 5):
                        batch.process_batch(engine, fetcher, small, chunk)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        runs = [threading.Thread(target=ingest_run, args=(f"worker-{w}",)) for w in range(2)]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        assert not errors
        assert all(web.hits(f"/feed{i}") == 1 for i in range(n_feeds))
        assert sum(polled.values()) == n_feeds and all(polled.values()), polled  # both did work
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(DISTINCT feed_id), count(*) FROM feed_polls")).one() == (n_feeds, n_feeds)
            assert conn.execute(text("SELECT count(*), count(DISTINCT canonical_url) FROM articles")).one() == (10, 10)
            assert conn.execute(text("SELECT count(*) FROM article_feeds")).scalar() == 3 * n_feeds
            assert conn.execute(text("SELECT count(*) FROM feeds WHERE leased_until IS NOT NULL")).scalar() == 0


def test_a_crashed_workers_lease_expires(engine: Engine, settings) -> None:
    sync(engine, {"s": ["https://ex.com/a.xml", "https://ex.com/b.xml"]})
    started = store.db_now(engine)
    taken = store.lease_feeds(engine, worker="crashed", limit=10, lease_seconds=600, run_started=started)
    assert len(taken) == 2
    assert store.lease_feeds(engine, worker="other", limit=10, lease_seconds=600,
                             run_started=store.db_now(engine), force=True) == []
    with engine.begin() as conn:  # time passes: the lease runs out
        conn.execute(text("UPDATE feeds SET leased_until = now() - interval '1 second'"))
    again = store.lease_feeds(engine, worker="other", limit=10, lease_seconds=600, run_started=store.db_now(engine))
    assert sorted(f.id for f in again) == sorted(f.id for f in taken)
    with engine.connect() as conn:
        assert set(conn.execute(text("SELECT leased_by FROM feeds")).scalars()) == {"other"}


# -- health ------------------------------------------------------------------------------------

def test_status_shows_ok_failing_parked_and_stale(engine: Engine, settings, monkeypatch, db_url) -> None:
    from typer.testing import CliRunner

    from etl.cli import main as cli

    ok = [(f"g{i}", f"https://ex.com/{i}") for i in range(5)]
    with TestWeb("127.0.0.1") as one, TestWeb("127.0.0.2") as two:
        one.route("/ok", static(rss(ok), content_type=RSS_TYPE))
        one.route("/broken", static(b"", 500))
        two.route("/limited", static(b"", 429, headers={"Retry-After": "3600"}))
        sync(engine, {"s": [one.url("/ok"), one.url("/broken"), two.url("/limited")]})
        poll(engine, settings)
    # The /ok feed's entries are dated November 2026, hours apart: long silent now → stale.
    with engine.begin() as conn:
        conn.execute(text("UPDATE feeds SET newest_entry_at = now() - interval '10 days' WHERE url LIKE '%/ok'"))
    monkeypatch.setenv("NEWSETL_DATABASE_URL", db_url)
    result = CliRunner().invoke(cli.app, ["status", "--wide"])
    assert result.exit_code == 1, result.output  # failing feeds: status alerts (tests/test_cli.py)
    out = result.output
    lines = {name: next(line for line in out.splitlines() if name in line) for name in ("/ok", "/broken", "/limited")}
    assert "OK" in lines["/ok"] and "stale" in lines["/ok"]
    assert "stale" not in lines["/broken"] and "OK" not in lines["/broken"]
    assert "failing since" in lines["/broken"] and "HTTP 500" in lines["/broken"]
    assert "host parked until" in lines["/limited"]


def test_per_feed_bounds_from_the_sources_file(engine: Engine, settings) -> None:
    with TestWeb() as web:
        body = rss([("g1", "https://ex.com/1")])
        web.route("/slow", static(body, content_type=RSS_TYPE))
        web.route("/fast", static(body, content_type=RSS_TYPE, headers={"Cache-Control": "max-age=86400"}))
        store.sync_sources(engine, parse_sources(f"""
[[sources]]
slug = "s"
min_request_interval = 0
  [[sources.feeds]]
  url = "{web.url('/slow')}"
  min_interval = 7200
  [[sources.feeds]]
  url = "{web.url('/fast')}"
  max_interval = 600
"""))
        poll(engine, settings)

        def wait(name: str) -> float:
            row = feed_row(engine, name)
            return (row["next_poll_at"] - row["last_polled_at"]).total_seconds()

        assert wait("/slow") >= 7200      # the per-feed floor beats the 15-min default
        assert wait("/fast") <= 600       # the per-feed ceiling beats the server's max-age


def test_a_feed_that_failed_to_parse_is_not_hidden_by_a_304(engine: Engine, settings) -> None:
    def broken(h):
        if h.headers.get("If-None-Match") == '"b1"':
            respond(h, 304, b"", {"ETag": '"b1"'})
        else:
            respond(h, 200, b"<html>maintenance</html>", {"Content-Type": RSS_TYPE, "ETag": '"b1"'})

    with TestWeb() as web:
        web.route("/broken", broken)
        sync(engine, {"s": [web.url("/broken")]})
        poll(engine, settings)
        make_due(engine)
        again = poll(engine, settings)[0].outcome
        assert again.http_status == 200 and again.error_kind == "parse"
        assert "if-none-match" not in web.requests[1][2]
        assert feed_row(engine, "/broken")["consecutive_failures"] == 2


def test_run_killed_before_loading_loses_no_entry(engine: Engine, settings) -> None:
    """A run that polled but died before loading its new entries must not let the next poll
    take a 304 (or an unchanged body hash) for "nothing new"."""
    body = rss([("g1", "https://ex.com/1"), ("g2", "https://ex.com/2")])

    def feed(h):
        if h.headers.get("If-None-Match") == '"v1"':
            respond(h, 304, b"", {"ETag": '"v1"'})
        else:
            respond(h, 200, body, {"Content-Type": RSS_TYPE, "ETag": '"v1"'})

    with TestWeb() as web:
        web.route("/feed", feed)
        sync(engine, {"s": [web.url("/feed")]})
        first = poll(engine, settings, load=False)  # ... and the run dies here
        assert first[0].outcome.entries_new == 2 and feed_row(engine, "/feed")["etag"] is None
        make_due(engine)
        again = poll(engine, settings)
        assert again[0].outcome.http_status == 200 and again[0].outcome.entries_new == 2
        assert feed_row(engine, "/feed")["etag"] == '"v1"'
