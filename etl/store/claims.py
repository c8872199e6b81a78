"""Coordination between concurrent runs through PostgreSQL: per-host request slots (one pace
for every process) and page claims (a page one run is fetching is not fetched by another)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import Engine

from etl.store.queries import query


def host_slot_reserver(engine: Engine) -> Callable[[str, float], float]:
    """Per-host request spacing shared by every process through PostgreSQL, for
    ``Fetcher(host_slots=...)``: an ingest and a backfill running at once keep one pace."""

    def reserve(host: str, interval: float) -> float:
        with engine.begin() as conn:
            return float(conn.execute(query("reserve_host_slot"), {"host": host, "interval": interval}).scalar_one())

    return reserve


class HostSlots:
    """:func:`host_slot_reserver` that can also reserve ahead: :meth:`reserve_ahead` takes the
    slots a leased chunk will use (n feeds of a host → n consecutive slots) in one statement,
    and each request then uses one of them instead of a round trip of its own.

    A slot is only used from shortly before its start until a quarter interval after it
    (``LATE``): a slot missed by more (its feed was skipped, or the thread ran late) is dropped,
    and that request reserves a fresh one, so no request is ever sent closer than 3/4 of the
    interval to another process's reserved slot."""

    LATE = 0.25  # of the interval

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._one = host_slot_reserver(engine)
        self._lock = threading.Lock()
        self._ahead: dict[str, deque[tuple[float, float]]] = {}  # host → (monotonic start, interval)

    def reserve_ahead(self, wanted: Mapping[str, tuple[int, float]]) -> None:
        """``wanted``: host → (number of requests, interval); hosts without spacing are left out."""
        rows = sorted((h, n, secs) for h, (n, secs) in wanted.items() if n > 0 and secs > 0)
        if not rows:
            return
        with self._engine.begin() as conn:
            waits = conn.execute(query("reserve_host_slots"), {
                "hosts": [r[0] for r in rows], "counts": [r[1] for r in rows],
                "intervals": [r[2] for r in rows]}).all()
        now = time.monotonic()
        by_host = {h: (n, secs) for h, n, secs in rows}
        with self._lock:
            for host, wait in waits:
                n, secs = by_host[host]
                queue = self._ahead.setdefault(host, deque())
                queue.extend((now + float(wait) + i * secs, secs) for i in range(n))

    def __call__(self, host: str, interval: float) -> float:
        now = time.monotonic()
        with self._lock:
            queue = self._ahead.get(host)
            while queue:
                start, secs = queue.popleft()
                if start >= now - self.LATE * secs and secs >= interval:
                    return max(0.0, start - now)
        return self._one(host, interval)


def claim_pages(engine: Engine, canonical_urls: Iterable[str], owner: str, ttl: float) -> set[str]:
    """Claims pages for fetching (in URL order, so overlapping claims never deadlock) and
    returns those this run got; the others are being fetched by another run right now."""
    urls = sorted(set(canonical_urls))
    if not urls:
        return set()
    with engine.begin() as conn:
        return set(conn.execute(query("claim_pages"), {"urls": urls, "owner": owner, "ttl": ttl}).scalars())


def release_pages(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(query("release_pages"), {"owner": owner})
