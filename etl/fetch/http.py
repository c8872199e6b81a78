"""HTTP fetching with manners and limits: the only module that talks to the network.

Why not ``httpx`` defaults or trafilatura's ``fetch_url``: we must refuse non-public addresses
at every redirect hop (feeds are untrusted input), cap bodies while streaming (a gzip bomb
inflates past any Content-Length), space requests per host, and report *why* a fetch failed in
a form the database can keep.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

import httpx

from etl.config import Settings
from etl.fetch.robots import ROBOTS_MAX_BYTES, RobotsCache
from etl.fetch.schedule import DEFAULT_RATE_LIMIT_WAIT, retry_after, with_jitter
from etl.models import ErrorKind, FetchResult, HostBackoff

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
# What we ask for: feeds in any of their XML types, pages as HTML.
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
_DNS_ERRORS = ("Name or service not known", "getaddrinfo", "Temporary failure in name resolution",
               "No address associated with hostname", "nodename nor servname")


class FetchError(Exception):
    """A fetch that produced no usable response; ``kind`` is stored with the error."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _is_public(addr: str) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url_allowed(url: str, allow_private: bool) -> None:
    """Raises FetchError('blocked') for non-http(s) URLs and, unless allowed, hosts that resolve
    to any non-public address (loopback, private, link-local such as 169.254.169.254, ...)."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"}:
        raise FetchError(ErrorKind.BLOCKED, f"scheme {parts.scheme or '(none)'!r} is not allowed: {url}")
    host = parts.hostname
    if not host:
        raise FetchError(ErrorKind.BLOCKED, f"URL has no host: {url}")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchError(ErrorKind.DNS, f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        addr = str(info[4][0])
        if not _is_public(addr):
            raise FetchError(ErrorKind.BLOCKED, f"{host} resolves to non-public address {addr} "
                             "(set NEWSETL_ALLOW_PRIVATE_NETWORKS=1 to allow)")


class HostGate:
    """Per-host politeness: a minimum interval between request starts and a concurrency cap.

    Keyed by host (not domain): two hosts of one outlet are separate servers with separate limits.
    """

    def __init__(self, per_host_concurrency: int) -> None:
        self._lock = threading.Lock()
        self._next_start: dict[str, float] = {}
        self._slots: dict[str, threading.Semaphore] = {}
        self._per_host = per_host_concurrency

    def _slot(self, host: str) -> threading.Semaphore:
        with self._lock:
            if host not in self._slots:
                self._slots[host] = threading.Semaphore(self._per_host)
            return self._slots[host]

    def acquire(self, host: str, interval: float) -> None:
        self._slot(host).acquire()
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + interval
        if start > now:
            time.sleep(start - now)

    def release(self, host: str) -> None:
        self._slot(host).release()


class Fetcher:
    """A thread-safe polite client; one per run, shared by every task thread."""

    def __init__(self, settings: Settings,
                 host_slots: Callable[[str, float], float] | None = None) -> None:
        """``host_slots(host, interval)`` reserves a start slot shared with other processes
        (see ``store.host_slot_reserver``) and returns the seconds to wait for it; without it,
        spacing holds within this process only."""
        self.settings = settings
        self.host_slots = host_slots
        self.gate = HostGate(settings.per_host_concurrency)
        self._global = threading.Semaphore(settings.fetch_concurrency)
        self.client = httpx.Client(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate, br"},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=False,
            # A pool no larger than the global cap: httpcore scans the whole pool on every
            # request (quadratically), and polling many hosts keeps it full. Keep-alive equals
            # the pool size on purpose: with fewer, httpcore evicts "idle" connections that
            # another thread was just given, and that request fails with EBADF (seen 2 in
            # 17,000 polls). Measured, 1,000 conditional GETs to 200 hosts: 64 connections
            # 3.4-4.2 s CPU, 32 connections 1.5-2.2 s.
            limits=httpx.Limits(max_connections=settings.fetch_concurrency,
                                max_keepalive_connections=settings.fetch_concurrency),
        )
        self.robots = RobotsCache(self._fetch_robots, settings.user_agent)
        self._backoff_lock = threading.Lock()
        self._backoffs: dict[str, HostBackoff] = {}
        self._new_backoffs: list[HostBackoff] = []

    # -- host back-off (Retry-After), shared by every thread of the run ------------------------

    def add_backoffs(self, backoffs: list[HostBackoff]) -> None:
        """Back-offs known elsewhere (the database: other workers and runs)."""
        with self._backoff_lock:
            for b in backoffs:
                old = self._backoffs.get(b.host)
                if old is None or b.until > old.until:
                    self._backoffs[b.host] = b

    def backoff_for(self, host: str) -> HostBackoff | None:
        with self._backoff_lock:
            b = self._backoffs.get(host.lower())
        return b if b is not None and b.until > datetime.now(UTC) else None

    def drain_new_backoffs(self) -> list[HostBackoff]:
        """Back-offs this fetcher learned since the last call, for the caller to persist."""
        with self._backoff_lock:
            out, self._new_backoffs = self._new_backoffs, []
        return out

    def _note_backoff(self, host: str, status: int, headers: Mapping[str, str]) -> HostBackoff | None:
        """429 always parks the host (10 min without Retry-After); 503 only when it says how
        long. Scoped to the host that answered, never to its whole domain."""
        wait = retry_after(headers.get("retry-after"))
        if wait is None and status == 429:
            wait = DEFAULT_RATE_LIMIT_WAIT
        if wait is None:
            return None
        until = datetime.now(UTC) + timedelta(seconds=with_jitter(wait))
        reason = f"HTTP {status}" + (f", Retry-After: {headers['retry-after']}" if headers.get("retry-after") else "")
        b = HostBackoff(host=host.lower(), until=until, http_status=status, reason=reason)
        self.add_backoffs([b])
        with self._backoff_lock:
            self._new_backoffs.append(b)
        return b

    def _fetch_robots(self, url: str, min_interval: float) -> tuple[int | None, bytes, str | None]:
        res = self.fetch(url, max_bytes=ROBOTS_MAX_BYTES, accept="text/plain", min_interval=min_interval)
        return res.status, res.content, res.error_kind

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(
        self,
        url: str,
        *,
        max_bytes: int,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        min_interval: float = 1.0,
        allow_private: bool | None = None,
        respect_robots: bool = False,
    ) -> FetchResult:
        """GET ``url`` following up to 5 redirects, each hop checked; never raises for I/O.

        ``min_interval`` is the owning source's politeness: seconds between request starts
        to one host (the sources file's ``min_request_interval``). ``allow_private`` overrides
        the settings' address rule for this call (tests that serve a feed from loopback while
        its article links are checked strictly). ``respect_robots`` asks robots.txt at every hop
        (article pages). A host parked by Retry-After gets no request at all.
        """
        allow = self.settings.allow_private_networks if allow_private is None else allow_private
        result = FetchResult(url=url, final_url=url)
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        started = time.monotonic()
        deadline = started + self.settings.total_timeout
        seen: set[str] = {url}
        current = url
        try:
            for _hop in range(MAX_REDIRECTS + 1):
                check_url_allowed(current, allow)
                host = (urlsplit(current).hostname or "").lower()
                parked = self.backoff_for(host)
                if parked is not None:
                    raise FetchError(ErrorKind.HOST_BACKOFF, f"{host} asked us to wait until "
                                     f"{parked.until:%Y-%m-%d %H:%M:%S}Z ({parked.reason})")
                interval = min_interval
                if respect_robots:
                    ok, why = self.robots.allowed(current, min_interval)
                    if not ok:
                        raise FetchError(ErrorKind.ROBOTS, why)
                    interval = max(interval, self.robots.crawl_delay(current, min_interval) or 0.0)
                status, resp_headers, body = self._get_once(current, headers, max_bytes, deadline, interval)
                result.status, result.headers, result.final_url = status, resp_headers, current
                if status in (429, 503):
                    parked = self._note_backoff(host, status, resp_headers)
                    result.backoff_until = parked.until if parked else None
                if status in (301, 302, 303, 307, 308) and "location" in resp_headers:
                    nxt = urljoin(current, resp_headers["location"])
                    result.redirects.append((status, nxt))
                    if nxt in seen:
                        raise FetchError(ErrorKind.REDIRECT, f"redirect loop at {nxt}")
                    seen.add(nxt)
                    current = nxt
                    continue
                result.content = body
                if not (200 <= status < 300 or status == 304):
                    result.error_kind, result.error = ErrorKind.HTTP, f"HTTP {status}"
                    if result.backoff_until is not None:
                        result.error += (f" ({host} parked until {result.backoff_until:%Y-%m-%d %H:%M:%S}Z"
                                         + (f", Retry-After: {resp_headers['retry-after']}" if "retry-after" in resp_headers else "")
                                         + ")")
                break
            else:
                raise FetchError(ErrorKind.REDIRECT, f"more than {MAX_REDIRECTS} redirects")
        except FetchError as exc:
            result.error_kind, result.error = exc.kind, str(exc)
        finally:
            result.elapsed_ms = int((time.monotonic() - started) * 1000)
        return result

    def _get_once(
        self, url: str, headers: dict[str, str], max_bytes: int, deadline: float, min_interval: float
    ) -> tuple[int, dict[str, str], bytes]:
        host = urlsplit(url).hostname or ""
        # Wait for the host's turn before taking a global slot, so a slow host never holds
        # slots that requests to other hosts could use.
        self.gate.acquire(host, min_interval)
        try:
            if self.host_slots is not None and min_interval > 0:
                try:
                    wait = self.host_slots(host, min_interval)
                except Exception as exc:  # a database hiccup must not stop the fetch
                    log.warning("shared host slot for %s unavailable (%s); pacing per process", host, exc)
                    wait = 0.0
                if wait > 0:
                    time.sleep(min(wait, 3600.0))
            with self._global:
                return self._stream(url, headers, max_bytes, deadline)
        finally:
            self.gate.release(host)

    def _stream(
        self, url: str, headers: dict[str, str], max_bytes: int, deadline: float
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            with self.client.stream("GET", url, headers=headers) as resp:
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchError(ErrorKind.TOO_LARGE, f"Content-Length {declared} exceeds cap of {max_bytes} bytes")
                chunks: list[bytes] = []
                size = 0
                # iter_bytes decodes gzip/deflate/br, so the cap applies to the inflated size:
                # a decompression bomb stops here, at max_bytes.
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError(ErrorKind.TOO_LARGE, f"body exceeds cap of {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(ErrorKind.TIMEOUT, f"total time over {self.settings.total_timeout:.0f}s")
                    chunks.append(chunk)
                return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, b"".join(chunks)
        except httpx.TimeoutException as exc:
            # The kind stays 'timeout'; the message says which phase (connect/read/write/pool).
            phase = {"ConnectTimeout": "connect timeout", "ReadTimeout": "read timeout",
                     "WriteTimeout": "write timeout", "PoolTimeout": "pool timeout"}.get(type(exc).__name__, "timeout")
            raise FetchError(ErrorKind.TIMEOUT, f"{phase}: {exc or 'timed out'}") from exc
        except httpx.ConnectError as exc:
            msg = str(exc)
            kind = ErrorKind.DNS if any(s in msg for s in _DNS_ERRORS) else ErrorKind.CONNECT
            raise FetchError(kind, msg or type(exc).__name__) from exc
        except httpx.RemoteProtocolError as exc:
            msg = str(exc)
            # The server closed before the body it announced was complete.
            kind = (ErrorKind.TRUNCATED if "incomplete" in msg.lower() or "complete message body" in msg
                    else ErrorKind.RESET)
            raise FetchError(kind, f"{type(exc).__name__}: {msg}") from exc
        except httpx.ReadError as exc:
            raise FetchError(ErrorKind.RESET, f"{type(exc).__name__}: {exc}") from exc
        except httpx.DecodingError as exc:
            raise FetchError(ErrorKind.DECODING, str(exc)) from exc
        except httpx.HTTPError as exc:
            raise FetchError(ErrorKind.PROTOCOL, f"{type(exc).__name__}: {exc}") from exc
