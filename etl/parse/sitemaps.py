"""Sitemap parsing: robots.txt and sitemap bytes in, dated URLs out (a sibling of ``feeds``).

Why not ``trafilatura.sitemaps``: it throws away ``<lastmod>`` and ``<news:publication_date>``,
and a date-range backfill needs exactly those to fetch only the range. Parsing is done with
defusedxml (sitemaps are untrusted XML: no entity expansion, no external DTDs), by local tag
name so that sitemaps with a wrong or missing namespace still read.
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from urllib.parse import urljoin, urlsplit

from defusedxml import ElementTree as SafeET

from etl.fetch.robots import sitemaps_in
from etl.parse.dates import to_utc

# A sitemap may hold 50,000 URLs and 50 MB uncompressed (sitemaps.org); cap inflation there.
MAX_SITEMAP_BYTES = 50 * 1024 * 1024

# France 24 article URLs carry the publication day: /en/africa/20261120-some-slug.
_URL_DAY = re.compile(r"/((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])-")
# Many outlets use /2026/11/20/ instead.
_URL_PATH_DAY = re.compile(r"/((?:19|20)\d{2})/(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/")


class SitemapError(ValueError):
    """Not a sitemap we can read; the message says why."""


@dataclass(frozen=True)
class SitemapEntry:
    loc: str
    lastmod: datetime | None = None
    publication_date: datetime | None = None   # <news:publication_date>
    title: str | None = None                   # <news:title>
    language: str | None = None                # <news:language>

    @property
    def url_day(self) -> date | None:
        return url_date(self.loc)

    @property
    def date(self) -> datetime | None:
        """The best publication time we have: the news date, the day in the URL, then lastmod.

        ``lastmod`` is when the page last changed, so it only stands in when nothing else is
        known (a later edit moves a page forward in time, never backward)."""
        if self.publication_date:
            return self.publication_date
        day = self.url_day
        if day:
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        return self.lastmod


@dataclass
class Sitemap:
    kind: str                                   # 'index' (<sitemapindex>) or 'urlset'
    entries: list[SitemapEntry] = field(default_factory=list)


def url_date(url: str) -> date | None:
    """The publication day written in an article URL (/YYYYMMDD- or /YYYY/MM/DD/), if any."""
    path = urlsplit(url).path
    m = _URL_DAY.search(path) or _URL_PATH_DAY.search(path)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def robots_sitemaps(body: bytes | str, base_url: str) -> list[str]:
    """The ``Sitemap:`` lines of a robots.txt (case-insensitive, any position, relative allowed),
    read by the same parser (protego) that decides what we may fetch."""
    return sitemaps_in(body, base_url)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def _is_news(tag: object) -> bool:
    # <image:title> and <video:title> live in the same <url>; only Google News' namespace
    # (or none, for sloppy sitemaps) names the article.
    ns = tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""
    return not ns or "news" in ns


def _inflate(body: bytes) -> bytes:
    if body[:2] != b"\x1f\x8b":
        return body
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as gz:
            data = gz.read(MAX_SITEMAP_BYTES + 1)
    except (OSError, EOFError) as exc:
        raise SitemapError(f"bad gzip: {exc}") from exc
    if len(data) > MAX_SITEMAP_BYTES:
        raise SitemapError(f"sitemap inflates past {MAX_SITEMAP_BYTES} bytes")
    return data


def parse_sitemap(body: bytes, base_url: str | None = None) -> Sitemap:
    """Parses a sitemap index or a urlset (plain or gzip); raises SitemapError if neither."""
    data = _inflate(body).strip()
    if not data:
        raise SitemapError("empty body")
    try:
        root = SafeET.fromstring(data)
    except SafeET.ParseError as exc:
        raise SitemapError(f"not XML: {exc}") from exc
    except Exception as exc:  # defusedxml refuses entities/DTDs with its own exceptions
        raise SitemapError(f"refused XML: {type(exc).__name__}: {exc}") from exc
    kind = _local(root.tag)
    if kind not in {"sitemapindex", "urlset"}:
        raise SitemapError(f"root element is <{kind}>, not <sitemapindex> or <urlset>")
    child_tag = "sitemap" if kind == "sitemapindex" else "url"
    entries: list[SitemapEntry] = []
    for node in root:
        if _local(node.tag) != child_tag:
            continue
        loc = lastmod = pub = title = lang = None
        for el in node:  # <loc> and <lastmod> are direct children
            name, value = _local(el.tag), (el.text or "").strip()
            if name == "loc" and value and loc is None:
                loc = value
            elif name == "lastmod" and value:
                lastmod = to_utc(value)
        for el in node.iter():  # news:* sits inside <news:news><news:publication>
            name, value = _local(el.tag), (el.text or "").strip()
            if not value or el is node or not _is_news(el.tag):
                continue
            if name == "publication_date":
                pub = to_utc(value)
            elif name == "title" and title is None:
                title = value
            elif name == "language" and lang is None:
                lang = value.lower()
        if not loc:
            continue
        if base_url:
            loc = urljoin(base_url, loc)
        if urlsplit(loc).scheme not in {"http", "https"}:
            continue
        entries.append(SitemapEntry(loc=loc, lastmod=lastmod, publication_date=pub, title=title,
                                    language=lang))
    return Sitemap(kind="index" if kind == "sitemapindex" else "urlset", entries=entries)
