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


def _words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


_base_record = _record


def _load_story(engine: Engine) -> tuple[list[models.LoadResult], dict[str, list[tuple]]]:
    """Three batches that exercise every rule of the load; what each returned and what is stored."""
    sid, fid = _setup(engine)
    long = {n: _words(40, f"w{n}x") for n in range(20)}

    def _record(source_id: int, feed_id: int, n: int, body: str) -> ArticleRecord:  # counted words
        return replace(_base_record(source_id, feed_id, n, body=body), word_count=len(body.split()))

    first = [_record(sid, fid, n, body=long[n]) for n in range(10)]
    first.append(_record(sid, fid, 15, body="short teaser"))
    second = [*first[:10],
              _record(sid, fid, 3, body=long[3] + " corrected"),                      # text changed: revision
              replace(_record(sid, fid, 4, body="x"), extraction_status="failed"),    # never over good text
              *[_record(sid, fid, n, body=long[n]) for n in (10, 11, 12)],             # new
              replace(_record(sid, fid, 13, body=long[5]), entry_key="g13"),          # same text as 5: duplicate
              _record(sid, fid, 16, body="short teaser")]                             # short: not a duplicate
    second = [r for r in second if r.canonical_url != "https://ex.com/a/3" or r.body != long[3]]
    second = [r for r in second if r.canonical_url != "https://ex.com/a/4" or r.extraction_status == "failed"]
    third = [replace(_record(sid, fid, 13, body=long[13]), entry_key="g13b"),         # known extra URL
             replace(_record(sid, fid, 1, body=long[1]), entry_key="other-key"),      # a second feed key
             _record(sid, fid, 17, body=long[17])]
    results = [store.upsert_articles(engine, b) for b in (first, second, third)]
    tables = {
        "articles": "SELECT id, canonical_url, body, content_hash, extraction_status, title FROM articles ORDER BY id",
        "article_urls": "SELECT url, article_id, reason FROM article_urls ORDER BY url",
        "article_feeds": "SELECT feed_id, entry_key, article_id, entry_url FROM article_feeds ORDER BY 1, 2",
        "article_revisions": "SELECT article_id, reason, body FROM article_revisions ORDER BY article_id, body",
    }
    with engine.connect() as conn:
        return results, {t: [tuple(r) for r in conn.execute(text(q))] for t, q in tables.items()}


def test_the_set_based_load_stores_and_counts_what_row_by_row_does(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from etl.store import articles

    at_once, stored = _load_story(engine)
    with engine.begin() as conn:  # start again from nothing, ids included
        conn.execute(text("TRUNCATE articles, article_urls, article_feeds, article_revisions, sources, feeds "
                          "RESTART IDENTITY CASCADE"))
    monkeypatch.setattr(articles, "_shares_a_hash", lambda records: True)  # every batch row by row
    one_by_one, stored_rows = _load_story(engine)
    assert at_once == one_by_one
    assert [r.new_ids for r in at_once] == [r.new_ids for r in one_by_one]
    assert stored == stored_rows
    # and the story is the one intended
    assert [(r.inserted, r.updated, r.unchanged, r.duplicates) for r in at_once] == [
        (11, 0, 0, 0), (4, 1, 9, 1), (1, 0, 1, 1)]
    assert len(stored["article_revisions"]) == 1 and len(stored["article_urls"]) == 1
