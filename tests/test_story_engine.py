"""One engine: the stories the pipeline makes in PostgreSQL and the ones the dev-set evaluation
makes in memory come from the same loop (``etl.stories.engine``), so the same articles in the
same batches must give the same stories, relations and merges through both repositories."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Engine, text

from etl import store
from etl.config import StoryConfig, parse_sources
from etl.fetch.urls import canonicalize
from etl.models import ArticleRecord
from etl.parse.normalize import content_hash
from etl.stories import StoryStage
from etl.stories.memory import MemoryRepository
from etl.stories.engine import StoryEngine, prepare
from etl.stories.profile import build_item

T0 = datetime(2026, 3, 2, 6, tzinfo=UTC)
OUTLETS = ["wire", "daily", "post", "herald"]
BATCH = 35


def _sample(shared_data) -> list[dict]:  # noqa: ANN001
    """Four ECB+ topics (each two same-kind events: the hard negatives), their articles placed
    in overlapping 24-hour windows as the evaluation places them, and two copies of an article
    (near-duplicates: one earlier, one later than its original)."""
    rows = [json.loads(line) for line in (shared_data / "stories" / "ecbplus-dev.jsonl").open(encoding="utf-8")]
    topics = sorted({r["topic"] for r in rows})[:4]
    rng = random.Random(3)
    docs, bodies = [], set()
    for r in rows:
        if r["topic"] in topics and r["body"].strip() not in bodies:  # (exact copies never reach the stage)
            bodies.add(r["body"].strip())
            t = T0 + timedelta(hours=12 * topics.index(r["topic"]), minutes=rng.randrange(24 * 60))
            docs.append({"id": r["doc_id"], "outlet": OUTLETS[rng.randrange(len(OUTLETS))], "time": t,
                         "title": r["first_sentence"].strip(), "body": r["body"].strip()})
    for k, shift in ((0, -30), (1, 45)):
        src = docs[5 + k]
        docs.append({**src, "id": f"copy-{k}", "outlet": OUTLETS[(OUTLETS.index(src["outlet"]) + 1) % 4],
                     "time": src["time"] + timedelta(minutes=shift), "body": src["body"] + " Copyright the wire."})
    return docs


def _record(src: tuple[int, int], doc: dict) -> ArticleRecord:
    url = f"https://{doc['outlet']}.example/{doc['id']}"
    return ArticleRecord(
        source_id=src[0], feed_id=src[1], entry_key=url, url=url, canonical_url=canonicalize(url),
        final_url=url, guid=None, title=doc["title"], description=None, body=doc["body"], language="en",
        authors=[], published_at=doc["time"], updated_at=None, fetched_at=datetime.now(UTC),
        content_hash=content_hash(doc["body"]), http_status=200, extraction_status="ok", extraction_error=None,
        word_count=len(doc["body"].split()))


def test_postgres_and_memory_repositories_make_the_same_stories(engine: Engine, shared_data) -> None:  # noqa: ANN001
    docs = _sample(shared_data)
    registry = "".join(f'[[sources]]\nslug = "{o}"\nname = "{o.title()} News"\n  [[sources.feeds]]\n'
                       f'  url = "https://{o}.example/rss"\n  language = "en"\n' for o in OUTLETS)
    ids = store.sync_sources(engine, parse_sources(registry))
    feeds = {f.slug: f.id for f in store.due_feeds(engine, force=True)}
    # loaded in an order unlike their times, in batches, as feeds deliver them
    order = sorted(docs, key=lambda d: d["id"])
    batches: list[list[int]] = []
    cfg = StoryConfig()
    stage = StoryStage(engine, cfg)
    for start in range(0, len(order), BATCH):
        chunk = order[start:start + BATCH]
        loaded = store.upsert_articles(engine, [_record((ids[d["outlet"]], feeds[d["outlet"]]), d) for d in chunk])
        assert len(loaded.new_ids) == len(chunk)
        batches.append(list(loaded.new_ids))
        stage.assign(loaded.new_ids)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text("""
            SELECT a.id, a.source_id, a.language, a.title, a.description, a.body, f.embedding,
                   COALESCE(a.published_at, a.first_seen_at) AS event_t, sa.story_id, sa.relation, sa.score,
                   a.duplicate_of
              FROM articles a JOIN article_features f ON f.article_id = a.id
              JOIN story_articles sa ON sa.article_id = a.id"""))}
        sources = [tuple(r) for r in conn.execute(text("SELECT id, slug, name FROM sources ORDER BY id"))]
        pg_merges = conn.execute(text("SELECT count(*) FROM story_merges")).scalar_one()
    assert len(rows) == len(docs)

    # the same batches through the engine on memory, with the embeddings the pipeline computed
    repo = MemoryRepository(sources)
    mem_engine = StoryEngine(cfg)
    for batch in batches:
        items = sorted((build_item(r.id, r.source_id, r.language, r.event_t, r.title, r.description, r.body, cfg,
                                   np.asarray(r.embedding, dtype=np.float32))
                        for r in (rows[i] for i in batch)), key=lambda it: (it.time, it.id))
        repo.add_articles(items)
        mem_engine.step(repo, [prepare(it) for it in items])

    def partition(story_of: dict[int, int]) -> set[frozenset[int]]:
        groups: dict[int, set[int]] = {}
        for aid, sid in story_of.items():
            groups.setdefault(sid, set()).add(aid)
        return {frozenset(g) for g in groups.values()}

    pg = {aid: r.story_id for aid, r in rows.items()}
    mem = repo.story_of()
    assert partition(mem) == partition(pg)
    assert {aid: str(m.relation) for aid, m in repo.members.items()} == {aid: r.relation for aid, r in rows.items()}
    assert {aid: a.duplicate_of for aid, a in repo.articles.items()} == {aid: r.duplicate_of for aid, r in rows.items()}
    assert len(repo.merges) == pg_merges
    # the sample exercises what it should: several stories, both events of a topic apart,
    # near-duplicates found
    assert 4 <= len(partition(pg)) < len(docs)
    assert sum(r.relation == "near_duplicate" for r in rows.values()) >= 2
