"""Sitemap and robots.txt parsing: dates kept, namespaces tolerated, hostile XML refused."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime

import pytest

from etl.parse.sitemaps import SitemapError, parse_sitemap, robots_sitemaps, url_date


def test_robots_sitemap_lines() -> None:
    robots = (b"User-agent: *\nDisallow: /admin # no\nSITEMAP: https://www.voanews.com/sitemap.xml\n"
              b"sitemap:/news-sitemap.xml\n# Sitemap: https://ignored.example/x.xml\n"
              b"Sitemap: https://www.voanews.com/sitemap.xml\n")
    assert robots_sitemaps(robots, "https://www.voanews.com/robots.txt") == [
        "https://www.voanews.com/sitemap.xml", "https://www.voanews.com/news-sitemap.xml"]


def test_news_sitemap_keeps_dates_title_language() -> None:
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url>
    <loc>https://www.france24.com/es/am%C3%A9rica-latina/20261120-ministros-panama</loc>
    <lastmod>2026-11-21T08:00:00+01:00</lastmod>
    <image:image><image:loc>https://s.f24.com/x.jpg</image:loc><image:title>Photo caption</image:title></image:image>
    <news:news>
      <news:publication><news:name>France 24</news:name><news:language>ES</news:language></news:publication>
      <news:publication_date>2026-11-20T19:40:00+00:00</news:publication_date>
      <news:title>Ministros en Panamá</news:title>
    </news:news>
  </url>
  <url><loc>https://www.voanews.com/a/7890.html</loc><lastmod>2026-11-20</lastmod></url>
  <url><loc>/relative/page</loc></url>
  <url><loc>javascript:alert(1)</loc></url>
</urlset>""".encode()
    sm = parse_sitemap(gzip.compress(xml), "https://www.france24.com/sitemaps/news.xml")
    assert sm.kind == "urlset" and len(sm.entries) == 3
    f24, voa, rel = sm.entries
    assert f24.publication_date == datetime(2026, 11, 20, 19, 40, tzinfo=UTC)
    assert f24.lastmod == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
    assert f24.title == "Ministros en Panamá" and f24.language == "es"
    assert f24.url_day == date(2026, 11, 20) and f24.date == f24.publication_date
    assert voa.url_day is None and voa.date == datetime(2026, 11, 20, tzinfo=UTC)
    assert rel.loc == "https://www.france24.com/relative/page" and rel.date is None


def test_sitemap_index_without_namespace() -> None:
    sm = parse_sitemap(b"<sitemapindex><sitemap><loc>https://x.example/a.xml</loc>"
                       b"<lastmod>2026-10-31</lastmod></sitemap></sitemapindex>")
    assert sm.kind == "index" and sm.entries[0].lastmod == datetime(2026, 10, 31, tzinfo=UTC)


@pytest.mark.parametrize("body", [
    b"", b"<html><body>Not found</body></html>", b"not xml at all <",
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
    b"<urlset><url><loc>&lol2;</loc></url></urlset>",
])
def test_bad_sitemaps_raise_a_clear_error(body: bytes) -> None:
    with pytest.raises(SitemapError):
        parse_sitemap(body)


def test_url_dates() -> None:
    assert url_date("https://www.france24.com/en/americas/20261120-panama-ministers") == date(2026, 11, 20)
    assert url_date("https://example.org/2026/11/21/story/") == date(2026, 11, 21)
    assert url_date("https://www.voanews.com/a/panama-migration/7890123.html") is None
    assert url_date("https://www.france24.com/en/20261340-bad-month") is None
