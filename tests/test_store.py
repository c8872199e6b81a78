"""Loading is idempotent: reruns add nothing, changes update in place, failures never erase."""

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from etl import models, store
from etl.config import parse_sources
from etl.models import ArticleRecord, FeedEntry
from etl.parse.normalize import content_hash

REGISTRY = """
[[sources]]
slug = "s"
  [[sources.feeds]]
  url = "https://ex.com/rss"
  language = "en"
"""


def _setup(engine: Engine) -> tuple[int, int]:
    ids = store.sync_sources(engine, parse_sources(REGISTRY))
    feed = store.due_feeds(engine)[0]
    return ids["s"], feed.id


def _record(source_id: int, feed_id: int, n: int, body: str = "Body text", status: str = "ok") -> ArticleRecord:
    url = f"https://ex.com/a/{n}"
    return ArticleRecord(
        source_id=source_id, feed_id=feed_id, entry_key=f"g{n}", url=url, canonical_url=url,
        final_url=url, guid=f"g{n}", title=f"T{n}", description=None, body=body, language="en",
        authors=["A"], published_at=datetime(2026, 11, 20, 12, tzinfo=UTC), updated_at=None,
        fetched_at=datetime.now(UTC), content_hash=content_hash(body), http_status=200,
        extraction_status=status, extraction_error=None,
    )


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_upsert_twice_adds_nothing(engine: Engine) -> None:
    sid, fid = _setup(engine)
    batch = [_record(sid, fid, n) for n in range(5)]
    assert store.upsert_articles(engine, batch) == models.LoadResult(inserted=5)
    assert store.upsert_articles(engine, batch) == models.LoadResult(unchanged=5)
    assert _count(engine, "articles") == 5
    assert _count(engine, "article_feeds") == 5


def test_same_key_twice_in_one_batch(engine: Engine) -> None:
    sid, fid = _setup(engine)
    rec = _record(sid, fid, 1)
    assert store.upsert_articles(engine, [rec, rec]).inserted == 1


def test_changed_text_updates_row_in_place(engine: Engine) -> None:
    sid, fid = _setup(engine)
    store.upsert_articles(engine, [_record(sid, fid, 1, body="old")])
    assert store.upsert_articles(engine, [_record(sid, fid, 1, body="new")]).updated == 1
    with engine.connect() as conn:
        row = conn.execute(text("SELECT body, updated_at FROM articles")).one()
    assert row.body == "new" and row.updated_at is not None
    assert _count(engine, "articles") == 1


def test_failed_extraction_never_overwrites_good_text(engine: Engine) -> None:
    sid, fid = _setup(engine)
    store.upsert_articles(engine, [_record(sid, fid, 1, body="good text")])
    failed = replace(_record(sid, fid, 1, body="summary"), extraction_status="failed")
    assert store.upsert_articles(engine, [failed]).unchanged == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT body FROM articles")).scalar_one() == "good text"


def test_new_entries_skips_known_keys_and_known_urls(engine: Engine) -> None:
    sid, fid = _setup(engine)
    store.upsert_articles(engine, [_record(sid, fid, 1)])
    entries = [
        FeedEntry(entry_key="g1", link="https://ex.com/a/1", canonical_url="https://ex.com/a/1"),
        # GUID changed, same article: no refetch, the new key is linked to the same row
        FeedEntry(entry_key="g1-renamed", link="https://ex.com/a/1?utm_source=x", canonical_url="https://ex.com/a/1"),
        FeedEntry(entry_key="g2", link="https://ex.com/a/2", canonical_url="https://ex.com/a/2"),
        FeedEntry(entry_key="g3", link="https://ex.com/a/2#dup", canonical_url="https://ex.com/a/2"),
    ]
    fresh = store.new_entries(engine, fid, entries)
    assert [e.entry_key for e in fresh] == ["g2"]
    with engine.connect() as conn:
        keys = conn.execute(text("SELECT entry_key FROM article_feeds ORDER BY 1")).scalars().all()
    assert keys == ["g1", "g1-renamed"]
