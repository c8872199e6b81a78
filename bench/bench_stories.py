"""Per-article cost of dedup + story assignment with N articles already stored.

A synthetic corpus (a steady 2,000 articles a day, events of 1–8 articles sharing entities,
terms and numbers) is bulk-loaded with COPY into articles, article_features, article_lsh (50
band rows per article), stories, story_articles and story_profiles. Then 300 new articles
(just after the corpus, some copies of stored ones, most of new or running events) are loaded
through ``etl.store.upsert_articles`` and assigned with ``etl.stories.assign`` in batches of
50; the per-article time is the median over batches. Because the rate is steady, the 72-hour
window holds the same number of stories whatever N is: what grows is the tables and indexes.

The encoder is left out of the scale measurement (``use_embedding=False``: it costs the same
per article at any N) and measured on its own: ms per title + lead, in batches of 50.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/bench_stories.py 10000 100000 1000000
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from etl import db, features, store, stories  # noqa: E402
from etl.normalize import ArticleRecord, content_hash  # noqa: E402

RATE_PER_DAY = 2000
START = datetime(2024, 1, 1, tzinfo=UTC)
WORDS = [f"w{i:05d}" for i in range(20000)]
NAMES = [f"Name{i:05d}" for i in range(20000)]


def event_vocab(rng: random.Random, e: int) -> tuple[list[str], list[str], list[str]]:
    r = random.Random(e)
    return r.sample(WORDS, 40), r.sample(NAMES, 8), [str(r.randrange(10, 99999)) for _ in range(4)]


def article_text(rng: random.Random, e: int) -> tuple[str, str, list[str], list[str], list[str]]:
    """Title, body and the features ``etl.features`` would find in them (computed from the
    picks directly: running the real extractor over a million rows would dominate the load)."""
    terms, names, nums = event_vocab(rng, e)
    t_pick = rng.sample(terms, 20) + rng.sample(WORDS, 10)
    n_pick = rng.sample(names, 5)
    u_pick = rng.sample(nums, 2)
    body = " ".join(t_pick + n_pick + u_pick + rng.choices(WORDS, k=60)) + "."
    title = " ".join(n_pick[:2] + t_pick[:5])
    return (title, body, sorted({t[:7] for t in t_pick}), sorted({x.lower() for x in n_pick}), sorted(u_pick))


def bulk_load(url: str, n: int, seed: int = 1) -> datetime:
    """COPYs a synthetic corpus of ``n`` articles; returns the time of the last one."""
    rng = random.Random(seed)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    step = timedelta(days=1) / RATE_PER_DAY
    end = START + step * n
    window_start = end - timedelta(hours=96)
    with psycopg.connect(conninfo) as conn:
        conn.execute("INSERT INTO sources (id, slug, name) VALUES (1, 'synthetic', 'Synthetic')")
        # an event lives ~1 day, so at any time ~2,000 articles / ~500 stories are active
        with conn.cursor() as cur, \
                cur.copy("COPY articles (id, source_id, url, canonical_url, title, body, language, "
                         "published_at, content_hash, extraction_status, word_count) FROM STDIN") as cp:
            for i in range(1, n + 1):
                e = (i // 4) + rng.randrange(0, 3)
                title, body, *_ = article_text(rng, e)
                t = START + step * i
                cp.write_row((i, 1, f"https://syn.example/a/{i}", f"https://syn.example/a/{i}", title, body,
                              "en", t, content_hash(body), "ok", 120))
        print(f"  articles: {n}", file=sys.stderr)
        rng = random.Random(seed)
        stories_seen: dict[int, tuple[int, datetime, datetime, int]] = {}
        with conn.cursor() as cur, \
                cur.copy("COPY article_features (article_id, event_time, language, terms, entities, numbers, "
                         "assigned_at) FROM STDIN") as cp:
            for i in range(1, n + 1):
                e = (i // 4) + rng.randrange(0, 3)
                _title, _body, terms, ents, nums = article_text(rng, e)
                t = START + step * i
                cp.write_row((i, t, "en", terms, ents, nums, t))
                sid, first, _last, cnt = stories_seen.get(e, (e + 1, t, t, 0))
                stories_seen[e] = (sid, first, t, cnt + 1)
        with conn.cursor() as cur, \
                cur.copy("COPY article_lsh (article_id, band, hash) FROM STDIN") as cp:
            for i in range(1, n + 1):
                for b in range(50):
                    cp.write_row((i, b, rng.getrandbits(63)))
        print("  features + bands", file=sys.stderr)
        with conn.cursor() as cur, cur.copy(
                "COPY stories (id, title, first_published_at, last_published_at, article_count, source_count, "
                "language_count) FROM STDIN") as cp:
            for e, (sid, first, last, cnt) in stories_seen.items():
                cp.write_row((sid, f"event {e}", first, last, cnt, 1, 1))
        rng = random.Random(seed)
        with conn.cursor() as cur, cur.copy(
                "COPY story_articles (story_id, article_id, relation, score, method) FROM STDIN") as cp:
            firsts: set[int] = set()
            for i in range(1, n + 1):
                e = (i // 4) + rng.randrange(0, 3)
                article_text(rng, e)
                sid = stories_seen[e][0]
                cp.write_row((sid, i, "same_story" if sid in firsts else "original",
                              None if sid not in firsts else 0.5, None if sid not in firsts else "lexical"))
                firsts.add(sid)
        # profiles: counts for every story; term detail only where the window can read it
        with conn.cursor() as cur, cur.copy(
                "COPY story_profiles (story_id, member_count, terms, entities, numbers, languages, source_ids) "
                "FROM STDIN") as cp:
            for e, (sid, _first, last, cnt) in stories_seen.items():
                terms, names, nums = event_vocab(rng, e)
                weight = cnt if last >= window_start else 1
                cp.write_row((sid, cnt, json.dumps({t[:7]: weight for t in terms}),
                              json.dumps({x.lower(): weight for x in names}), json.dumps({x: weight for x in nums}),
                              ["en"], [1]))
        for table in ("articles", "stories"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return end


def measure(url: str, end: datetime, new: int = 300, batch: int = 50, seed: int = 99) -> list[float]:
    engine = db.get_engine(url)
    rng = random.Random(seed)
    cfg = replace(stories.StoryConfig(), use_embedding=False)
    step = timedelta(days=1) / RATE_PER_DAY
    base_event = int((end - START) / step) // 4
    per_article = []
    for b in range(new // batch):
        recs = []
        for j in range(batch):
            k = b * batch + j
            e = base_event + rng.randrange(-5, 60)
            title, body, *_ = article_text(rng, e)
            if k % 10 == 0:  # a syndicated copy of a stored article
                body = body.replace(".", " updated.")
            url_ = f"https://new.example/a/{uuid.uuid4().hex}"
            recs.append(ArticleRecord(
                source_id=1, feed_id=None, entry_key=url_, url=url_, canonical_url=url_, final_url=url_,
                guid=None, title=title, description=None, body=body, language="en", authors=[],
                published_at=end + step * (k + 1), updated_at=None, fetched_at=datetime.now(UTC),
                content_hash=content_hash(body), http_status=200, extraction_status="ok",
                extraction_error=None, word_count=len(body.split())))
        ids = store.upsert_articles(engine, recs).new_ids
        t0 = time.perf_counter()
        stories.assign(engine, ids, cfg)
        per_article.append((time.perf_counter() - t0) * 1000 / len(ids))
    return per_article


def encoder_cost(n: int = 200) -> float | None:
    if not features.encoder_available():
        return None
    lead = ("Ministers from a dozen countries of the Americas gathered in Panama City on Friday to "
            "confront one of the hemisphere's most dangerous migration routes, the roadless jungle of the "
            "Darién Gap, and left with a joint declaration signed by 11 of them.")
    texts = [features.lead(f"Ministers meet in Panama on migration, day {i}", None, lead, 300) for i in range(n)]
    features.embed(texts[:5])  # load the model
    times = []
    for i in range(0, n, 50):
        t0 = time.perf_counter()
        features.embed(texts[i:i + 50])
        times.append((time.perf_counter() - t0) * 1000 / 50)
    return statistics.median(times)


def main() -> None:
    sizes = [int(x) for x in sys.argv[1:]] or [10000, 100000]
    base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = make_url(db.to_sqlalchemy_url(base)).set(drivername="postgresql").render_as_string(hide_password=False)
    results = {}
    for n in sizes:
        name = f"newsetl_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(db.to_sqlalchemy_url(base)).set(database=name).render_as_string(hide_password=False)
        try:
            db.upgrade(url)
            t0 = time.perf_counter()
            end = bulk_load(url, n)
            load_s = time.perf_counter() - t0
            runs = measure(url, end)
            results[n] = {"load_s": round(load_s, 1), "ms_per_article_median": round(statistics.median(runs), 2),
                          "ms_per_article_batches": [round(x, 2) for x in runs]}
            print(n, results[n], file=sys.stderr)
        finally:
            db.get_engine(url).dispose()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    smallest = results[min(results)]["ms_per_article_median"]
    for n in results:
        results[n]["ratio_vs_smallest"] = round(results[n]["ms_per_article_median"] / smallest, 2)
    results["encoder_ms_per_article"] = encoder_cost()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
