"""Coordination between concurrent runs through PostgreSQL: per-host request slots (one pace
for every process) and page claims (a page one run is fetching is not fetched by another)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from etl.store.queries import query
from etl.store.retry import retry_transient


def host_slot_reserver(engine: Engine) -> Callable[[str, float], float]:
    """Per-host request spacing shared by every process through PostgreSQL, for
    ``Fetcher(host_slots=...)``: an ingest and a backfill running at once keep one pace."""

    def reserve(host: str, interval: float) -> float:
        with engine.begin() as conn:
            return float(conn.execute(query("reserve_host_slot"), {"host": host, "interval": interval}).scalar_one())

    return reserve


@dataclass
class _Ask:
    host: str
    interval: float
    leader: bool = False
    start: float | None = None  # time.monotonic() when the slot starts
    error: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)


class HostSlots:
    """:func:`host_slot_reserver` with group reservation: the requests that need a slot at the
    same moment (a poll chunk runs up to ``fetch_concurrency`` of them at once) share one
    statement instead of one transaction each.

    Leader/follower, no extra thread: the first request in runs the statement for every request
    waiting at that moment; requests that arrive meanwhile wait, and the first of them leads the
    next statement. k requests to one host in a group get k consecutive slots, the same as k
    separate reservations would."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._pending: list[_Ask] = []
        self._leading = False
        self.requests = self.statements = 0

    def __call__(self, host: str, interval: float) -> float:
        ask = _Ask(host, interval)
        with self._lock:
            self._pending.append(ask)
            self.requests += 1
            if not self._leading:
                self._leading = ask.leader = True
        if not ask.leader:
            ask.done.wait()  # served, or promoted to lead the next group
        if ask.start is None and ask.error is None:
            self._lead()
        if ask.error is not None:
            raise ask.error
        assert ask.start is not None
        return max(0.0, ask.start - time.monotonic())

    def _lead(self) -> None:
        with self._lock:
            group, self._pending = self._pending, []
            self.statements += 1
        by_host: dict[str, list[_Ask]] = {}
        for ask in group:
            by_host.setdefault(ask.host, []).append(ask)
        hosts = sorted(by_host)
        spacing = [max(a.interval for a in by_host[h]) for h in hosts]
        try:
            with self._engine.begin() as conn:
                rows = conn.execute(query("reserve_host_slots"), {
                    "hosts": hosts, "counts": [len(by_host[h]) for h in hosts], "intervals": spacing}).all()
            now = time.monotonic()
            for host, wait in rows:
                secs = spacing[hosts.index(host)]
                for i, ask in enumerate(by_host[host]):
                    ask.start = now + float(wait) + i * secs
        except Exception as exc:  # every request of the group sees it (the Fetcher falls back)
            for ask in group:
                ask.error = exc
        with self._lock:
            following = self._pending[0] if self._pending else None
            if following is None:
                self._leading = False
            else:
                following.leader = True
        for ask in group:
            ask.done.set()
        if following is not None:
            following.done.set()


@retry_transient("claiming pages")
def claim_pages(engine: Engine, canonical_urls: Iterable[str], owner: str, ttl: float) -> set[str]:
    """Claims pages for fetching (in URL order, so overlapping claims never deadlock) and
    returns those this run got; the others are being fetched by another run right now."""
    urls = sorted(set(canonical_urls))
    if not urls:
        return set()
    with engine.begin() as conn:
        return set(conn.execute(query("claim_pages"), {"urls": urls, "owner": owner, "ttl": ttl}).scalars())


@retry_transient("releasing page claims")
def release_pages(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(query("release_pages"), {"owner": owner})
