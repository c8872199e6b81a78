"""HTTP fetching with manners and limits: the only module that talks to the network.

Why not ``httpx`` defaults or trafilatura's ``fetch_url``: we must refuse non-public addresses
at every redirect hop (feeds are untrusted input), cap bodies while streaming (a gzip bomb
inflates past any Content-Length), space requests per host, and report *why* a fetch failed in
a form the database can keep.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from etl.config import Settings

MAX_REDIRECTS = 5


class FetchError(Exception):
    """A fetch that produced no usable response; ``kind`` is stored with the error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class FetchResult:
    url: str                      # what was asked for
    final_url: str                # after redirects
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    elapsed_ms: int = 0
    redirects: list[tuple[int, str]] = field(default_factory=list)  # (status, location) per hop
    error_kind: str | None = None  # 'timeout', 'connect', 'dns', 'reset', 'too_large', 'blocked', 'redirect', 'http', ...
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_kind is None and self.status is not None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def describe_error(self) -> str:
        return f"{self.error_kind}: {self.error}" if self.error_kind else ""


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
        raise FetchError("blocked", f"scheme {parts.scheme or '(none)'!r} is not allowed: {url}")
    host = parts.hostname
    if not host:
        raise FetchError("blocked", f"URL has no host: {url}")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                   proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise FetchError("dns", f"cannot resolve {host}: {exc}") from exc
    for info in infos:
        addr = info[4][0]
        if not _is_public(addr):
            raise FetchError("blocked", f"{host} resolves to non-public address {addr} "
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

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.gate = HostGate(settings.per_host_concurrency)
        self._global = threading.Semaphore(settings.fetch_concurrency)
        self.client = httpx.Client(
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate, br"},
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=settings.fetch_concurrency * 2),
        )

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
    ) -> FetchResult:
        """GET ``url`` following up to 5 redirects, each hop checked; never raises for I/O.

        ``min_interval`` is the owning source's politeness: seconds between request starts
        to one host (the sources file's ``min_request_interval``).
        """
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
                check_url_allowed(current, self.settings.allow_private_networks)
                status, resp_headers, body = self._get_once(current, headers, max_bytes, deadline, min_interval)
                result.status, result.headers, result.final_url = status, resp_headers, current
                if status in (301, 302, 303, 307, 308) and "location" in resp_headers:
                    nxt = urljoin(current, resp_headers["location"])
                    result.redirects.append((status, nxt))
                    if nxt in seen:
                        raise FetchError("redirect", f"redirect loop at {nxt}")
                    seen.add(nxt)
                    current = nxt
                    continue
                result.content = body
                if not (200 <= status < 300 or status == 304):
                    result.error_kind, result.error = "http", f"HTTP {status}"
                break
            else:
                raise FetchError("redirect", f"more than {MAX_REDIRECTS} redirects")
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
                    raise FetchError("too_large", f"Content-Length {declared} exceeds cap of {max_bytes} bytes")
                chunks: list[bytes] = []
                size = 0
                # iter_bytes decodes gzip/deflate/br, so the cap applies to the inflated size:
                # a decompression bomb stops here, at max_bytes.
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchError("too_large", f"body exceeds cap of {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError("timeout", f"total time over {self.settings.total_timeout:.0f}s")
                    chunks.append(chunk)
                return resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise FetchError("timeout", f"{type(exc).__name__}: {exc or 'timed out'}") from exc
        except httpx.ConnectError as exc:
            msg = str(exc)
            kind = "dns" if "Name or service not known" in msg or "getaddrinfo" in msg else "connect"
            raise FetchError(kind, msg or type(exc).__name__) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise FetchError("reset", f"{type(exc).__name__}: {exc}") from exc
        except httpx.DecodingError as exc:
            raise FetchError("decoding", str(exc)) from exc
        except httpx.HTTPError as exc:
            raise FetchError("protocol", f"{type(exc).__name__}: {exc}") from exc
