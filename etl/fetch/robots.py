"""robots.txt for article pages, cached per origin (scheme, host, port).

Feeds are published to be polled, so only page fetches ask robots.txt. The file is fetched
through our own Fetcher (same SSRF checks, size cap, politeness and User-Agent) and read by
``protego``, which follows RFC 9309 where ``urllib.robotparser`` does not: ``*`` and ``$`` in
paths (``Disallow: /*/amp$``), the longest matching rule wins whatever the order (``Allow:
/news/`` does not open ``Disallow: /news/private``), and an ``Allow`` wins a tie. It also
reads ``Crawl-delay``, ``Request-rate`` and ``Sitemap:`` lines. Availability rules (ours,
from RFC 9309): a 4xx means "no rules" (allow all); a 5xx, a 429 or no answer means "assume
complete disallow" for a while, then ask again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from protego import Protego

ROBOTS_MAX_BYTES = 512 * 1024   # RFC 9309: parse at least 500 KiB
ROBOTS_TTL = 24 * 3600.0        # RFC 9309: do not use a cached copy for more than 24 h
UNREACHABLE_TTL = 10 * 60.0     # after a 5xx/network error, ask again after this
MAX_CRAWL_DELAY = 60.0          # a Crawl-delay larger than this is taken as this

# (url, min_interval) → (status or None, body, error kind or None), following redirects.
RobotsFetch = Callable[[str, float], tuple[int | None, bytes, str | None]]


@dataclass
class _Entry:
    parser: Protego | None           # None: allow everything
    disallow_all: bool
    expires: float                   # time.monotonic()
    reason: str


def parse_robots(body: bytes | str) -> Protego:
    """A robots.txt body (bytes are decoded as UTF-8, bad bytes replaced) → its rules."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    return Protego.parse(text)


def sitemaps_in(body: bytes | str, base_url: str) -> list[str]:
    """The ``Sitemap:`` URLs of a robots.txt, absolute (relative ones resolved against
    ``base_url``), in file order, each once."""
    found: list[str] = []
    for url in parse_robots(body).sitemaps:
        url = urljoin(base_url, url.strip())
        if url and url not in found:
            found.append(url)
    return found


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class RobotsCache:
    """Thread-safe; one per Fetcher (per run). Each origin's robots.txt is fetched once."""

    def __init__(self, fetch: RobotsFetch, user_agent: str) -> None:
        self._fetch = fetch
        self._agent = user_agent
        self._lock = threading.Lock()
        self._origin_locks: dict[str, threading.Lock] = {}
        self._entries: dict[str, _Entry] = {}

    def _entry(self, url: str, min_interval: float) -> _Entry:
        origin = origin_of(url)
        with self._lock:
            lock = self._origin_locks.setdefault(origin, threading.Lock())
        with lock:  # a second thread waits for the first fetch instead of fetching again
            entry = self._entries.get(origin)
            if entry is None or entry.expires < time.monotonic():
                entry = self._load(origin, min_interval)
                self._entries[origin] = entry
            return entry

    def _load(self, origin: str, min_interval: float) -> _Entry:
        robots_url = f"{origin}/robots.txt"
        status, body, error_kind = self._fetch(robots_url, min_interval)
        now = time.monotonic()
        if error_kind is None and status is not None and 200 <= status < 300:
            return _Entry(parse_robots(body), False, now + ROBOTS_TTL, "robots.txt")
        if status is not None and 400 <= status < 500 and status != 429:  # 429 is "come back later"
            return _Entry(None, False, now + ROBOTS_TTL, f"robots.txt HTTP {status}: no rules")
        why = f"HTTP {status}" if status else (error_kind or "no answer")
        return _Entry(None, True, now + UNREACHABLE_TTL, f"robots.txt unreachable ({why})")

    def allowed(self, url: str, min_interval: float = 1.0) -> tuple[bool, str]:
        """(allowed, reason); the reason says which rule or availability case decided.
        ``min_interval`` is the host's politeness, used if robots.txt must be fetched."""
        entry = self._entry(url, min_interval)
        if entry.disallow_all:
            return False, f"robots.txt disallows {url}: {entry.reason}, assuming complete disallow"
        if entry.parser is None or entry.parser.can_fetch(url, self._agent):
            return True, entry.reason
        return False, f"robots.txt disallows {url}"

    def crawl_delay(self, url: str, min_interval: float = 1.0) -> float | None:
        """Seconds between requests the site asks of us: ``Crawl-delay``, or the spacing a
        ``Request-rate: n/s`` implies, whichever is longer; capped at :data:`MAX_CRAWL_DELAY`."""
        entry = self._entry(url, min_interval)
        if entry.parser is None:
            return None
        delay = entry.parser.crawl_delay(self._agent) or 0.0
        rate = entry.parser.request_rate(self._agent)
        if rate is not None and rate.requests:
            delay = max(delay, rate.seconds / rate.requests)
        return min(float(delay), MAX_CRAWL_DELAY) if delay else None

    def sitemaps(self, url: str, min_interval: float = 1.0) -> list[str]:
        """The ``Sitemap:`` URLs of the robots.txt of ``url``'s origin (cached like the rules)."""
        entry = self._entry(url, min_interval)
        if entry.parser is None:
            return []
        base = f"{origin_of(url)}/robots.txt"
        return list(dict.fromkeys(urljoin(base, u.strip()) for u in entry.parser.sitemaps))
