"""The fetcher against a real local server that misbehaves on purpose."""

import gzip
import time
from dataclasses import replace

import pytest

from etl.config import load_settings
from etl.http import Fetcher, check_url_allowed, FetchError
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
    with TestWeb() as web, Fetcher(settings) as f:
        url = web.route("/a", static("x"))
        for _ in range(3):
            f.fetch(url, max_bytes=100, min_interval=0.3)
        gaps = [b - a for a, b in zip(web.times, web.times[1:])]
        assert len(gaps) == 2 and min(gaps) >= 0.29  # a lower bound: load can only widen gaps
