"""Loading into PostgreSQL: the last stage. Plain functions over an Engine and plain data.

The statements live in ``sql/queries/*.sql``; this module only binds parameters and shapes
results. Every write is idempotent (keyed upserts), so a killed run can simply be rerun.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from etl.config import Source
from etl.fetch.http import HostBackoff
from etl.parse.feeds import FeedEntry
from etl.parse.normalize import ArticleRecord
from etl.store.db import sql_dir

log = logging.getLogger(__name__)


@functools.cache
def query(name: str) -> Any:
    """A named statement from ``sql/queries/<name>.sql``, parsed once."""
    return text((sql_dir() / "queries" / f"{name}.sql").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class FeedRow:
    id: int
    url: str
    language: str | None
    section: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    consecutive_failures: int
    source_id: int
    slug: str
    min_request_interval: float
    # schedule inputs (filled by lease_feeds; the defaults keep older queries working)
    min_interval: float | None = None      # seconds, per-feed floor from the sources file
    max_interval: float | None = None      # seconds, per-feed ceiling
    entry_interval: float | None = None    # seconds, usual gap between the feed's entries
    newest_entry_at: datetime | None = None
    feed_ttl: float | None = None          # seconds, the feed's own <ttl>/sy:updatePeriod hint
    host: str | None = None


def sync_sources(engine: Engine, sources: Sequence[Source], deactivate_missing: bool = True) -> dict[str, int]:
    """Brings sources/feeds in line with the registry; returns slug → source id.

    Running it twice changes nothing the second time; a feed that left the file is deactivated.
    """
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        for src in sources:
            row = conn.execute(query("upsert_source"), {
                "slug": src.slug, "name": src.name, "homepage": src.homepage,
                "min_request_interval": src.min_request_interval,
            }).first()
            source_id = row[0] if row else conn.execute(
                text("SELECT id FROM sources WHERE slug = :slug"), {"slug": src.slug}).scalar_one()
            ids[src.slug] = source_id
            for feed in src.feeds:
                # A feed that moved (301/308) and is now listed under its new URL keeps its row.
                conn.execute(query("adopt_moved_feed"), {"url": feed.url})
                conn.execute(query("upsert_feed"), {
                    "source_id": source_id, "url": feed.url, "language": feed.language,
                    "section": feed.section, "min_interval": feed.min_interval,
                    "max_interval": feed.max_interval,
                })
        if deactivate_missing:
            conn.execute(query("deactivate_removed_feeds"),
                         {"urls": [f.url for s in sources for f in s.feeds]})
    return ids


def due_feeds(engine: Engine, slugs: Sequence[str] = (), force: bool = False) -> list[FeedRow]:
    with engine.connect() as conn:
        rows = conn.execute(query("due_feeds"), {"force": force, "slugs": list(slugs)}).mappings()
        return [FeedRow(**row) for row in rows]


def start_run(engine: Engine, kind: str, parameters: dict[str, Any], flow_run_id: UUID | str | None = None) -> int:
    with engine.begin() as conn:
        return conn.execute(query("start_run"), {
            "flow_run_id": str(flow_run_id) if flow_run_id else None,
            "kind": kind, "parameters": json.dumps(parameters, default=str),
        }).scalar_one()


@dataclass
class RunCounts:
    feeds_polled: int = 0
    feeds_failed: int = 0
    entries_seen: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    duplicates: int = 0
    errors: int = 0

    def add(self, other: "RunCounts") -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)


def finish_run(engine: Engine, run_id: int, counts: RunCounts, status: str = "completed",
               error: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(query("finish_run"), {"run_id": run_id, "status": status, "error": error,
                                            **asdict(counts)})


@dataclass(frozen=True)
class PollOutcome:
    """What one poll of one feed produced, as the store needs it.

    A ``skipped_until`` outcome means the feed's host is parked (Retry-After seen by this or
    another worker): no request, no poll-log row, no failure; the feed is due again then.
    """

    feed_id: int
    url: str
    http_status: int | None
    bytes: int | None
    duration_ms: int
    entries_seen: int
    entries_new: int
    error_kind: str | None
    error: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    next_poll_in: float  # seconds until the feed is due again
    replace_validators: bool = False        # a 200: its validators replace the stored ones
    new_url: str | None = None              # 301/308: poll here from now on
    deactivate_reason: str | None = None    # 410 Gone
    entry_interval: float | None = None
    newest_entry_at: datetime | None = None
    feed_ttl: float | None = None
    parsed: bool = False                    # the body was parsed this poll (feed_ttl is fresh)
    skipped_until: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.error_kind is not None

    @property
    def skipped(self) -> bool:
        return self.skipped_until is not None


def record_poll(engine: Engine, run_id: int | None, outcome: PollOutcome) -> None:
    """Appends to the poll log and updates the feed's state in one transaction."""
    record_polls(engine, run_id, [outcome])


