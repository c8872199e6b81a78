"""Articles in PostgreSQL: the idempotent batch upsert (with exact-duplicate detection and
revisions), the archive index, and the lookups other stages make by URL.

Every write is keyed, so a killed run can simply be rerun.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from etl.models import ArchiveRef, ArticleRecord, ExtractionStatus, LoadResult
from etl.store.queries import query
from etl.store.retry import is_transient, retry_on_conflict, retry_transient

log = logging.getLogger(__name__)

# Bodies shorter than this (teasers, "read more" summaries) are too generic to call two pages
# the same article by their hash alone.
EXACT_HASH_MIN_WORDS = 30
# Statuses whose text is a whole article (a feed summary is not, even when long).
_FULL_TEXT = frozenset({ExtractionStatus.OK, ExtractionStatus.RECALL, ExtractionStatus.FEED_CONTENT})


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
    what = f"loading {len(ordered)} article(s)"
    try:
        return retry_on_conflict(lambda: _upsert_batch(engine, ordered, links, revision_reason), what=what)
    except Exception as exc:
        if isinstance(exc, DBAPIError) and is_transient(exc):
            raise
        # One row the database refused (whatever normalization missed) must not cost the
        # batch: load again, each row in its own savepoint, and report the rows that failed.
        log.warning("%s failed (%s); loading row by row", what, str(exc).splitlines()[0][:300])
        return retry_on_conflict(lambda: _upsert_batch(engine, ordered, links, revision_reason, isolate=True),
                                 what=what)


def _upsert_batch(engine: Engine, unique: Sequence[ArticleRecord], links: Sequence[ArticleRecord],
                  revision_reason: str, isolate: bool = False) -> LoadResult:
    result = LoadResult()
    duplicate_of: dict[str, int] = {}
    with engine.begin() as conn:
        if not isolate:
            if _shares_a_hash(unique):
                _upsert_rows(conn, unique, links, revision_reason, result, duplicate_of)
            else:
                _upsert_set(conn, unique, links, revision_reason, result)
            return result
        failed: set[str] = set()
        for rec in unique:
            try:
                with conn.begin_nested():
                    _upsert_rows(conn, [rec], [], revision_reason, result, duplicate_of)
            except Exception as exc:
                if isinstance(exc, DBAPIError) and is_transient(exc):
                    raise
                failed.add(rec.canonical_url)
                result.failed.append((rec.canonical_url, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"[:500]))
        for link in links:
            if link.canonical_url in failed:
                continue
            try:
                with conn.begin_nested():
                    _upsert_rows(conn, [], [link], revision_reason, result, duplicate_of)
            except Exception as exc:
                if isinstance(exc, DBAPIError) and is_transient(exc):
                    raise
                result.failed.append((link.canonical_url, f"feed reference: {type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0]}"[:500]))
    return result


def _shares_a_hash(records: Sequence[ArticleRecord]) -> bool:
    """Whether two records of the batch have the same text: then one may be an exact duplicate
    of the other, which only loading them one after the other decides as before (the set-based
    load looks duplicates up against the rows stored before the batch)."""
    counts = Counter(r.content_hash for r in records if r.content_hash is not None)
    return any(n > 1 for n in counts.values())


def _check_hash(rec: ArticleRecord) -> bool:
    return (rec.content_hash is not None and (rec.word_count or 0) >= EXACT_HASH_MIN_WORDS
            and rec.extraction_status in _FULL_TEXT)


_ROW_FIELDS = ("source_id", "url", "final_url", "canonical_url", "guid", "title", "description", "body",
               "language", "authors", "published_at", "updated_at", "fetched_at", "content_hash",
               "http_status", "extraction_status", "extraction_error", "sitename", "categories", "tags",
               "image_url", "word_count", "page_canonical_url")


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _upsert_set(conn: Connection, unique: Sequence[ArticleRecord], links: Sequence[ArticleRecord],
                revision_reason: str, result: LoadResult, duplicate_of: dict[str, int] | None = None) -> None:
    """The batch in five statements whatever its size: exact duplicates looked up (against the
    rows stored before the statement), their URLs recorded, the other rows upserted (with
    revisions), and the feed references linked, counting into ``result``. ``duplicate_of``
    (canonical URL → stored article) is filled by the rows and read by the links: a caller that
    loads a batch in several calls (:func:`_upsert_rows`) passes the same one to each."""
    duplicate_of = {} if duplicate_of is None else duplicate_of
    if unique:
        found = conn.execute(query("find_exact_duplicates"), {
            "urls": [r.canonical_url for r in unique], "hashes": [r.content_hash for r in unique],
            "check_hash": [_check_hash(r) for r in unique]}).all()
        if found:
            conn.execute(query("record_exact_duplicates"), {
                "urls": [f.canonical_url for f in found], "article_ids": [f.article_id for f in found],
                "reasons": [f.reason for f in found]})
            duplicate_of.update((f.canonical_url, f.article_id) for f in found)
            result.duplicates += len(found)
        rows = [r for r in unique if r.canonical_url not in duplicate_of]
        if rows:
            payload = json.dumps([{k: _json_value(getattr(r, k)) for k in _ROW_FIELDS} for r in rows])
            written = {w.canonical_url: w for w in conn.execute(query("upsert_articles"), {
                "rows": payload, "revision_reason": revision_reason})}
            for rec in rows:  # in URL order, as row by row: new ids go to the story stage in it
                w = written.get(rec.canonical_url)
                if w is None:
                    result.unchanged += 1
                elif w.inserted:
                    result.inserted += 1
                    result.new_ids.append(w.id)
                else:
                    result.updated += 1
    seen: set[tuple[int, str]] = set()
    to_article: list[ArticleRecord] = []
    to_duplicate: list[ArticleRecord] = []
    for rec in links:
        key = (rec.feed_id, rec.entry_key)
        if rec.feed_id is None or key in seen:  # a key twice: the first reference stands
            continue
        seen.add(key)  # type: ignore[arg-type]
        (to_duplicate if rec.canonical_url in duplicate_of else to_article).append(rec)
    if to_article:
        conn.execute(query("link_articles_feeds"), {
            "feed_ids": [r.feed_id for r in to_article], "entry_keys": [r.entry_key for r in to_article],
            "entry_urls": [r.url for r in to_article], "canonical_urls": [r.canonical_url for r in to_article]})
    if to_duplicate:
        conn.execute(query("link_duplicates_feeds"), {
            "feed_ids": [r.feed_id for r in to_duplicate], "entry_keys": [r.entry_key for r in to_duplicate],
            "entry_urls": [r.url for r in to_duplicate],
            "article_ids": [duplicate_of[r.canonical_url] for r in to_duplicate]})


def _upsert_rows(conn: Connection, unique: Sequence[ArticleRecord], links: Sequence[ArticleRecord],
                 revision_reason: str, result: LoadResult, duplicate_of: dict[str, int]) -> None:
    """The batch's statements one record at a time, then the links: each record sees the ones
    before it as stored, so that a record can be an exact duplicate of an earlier one of the
    same batch (and, in a savepoint of its own, fail alone)."""
    for rec in unique:
        _upsert_set(conn, [rec], [], revision_reason, result, duplicate_of)
    if links:
        _upsert_set(conn, [], links, revision_reason, result, duplicate_of)


@retry_transient("looking up stored URLs")
def stored_urls(engine: Engine, canonical_urls: Sequence[str]) -> set[str]:
    """Which of these URLs already belong to a stored article (its own or another URL of it)."""
    if not canonical_urls:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(query("stored_urls"), {"urls": list(canonical_urls)}).scalars())


def latest_articles(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query("latest_articles"), {"limit": limit}).mappings()]


def article_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(query("article_count")).scalar_one()


@retry_transient("indexing the archive")
def index_archive(engine: Engine, refs: Sequence[tuple[ArchiveRef | None, str | None, int | None]]) -> int:
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
