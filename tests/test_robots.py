"""robots.txt as RFC 9309 reads it (through protego), fetched from a real local server by the
Fetcher: wildcards, ``$``, the longest match wins whatever the order, Allow wins a tie, our
own group by product token, Crawl-delay / Request-rate, and Sitemap: lines. Each case below
was decided the other way by ``urllib.robotparser`` (or is the rule that case depends on)."""

import time
from dataclasses import replace

import pytest

from etl.config import load_settings
from etl.fetch.http import Fetcher
from etl.fetch.robots import MAX_CRAWL_DELAY, sitemaps_in
from tests.webserver import TestWeb, respond, static

PRECEDENCE_FIRST_ALLOW = "User-agent: *\nAllow: /news/\nDisallow: /news/private\n"
PRECEDENCE_FIRST_DISALLOW = "User-agent: *\nDisallow: /news/private\nAllow: /news/\n"
WILDCARDS = "User-agent: *\nDisallow: /*/amp$\nDisallow: /*.pdf$\nDisallow: /search*q=\n"
TIE = "User-agent: *\nDisallow: /page\nAllow: /page\n"
OURS = "User-agent: *\nDisallow: /\n\nuser-agent: NewsETL\nDisallow: /private/\n"


@pytest.fixture
def settings():
    return replace(load_settings(), read_timeout=1.0, connect_timeout=1.0, total_timeout=5.0)


@pytest.mark.parametrize("robots, path, allowed", [
    # longest match wins, whatever the order of the lines
    (PRECEDENCE_FIRST_ALLOW, "/news/private", False),
    (PRECEDENCE_FIRST_ALLOW, "/news/private/report.html", False),
    (PRECEDENCE_FIRST_ALLOW, "/news/world.html", True),
    (PRECEDENCE_FIRST_DISALLOW, "/news/private", False),
    (PRECEDENCE_FIRST_DISALLOW, "/news/world.html", True),
    # * matches any run of characters, $ anchors the end of the path
    (WILDCARDS, "/x/amp", False),
    (WILDCARDS, "/world/2026/amp", False),
    (WILDCARDS, "/x/amp/more", True),
    (WILDCARDS, "/x/ampere", True),
    (WILDCARDS, "/files/report.pdf", False),
    (WILDCARDS, "/files/report.pdf.html", True),
    (WILDCARDS, "/search?lang=en&q=panama", False),
    (WILDCARDS, "/search?lang=en", True),
    # equally long Allow and Disallow: the least restrictive (Allow) wins
    (TIE, "/page", True),
    # our group (matched case-insensitively by the product token) replaces the * group
    (OURS, "/news/a.html", True),
    (OURS, "/private/a.html", False),
])
def test_rfc9309_rules(settings, robots: str, path: str, allowed: bool) -> None:
    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/robots.txt", static(robots, content_type="text/plain"))
        ok, why = f.robots.allowed(web.url(path), 0)
        assert ok is allowed, why
        if not ok:
            assert why.startswith("robots.txt disallows")


@pytest.mark.parametrize("robots, delay", [
    ("User-agent: *\nCrawl-delay: 3\n", 3.0),
    ("User-agent: *\nCrawl-delay: 2.5\n", 2.5),
    ("User-agent: *\nCrawl-delay: 3600\n", MAX_CRAWL_DELAY),      # capped
    ("User-agent: *\nRequest-rate: 1/10s\n", 10.0),               # one request per 10 s
    ("User-agent: otherbot\nCrawl-delay: 30\n\nUser-agent: *\nCrawl-delay: 1\n", 1.0),
    ("User-agent: *\nDisallow: /x\n", None),
])
def test_crawl_delay(settings, robots: str, delay: float | None) -> None:
    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/robots.txt", static(robots, content_type="text/plain"))
        assert f.robots.crawl_delay(web.url("/a"), 0) == delay


def test_crawl_delay_spaces_page_requests(settings) -> None:
    """The delay is applied: the second page of the host waits for it (measured on the
    server's own request log, not asserted as a wall-clock budget)."""
    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/robots.txt", static("User-agent: *\nCrawl-delay: 0.5\n", content_type="text/plain"))
        times: list[float] = []

        def page(h) -> None:
            times.append(time.monotonic())
            respond(h, 200, b"page")

        web.route("/a", page)
        web.route("/b", page)
        assert f.fetch(web.url("/a"), max_bytes=100, min_interval=0, respect_robots=True).ok
        assert f.fetch(web.url("/b"), max_bytes=100, min_interval=0, respect_robots=True).ok
        assert len(times) == 2 and times[1] - times[0] >= 0.45


def test_sitemap_lines_come_from_the_same_parser(settings) -> None:
    robots = ("User-agent: *\nDisallow: /admin\nSITEMAP: https://cdn.example/sitemap.xml\n"
              "sitemap: /news-sitemap.xml\n# Sitemap: https://ignored.example/x.xml\n"
              "Sitemap: https://cdn.example/sitemap.xml\n")
    with TestWeb() as web, Fetcher(settings) as f:
        web.route("/robots.txt", static(robots, content_type="text/plain"))
        assert f.robots.sitemaps(web.url("/any/page")) == [
            "https://cdn.example/sitemap.xml", web.url("/news-sitemap.xml")]
        assert web.hits("/robots.txt") == 1
    assert sitemaps_in(robots, "https://www.voanews.com/robots.txt") == [
        "https://cdn.example/sitemap.xml", "https://www.voanews.com/news-sitemap.xml"]
