"""Feed state in PostgreSQL: which feeds are due, leases between workers, the poll log, the
validators of conditional requests, per-host back-off, and which entries are new."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from etl.models import FeedEntry, FeedRow, HostBackoff, PollOutcome, Validators
from etl.store.queries import query
from etl.store.retry import retry_transient


def due_feeds(engine: Engine, slugs: Sequence[str] = (), force: bool = False) -> list[FeedRow]:
    with engine.connect() as conn:
        rows = conn.execute(query("due_feeds"), {"force": force, "slugs": list(slugs)}).mappings()
        return [FeedRow(**row) for row in rows]


@retry_transient("leasing feeds")
def lease_feeds(engine: Engine, *, worker: str, limit: int, lease_seconds: float,
                run_started: datetime, slugs: Sequence[str] = (), force: bool = False) -> list[FeedRow]:
    """Claims up to ``limit`` due feeds for ``worker`` (FOR UPDATE SKIP LOCKED + a lease that
    expires), so that concurrent runs on any number of machines never poll one feed twice.
    A run polls a feed at most once (``run_started``); parked hosts are left alone."""
    names = {f.name for f in fields(FeedRow)}
    with engine.begin() as conn:
        rows = conn.execute(query("lease_feeds"), {
            "worker": worker, "limit": limit, "lease_seconds": lease_seconds,
            "run_started": run_started, "slugs": list(slugs), "force": force,
        }).mappings().all()
    return [FeedRow(**{k: v for k, v in row.items() if k in names}) for row in rows]


@retry_transient("counting leasable feeds")
def count_leasable_feeds(engine: Engine, *, run_started: datetime, slugs: Sequence[str] = (),
                         force: bool = False) -> int:
    """How many feeds :func:`lease_feeds` could still hand this run (the same conditions)."""
    with engine.connect() as conn:
        return conn.execute(query("count_leasable_feeds"), {
            "run_started": run_started, "slugs": list(slugs), "force": force}).scalar_one()


@retry_transient("releasing leases")
def release_leases(engine: Engine, worker: str, feed_ids: Sequence[int]) -> None:
    with engine.begin() as conn:
        conn.execute(query("release_leases"), {"worker": worker, "ids": list(feed_ids)})


def record_poll(engine: Engine, run_id: int | None, outcome: PollOutcome) -> None:
    """Appends to the poll log and updates the feed's state in one transaction."""
    record_polls(engine, run_id, [outcome])


@retry_transient("recording polls")
def record_polls(engine: Engine, run_id: int | None, outcomes: Sequence[PollOutcome]) -> None:
    """Many polls in one transaction (executemany): the poll log rows, each feed's new state,
    and the release of its lease. Skipped feeds only get their next poll time."""
    polled = [o for o in outcomes if not o.skipped]
    skipped = [o for o in outcomes if o.skipped]
    with engine.begin() as conn:
        if polled:
            conn.execute(query("record_poll"), [{
                "feed_id": o.feed_id, "run_id": run_id, "url": o.url,
                "http_status": o.http_status, "bytes": o.bytes,
                "duration_ms": o.duration_ms, "entries_seen": o.entries_seen,
                "entries_new": o.entries_new, "error_kind": o.error_kind, "error": o.error,
            } for o in polled])
            conn.execute(query("update_feed_state"), [{
                "feed_id": o.feed_id, "http_status": o.http_status,
                "etag": o.etag, "last_modified": o.last_modified,
                "replace_validators": o.replace_validators,
                "body_hash": o.body_hash, "failed": o.failed,
                "error": f"{o.error_kind}: {o.error}" if o.failed else None,
                "entries_new": o.entries_new, "next_poll_in": o.next_poll_in,
                "new_url": o.new_url, "deactivate_reason": o.deactivate_reason,
                "entry_interval": o.entry_interval, "newest_entry_at": o.newest_entry_at,
                "feed_ttl": o.feed_ttl, "parsed": o.parsed,
            } for o in polled])
        if skipped:
            conn.execute(query("defer_feed"), [{"feed_id": o.feed_id, "until": o.skipped_until}
                                               for o in skipped])


@retry_transient("committing validators")
def commit_validators(engine: Engine, validators: Sequence[Validators]) -> None:
    if validators:
        with engine.begin() as conn:
            conn.execute(query("commit_validators"), [asdict(v) for v in validators])


@retry_transient("reading the clock")
def db_now(engine: Engine) -> datetime:
    """The database's clock: every worker compares times against the same one."""
    with engine.connect() as conn:
        return conn.execute(query("db_now")).scalar_one()


@retry_transient("saving host back-offs")
def save_host_backoffs(engine: Engine, backoffs: Sequence[HostBackoff]) -> None:
    """Persists Retry-After per host so that every worker and later run respects it."""
    if not backoffs:
        return
    with engine.begin() as conn:
        conn.execute(query("save_host_backoff"), [
            {"host": b.host, "until": b.until, "http_status": b.http_status, "reason": b.reason}
            for b in backoffs])


@retry_transient("reading host back-offs")
def active_host_backoffs(engine: Engine) -> list[HostBackoff]:
    with engine.connect() as conn:
        rows = conn.execute(query("active_host_backoffs")).all()
    return [HostBackoff(host=r.host, until=r.until, http_status=r.http_status, reason=r.reason or "")
            for r in rows]


@retry_transient("finding new entries")
def new_entries(engine: Engine, feed_id: int, entries: Iterable[FeedEntry]) -> list[FeedEntry]:
    """Entries of this feed that still need fetching.

    An entry is known when this feed listed its key before, or when any feed brought an article
    with the same canonical URL (then only the feed reference is recorded).
    """
    unique: dict[str, FeedEntry] = {}
    for e in entries:
        unique.setdefault(e.entry_key, e)
    if not unique:
        return []
    with engine.begin() as conn:
        seen = set(conn.execute(query("touch_known_entries"),
                                {"feed_id": feed_id, "keys": list(unique)}).scalars())
        rest = [e for k, e in unique.items() if k not in seen]
        if rest:
            linked = set(conn.execute(query("link_known_urls"), {
                "feed_id": feed_id,
                "keys": [e.entry_key for e in rest],
                "urls": [e.link for e in rest],
                "canonical": [e.canonical_url for e in rest],
            }).scalars())
            rest = [e for e in rest if e.entry_key not in linked]
    # Two entries of one feed may point at one URL; fetch it once.
    by_url: dict[str, FeedEntry] = {}
    for e in rest:
        by_url.setdefault(e.canonical_url, e)
    return list(by_url.values())


def feed_status(conn: Connection | Engine) -> list[dict[str, Any]]:
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return [dict(r) for r in c.execute(query("feed_status")).mappings()]
    return [dict(r) for r in conn.execute(query("feed_status")).mappings()]


@retry_transient("listing held feeds")
def held_feeds(engine: Engine, worker: str, slugs: Sequence[str] = ()) -> dict[str, int]:
    """Active feeds leased by other workers right now (holder → count): what this run skipped."""
    with engine.connect() as conn:
        return {r.leased_by: r.feeds for r in conn.execute(query("held_feeds"), {"worker": worker, "slugs": list(slugs)})}


def prune_feed_polls(engine: Engine, cutoff: datetime) -> int:
    """Retention: deletes the poll log older than ``cutoff``; feeds keep their current state."""
    with engine.begin() as conn:
        return conn.execute(query("prune_feed_polls"), {"cutoff": cutoff}).rowcount
