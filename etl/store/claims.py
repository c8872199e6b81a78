"""Coordination between concurrent runs through PostgreSQL: per-host request slots (one pace
for every process) and page claims (a page one run is fetching is not fetched by another)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

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