@dataclass(frozen=True)
class Validators:
    """A feed's conditional-request state, saved once its new entries are loaded."""

    feed_id: int
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    replace_validators: bool


def commit_validators(engine: Engine, validators: Sequence[Validators]) -> None:
    if validators:
        with engine.begin() as conn:
            conn.execute(query("commit_validators"), [asdict(v) for v in validators])


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


def db_now(engine: Engine) -> datetime:
    """The database's clock: every worker compares times against the same one."""
    with engine.connect() as conn:
        return conn.execute(text("SELECT now()")).scalar_one()


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


def release_leases(engine: Engine, worker: str, feed_ids: Sequence[int]) -> None:
    with engine.begin() as conn:
        conn.execute(query("release_leases"), {"worker": worker, "ids": list(feed_ids)})


def save_host_backoffs(engine: Engine, backoffs: Sequence[HostBackoff]) -> None:
    """Persists Retry-After per host so that every worker and later run respects it."""
    if not backoffs:
        return
    with engine.begin() as conn:
        conn.execute(query("save_host_backoff"), [
            {"host": b.host, "until": b.until, "http_status": b.http_status, "reason": b.reason}
            for b in backoffs])


def active_host_backoffs(engine: Engine) -> list[HostBackoff]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT host, until, http_status, reason FROM host_backoff WHERE until > now()")).all()
    return [HostBackoff(host=r.host, until=r.until, http_status=r.http_status, reason=r.reason or "")
            for r in rows]


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


@dataclass
class LoadResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # exact duplicates: no row added, URL and feed reference recorded
    new_ids: list[int] = field(default_factory=list, compare=False)  # inserted rows, for the dedup/story stage


# Bodies shorter than this (teasers, "read more" summaries) are too generic to call two pages
# the same article by their hash alone.
EXACT_HASH_MIN_WORDS = 30


def _exact_duplicate(conn: Connection, rec: ArticleRecord) -> tuple[int, str] | None:
    """The stored article this record duplicates exactly, with the reason, if any."""
    check_hash = (rec.content_hash is not None and (rec.word_count or 0) >= EXACT_HASH_MIN_WORDS
                  and rec.extraction_status in ("ok", "recall", "feed_content"))
    row = conn.execute(query("find_exact_duplicate"), {
        "canonical_url": rec.canonical_url, "content_hash": rec.content_hash, "check_hash": check_hash,
    }).first()
    return (row.article_id, row.reason) if row else None


def upsert_articles(engine: Engine, records: Sequence[ArticleRecord],
                    revision_reason: str = "refetch") -> LoadResult:
    """Loads a batch in one transaction; a key repeated in the batch is written once.
    A row whose text changed keeps its previous version in ``article_revisions``."""
    unique: dict[str, ArticleRecord] = {}
    for rec in records:
        unique.setdefault(rec.canonical_url, rec)
    # Two runs loading overlapping batches lock rows in the same order (by URL), so they wait
    # for each other instead of deadlocking; a deadlock that still happens (e.g. against the
    # story stage) rolls the whole batch back, and the batch is simply loaded again.
    ordered = [unique[url] for url in sorted(unique)]
    links = sorted((r for r in records if r.feed_id is not None), key=lambda r: (r.feed_id, r.entry_key))
    for attempt in range(DEADLOCK_RETRIES):
        try:
            return _upsert_batch(engine, ordered, links, revision_reason)
        except OperationalError as exc:
            if not isinstance(exc.orig, psycopg.errors.DeadlockDetected) or attempt == DEADLOCK_RETRIES - 1:
                raise
            log.warning("deadlock loading %d article(s); retrying", len(ordered))
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


