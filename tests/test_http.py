"""The fetcher against a real local server that misbehaves on purpose."""

import gzip
import time
from dataclasses import replace

import pytest

from etl.config import load_settings
from etl.fetch.http import Fetcher, FetchError, check_url_allowed
from tests.webserver import TestWeb, reset_connection, respond, static


@pytest.fixture
def settings():
    return replace(load_settings(), read_timeout=1.0, connect_timeout=1.0, total_timeout=5.0)


def test_ok_and_conditional_headers_sent(settings) -> None:
    with TestWeb() as web, Fetcher(settings) as f:
        url = web.route("/a", static("hello", headers={"ETag": '"v1"'}))
        res = f.fetch(url, max_bytes=1000, etag='"v0"', last_modified="Fri, 20 Nov 2026 10:00:00 GMT", min_interval=0)
        assert res.ok and res.content == b"hello" and res.headers["etag"] == '"v1"'
        headers = web.requests[0][2]
        assert headers["if-none-match"] == '"v0"'
        assert headers["if-modified-since"] == "Fri, 20 Nov 2026 10:00:00 GMT"
        assert headers["user-agent"].startswith("newsetl/")


def test_http_error_timeout_reset_are_named(settings) -> None:
    def slow(h):
        time.sleep(3)
        respond(h, 200, b"late")

    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/slow", slow)
        web.route("/reset", reset_connection)
        assert f.fetch(web.url("/missing"), max_bytes=100, min_interval=0).error_kind == "http"
        assert f.fetch(web.url("/slow"), max_bytes=100, min_interval=0).error_kind == "timeout"
        assert f.fetch(web.url("/reset"), max_bytes=100, min_interval=0).error_kind == "reset"
        assert f.fetch("http://127.0.0.1:1/x", max_bytes=100, min_interval=0).error_kind == "connect"


def test_size_cap_and_gzip_bomb(settings) -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))  # 20 MB inflated, ~20 KB on the wire
    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/big", static(b"x" * 200_000))
        web.route("/bomb", static(bomb, headers={"Content-Encoding": "gzip"}))
        big = f.fetch(web.url("/big"), max_bytes=100_000, min_interval=0)
        assert big.error_kind == "too_large" and big.content == b""
        res = f.fetch(web.url("/bomb"), max_bytes=1_000_000, min_interval=0)
        assert res.error_kind == "too_large"


def test_redirects_loop_and_hops(settings) -> None:
    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/loop1", static(b"", 302, headers={"Location": "/loop2"}))
        web.route("/loop2", static(b"", 302, headers={"Location": "/loop1"}))
        for i in range(8):
            web.route(f"/hop{i}", static(b"", 301, headers={"Location": f"/hop{i + 1}"}))
        web.route("/moved", static(b"", 301, headers={"Location": "/final"}))
        web.route("/final", static("done"))
        assert f.fetch(web.url("/loop1"), max_bytes=100, min_interval=0).error_kind == "redirect"
        assert "more than 5" in f.fetch(web.url("/hop0"), max_bytes=100, min_interval=0).error
        moved = f.fetch(web.url("/moved"), max_bytes=100, min_interval=0)
        assert moved.ok and moved.final_url == web.url("/final") and moved.redirects == [(301, web.url("/final"))]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/x", "http://0.0.0.0/x", "http://224.0.0.1/x", "http://[::ffff:127.0.0.1]/x",
])
def test_private_addresses_refused_without_the_switch(url: str) -> None:
    with pytest.raises(FetchError) as exc:
        check_url_allowed(url, allow_private=False)
    assert exc.value.kind == "blocked"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://ex.com/x", "gopher://x/"])
def test_non_http_schemes_refused_even_with_the_switch(url: str) -> None:
    with pytest.raises(FetchError, match="scheme"):
        check_url_allowed(url, allow_private=True)


def test_redirect_to_private_address_refused_at_the_hop(settings) -> None:
    strict = replace(settings, allow_private_networks=False)
    with TestWeb() as web, Fetcher(strict) as f:
        # The first hop itself is loopback and refused before any request is made.
        web.route("/r", static(b"", 302, headers={"Location": "http://169.254.169.254/"}))
        res = f.fetch(web.url("/r"), max_bytes=100, min_interval=0)
        assert res.error_kind == "blocked" and web.requests == []


def test_per_host_spacing(settings) -> None:
    """The k-th request to a host cannot start before k × interval after the first was let
    through: a lower bound that load can only make longer (arrival gaps at the server jitter)."""
    with TestWeb() as web, Fetcher(settings) as f:
        url = web.route("/a", static("x"))
        other = TestWeb("127.0.0.9")
        with other:
            other_url = other.route("/b", static("y"))
            before = time.monotonic()
            for _ in range(3):
                f.fetch(url, max_bytes=100, min_interval=0.3)
            elapsed = time.monotonic() - before
            assert elapsed >= 0.6  # starts at t0, t0+0.3, t0+0.6
            # another host is not held back by the first one's spacing
            assert f.fetch(other_url, max_bytes=100, min_interval=0.3).ok
            assert other.requests and len(web.requests) == 3


