"""Loading into PostgreSQL: the last stage. Plain functions over an Engine and plain data.

The statements live in ``sql/queries/*.sql``; this module only binds parameters and shapes
results. Every write is idempotent (keyed upserts), so a killed run can simply be rerun.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from etl.config import Source
from etl.db import sql_dir
from etl.feeds import FeedEntry
from etl.normalize import ArticleRecord


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
    """What one poll of one feed produced, as the store needs it."""

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

    @property
    def failed(self) -> bool:
        return self.error_kind is not None


def record_poll(engine: Engine, run_id: int | None, outcome: PollOutcome) -> None:
    """Appends to the poll log and updates the feed's state in one transaction."""
    with engine.begin() as conn:
        conn.execute(query("record_poll"), {
            "feed_id": outcome.feed_id, "run_id": run_id, "url": outcome.url,
            "http_status": outcome.http_status, "bytes": outcome.bytes,
            "duration_ms": outcome.duration_ms, "entries_seen": outcome.entries_seen,
            "entries_new": outcome.entries_new, "error_kind": outcome.error_kind,
            "error": outcome.error,
        })
        conn.execute(query("update_feed_state"), {
            "feed_id": outcome.feed_id, "http_status": outcome.http_status,
            "etag": outcome.etag, "last_modified": outcome.last_modified,
            "body_hash": outcome.body_hash, "failed": outcome.failed,
            "error": f"{outcome.error_kind}: {outcome.error}" if outcome.failed else None,
            "entries_new": outcome.entries_new, "next_poll_in": outcome.next_poll_in,
        })


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


def upsert_articles(engine: Engine, records: Sequence[ArticleRecord],
                    revision_reason: str = "refetch") -> LoadResult:
    """Loads a batch in one transaction; a key repeated in the batch is written once.
    A row whose text changed keeps its previous version in ``article_revisions``."""
    result = LoadResult()
    unique: dict[str, ArticleRecord] = {}
    for rec in records:
        unique.setdefault(rec.canonical_url, rec)
    with engine.begin() as conn:
        for rec in unique.values():
            params = asdict(rec)
            params["revision_reason"] = revision_reason
            row = conn.execute(query("upsert_article"), params).first()
            if row is None:
                result.unchanged += 1
            elif row.inserted:
                result.inserted += 1
            else:
                result.updated += 1
        for rec in records:
            if rec.feed_id is not None:
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
                      slugs: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Articles that have an archived page, with where its newest copy is (for reextract)."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query("archived_articles"), {
            "since": since, "until": until, "slugs": list(slugs)}).mappings()]