DEADLOCK_RETRIES = 3


def _upsert_batch(engine: Engine, unique: Sequence[ArticleRecord], links: Sequence[ArticleRecord],
                  revision_reason: str) -> LoadResult:
    result = LoadResult()
    duplicate_of: dict[str, int] = {}
    with engine.begin() as conn:
        for rec in unique:
            dup = _exact_duplicate(conn, rec)
            if dup is not None:
                duplicate_of[rec.canonical_url] = dup[0]
                conn.execute(query("record_exact_duplicate"), {
                    "canonical_url": rec.canonical_url, "article_id": dup[0], "reason": dup[1]})
                result.duplicates += 1
                continue
            params = asdict(rec)
            params["revision_reason"] = revision_reason
            row = conn.execute(query("upsert_article"), params).first()
            if row is None:
                result.unchanged += 1
            elif row.inserted:
                result.inserted += 1
                result.new_ids.append(row.id)
            else:
                result.updated += 1
        for rec in links:
            if rec.canonical_url in duplicate_of:
                conn.execute(query("link_duplicate_feed"), {
                    "feed_id": rec.feed_id, "entry_key": rec.entry_key, "entry_url": rec.url,
                    "article_id": duplicate_of[rec.canonical_url]})
            else:
                conn.execute(query("link_article_feed"), {
                    "feed_id": rec.feed_id, "entry_key": rec.entry_key,
                    "entry_url": rec.url, "canonical_url": rec.canonical_url,
                })
    return result


def feed_status(conn: Connection | Engine) -> list[dict[str, Any]]:
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return [dict(r) for r in c.execute(query("feed_status")).mappings()]
    return [dict(r) for r in conn.execute(query("feed_status")).mappings()]


def latest_articles(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query("latest_articles"), {"limit": limit}).mappings()]


def article_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM articles")).scalar_one()


def index_archive(engine: Engine, refs: Sequence[tuple[Any, str | None, int | None]]) -> int:
    """Indexes archived responses: ``(ArchiveRef, canonical_url of the article or None,
    feed_id or None)`` each; the article id is looked up by canonical URL. Idempotent."""
    rows = [{
        "kind": ref.kind, "url": ref.url, "canonical_url": canonical, "feed_id": feed_id,
        "warc_file": ref.warc_file, "warc_offset": ref.offset, "warc_length": ref.length,
        "digest": ref.digest, "http_status": ref.http_status, "fetched_at": ref.fetched_at,
    } for ref, canonical, feed_id in refs if ref is not None]
    if not rows:
        return 0
    with engine.begin() as conn:
        conn.execute(query("index_archive_record"), rows)
    return len(rows)


def archived_articles(engine: Engine, since: Any = None, until: Any = None,
                      slugs: Sequence[str] = (), only_failed: bool = False) -> list[dict[str, Any]]:
    """Articles that have an archived page, with where its newest copy is (for reextract)."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query("archived_articles"), {
            "since": since, "until": until, "slugs": list(slugs), "only_failed": only_failed}).mappings()]


def host_slot_reserver(engine: Engine) -> Callable[[str, float], float]:
    """Per-host request spacing shared by every process through PostgreSQL, for
    ``Fetcher(host_slots=...)``: an ingest and a backfill running at once keep one pace."""

    def reserve(host: str, interval: float) -> float:
        with engine.begin() as conn:
            return float(conn.execute(query("reserve_host_slot"), {"host": host, "interval": interval}).scalar_one())

    return reserve


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


def stored_urls(engine: Engine, canonical_urls: Sequence[str]) -> set[str]:
    """Which of these URLs already belong to a stored article (its own or another URL of it)."""
    if not canonical_urls:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(query("stored_urls"), {"urls": list(canonical_urls)}).scalars())