def test_truncated_body_is_named(settings) -> None:
    def truncated(h):
        h.send_response(200)
        h.send_header("Content-Length", "5000")
        h.end_headers()
        h.wfile.write(b"x" * 300)
        h.wfile.flush()
        h.close_connection = True

    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/t", truncated)
        res = f.fetch(web.url("/t"), max_bytes=10_000, min_interval=0)
        assert res.error_kind == "truncated" and res.content == b""


def test_dns_failure_is_named(settings) -> None:
    with Fetcher(settings) as f:
        assert f.fetch("http://no-such-host.invalid/", max_bytes=100, min_interval=0).error_kind == "dns"
    strict = replace(settings, allow_private_networks=False)
    with Fetcher(strict) as f:
        assert f.fetch("http://no-such-host.invalid/", max_bytes=100, min_interval=0).error_kind == "dns"


def test_429_parks_the_host_in_this_fetcher_only_for_that_host(settings) -> None:
    with TestWeb("127.0.0.1") as one, TestWeb("127.0.0.2") as two, Fetcher(settings) as f:
        one.route("/limited", static(b"", 429, headers={"Retry-After": "60"}))
        one.route("/page", static("x"))
        two.route("/page", static("x"))
        first = f.fetch(one.url("/limited"), max_bytes=100, min_interval=0)
        assert first.status == 429 and first.backoff_until is not None
        parked = f.fetch(one.url("/page"), max_bytes=100, min_interval=0)
        assert parked.error_kind == "host_backoff" and one.hits("/page") == 0
        assert f.fetch(two.url("/page"), max_bytes=100, min_interval=0).ok
        assert [b.host for b in f.drain_new_backoffs()] == ["127.0.0.1"] and f.drain_new_backoffs() == []


def test_503_without_retry_after_does_not_park(settings) -> None:
    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/down", static(b"", 503))
        web.route("/page", static("x"))
        assert f.fetch(web.url("/down"), max_bytes=100, min_interval=0).backoff_until is None
        assert f.fetch(web.url("/page"), max_bytes=100, min_interval=0).ok


def test_permanent_url_only_through_permanent_hops(settings) -> None:
    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/a", static(b"", 301, headers={"Location": "/b"}))
        web.route("/b", static(b"", 308, headers={"Location": "/c"}))
        web.route("/c", static("ok"))
        web.route("/t", static(b"", 307, headers={"Location": "/c"}))
        assert f.fetch(web.url("/a"), max_bytes=100, min_interval=0).permanent_url == web.url("/c")
        assert f.fetch(web.url("/t"), max_bytes=100, min_interval=0).permanent_url is None
        assert f.fetch(web.url("/c"), max_bytes=100, min_interval=0).permanent_url is None


def test_allow_private_per_call_overrides_the_setting(settings) -> None:
    strict = replace(settings, allow_private_networks=False)
    with TestWeb() as web, Fetcher(strict) as f:
        url = web.route("/a", static("x"))
        assert f.fetch(url, max_bytes=100, min_interval=0).error_kind == "blocked"
        assert f.fetch(url, max_bytes=100, min_interval=0, allow_private=True).ok
        # the override never lifts the scheme rule
        assert f.fetch("file:///etc/passwd", max_bytes=100, allow_private=True).error_kind == "blocked"


@pytest.mark.parametrize("robots,allowed", [
    (static("User-agent: *\nDisallow: /\n", content_type="text/plain"), False),
    (static("User-agent: newsetl\nDisallow: /\n\nUser-agent: *\nAllow: /\n", content_type="text/plain"), False),
    (static("User-agent: otherbot\nDisallow: /\n", content_type="text/plain"), True),
    (static(b"", 404), True),          # RFC 9309: unavailable → no rules
    (static(b"", 500), False),         # RFC 9309: unreachable → assume complete disallow
])
def test_robots_txt_rules_and_availability(settings, robots, allowed: bool) -> None:
    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/robots.txt", robots)
        web.route("/article", static("x"))
        res = f.fetch(web.url("/article"), max_bytes=100, min_interval=0, respect_robots=True)
        assert res.ok is allowed and web.hits("/article") == int(allowed)
        if not allowed:
            assert res.error_kind == "robots" and "robots.txt disallows" in res.error
        f.fetch(web.url("/article"), max_bytes=100, min_interval=0, respect_robots=True)
        assert web.hits("/robots.txt") == 1  # cached per host
