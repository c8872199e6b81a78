"""Per-article cost of dedup + story assignment with N articles already stored.

A synthetic corpus (a steady 2,000 articles a day, events of 1–8 articles sharing entities,
terms and numbers; ~230-word bodies of real English words in sentences, names mid-sentence) is bulk-loaded with COPY into articles, article_features, article_lsh (50
band rows per article), stories, story_articles and story_profiles. Then 300 new articles
(just after the corpus, some copies of stored ones, most of new or running events) are loaded
through ``etl.store.upsert_articles`` and assigned by one ``etl.stories.StoryStage`` (as a run's
story lane holds it) in batches of 50; the per-article time is the median over batches, and
so is the time the story lock was held (wall time: the serial section when workers share a
database). Because the rate is steady, the 72-hour
window holds the same number of stories whatever N is: what grows is the tables and indexes.

The cost is CPU time: this process (features, the encoder, the join decision) plus the
PostgreSQL backends serving this benchmark's database (found by the database name in their
process titles), per article, median over batches — wall time on a shared machine says more
about the neighbours than about us. The encoder is on (one call per batch) unless
``--no-embedding``; it is also measured on its own (ms per title + lead, batches of 50).

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/bench_stories.py [--no-embedding] 10000 100000 1000000
        .venv/bin/python bench/bench_stories.py --load-only 1000000      # keeps the database
        .venv/bin/python bench/bench_stories.py --from-db NAME 1000000   # measures on a copy
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from etl import store, stories  # noqa: E402
from etl.config import StoryConfig  # noqa: E402
from etl.models import ArticleRecord  # noqa: E402
from etl.parse.normalize import content_hash  # noqa: E402
from etl.store import db, migrations  # noqa: E402
from etl.stories import features  # noqa: E402

RATE_PER_DAY = 2000
START = datetime(2024, 1, 1, tzinfo=UTC)


def _vocabulary() -> tuple[list[str], list[str]]:
    """Real English content words (wordfreq's list, Zipf 2.5-5, not in the stop list) and
    pseudo-surnames of three syllables: text the encoder tokenizes as it does news (~1.3
    pieces per word; "w01234"-style tokens took 2.5x the pieces, and the encoder's cost with
    them), and words the lexicon weighs as it does real ones."""
    import wordfreq

    words = [w for w in wordfreq.top_n_list("en", 40000, wordlist="small")
             if w.isascii() and w.isalpha() and len(w) >= 4 and w not in features.STOP
             and 2.5 <= wordfreq.zipf_frequency(w, "en", wordlist="small") < 5.0]
    syl = ["ka", "lo", "ven", "dra", "mi", "sor", "tel", "bu", "ran", "osk", "ne", "vic", "ha", "lin", "gor",
           "za", "pet", "ru", "mon", "es", "tik", "da", "ber", "ul", "fin", "go", "shi", "ard", "vo", "len"]
    names = ["".join(t).capitalize() for t in itertools.product(syl, syl, syl)]
    return words[:20000], random.Random(5).sample(names, 20000)


WORDS, NAMES = _vocabulary()


def event_vocab(rng: random.Random, e: int) -> tuple[list[str], list[str], list[str]]:
    r = random.Random(e)
    return r.sample(WORDS, 40), r.sample(NAMES, 8), [str(r.randrange(10, 99999)) for _ in range(4)]


def article_text(rng: random.Random, e: int) -> tuple[str, str, list[str], list[str], list[str]]:
    """Title, body and the features ``etl.stories.features`` would find in them (computed from the
    picks directly: running the real extractor over a million rows would dominate the load)."""
    terms, names, nums = event_vocab(rng, e)
    t_pick = rng.sample(terms, 20) + rng.sample(WORDS, 10)
    n_pick = rng.sample(names, 5)
    u_pick = rng.sample(nums, 2)
    # ~230 words (the median of the dev sets' articles) in sentences of 15
    picks = t_pick[:22] + n_pick + u_pick + t_pick[22:] + rng.choices(WORDS, k=190)  # names mid-sentence
    sentences = (" ".join(picks[i:i + 15]) for i in range(0, len(picks), 15))
    body = " ".join(x[:1].upper() + x[1:] + "." for x in sentences)
    title = " ".join(n_pick[:2] + t_pick[:5])
    return (title, body, sorted({t[:7] for t in t_pick}), sorted({x.lower() for x in n_pick}), sorted(u_pick))


def bulk_load(url: str, n: int, seed: int = 1) -> datetime:
    """COPYs a synthetic corpus of ``n`` articles; returns the time of the last one.

    One pass over the articles feeds two COPY streams (articles, article_features) on two
    connections; LSH bands (random: the stored corpus has no copies) are generated server-side.
    """
    rng = random.Random(seed)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    step = timedelta(days=1) / RATE_PER_DAY
    end = START + step * n
    window_start = end - timedelta(hours=96)
    story_of = [0] * (n + 1)
    stories_seen: dict[int, list] = {}
    with psycopg.connect(conninfo) as c1, psycopg.connect(conninfo) as c2:
        c1.execute("INSERT INTO sources (id, slug, name) VALUES (1, 'synthetic', 'Synthetic')")
        c1.commit()
        c2.execute("CREATE TEMP TABLE f_stage (LIKE article_features INCLUDING DEFAULTS)")
        # an event lives ~1 day, so at any time ~2,000 articles / ~500 stories are active
        with c1.cursor() as k1, c2.cursor() as k2, \
                k1.copy("COPY articles (id, source_id, url, canonical_url, title, body, language, "
                        "published_at, content_hash, extraction_status, word_count) FROM STDIN") as cp1, \
                k2.copy("COPY f_stage (article_id, event_time, language, terms, entities, numbers, "
                        "assigned_at) FROM STDIN") as cp2:
            for i in range(1, n + 1):
                e = (i // 4) + rng.randrange(0, 3)
                title, body, terms, ents, nums = article_text(rng, e)
                t = START + step * i
                u = f"https://syn.example/a/{i}"
                cp1.write_row((i, 1, u, u, title, body, "en", t, None, "ok", 90))
                cp2.write_row((i, t, "en", terms, ents, nums, t))
                st = stories_seen.get(e)
                if st is None:
                    stories_seen[e] = [len(stories_seen) + 1, t, t, 1]
                else:
                    st[2], st[3] = t, st[3] + 1
                story_of[i] = stories_seen[e][0]
        c1.commit()
        c2.execute("INSERT INTO article_features SELECT * FROM f_stage")
        c2.commit()
        print(f"  articles + features: {n}", file=sys.stderr)
        # bulk insert without indexes, then build them once (a sorted build, not 50 random
        # B-tree insertions per article)
        c1.execute("ALTER TABLE article_lsh DROP CONSTRAINT article_lsh_pkey")
        c1.execute("DROP INDEX article_lsh_band_hash_idx")
        c1.execute("ALTER TABLE article_lsh DROP CONSTRAINT article_lsh_article_id_fkey")
        c1.execute("""INSERT INTO article_lsh (article_id, band, hash)
                      SELECT i, b, (random() * 9.2e18 - 4.6e18)::bigint
                        FROM generate_series(1, %s) i, generate_series(0, 49) b""", (n,))
        c1.execute("SET maintenance_work_mem = '512MB'")
        c1.execute("ALTER TABLE article_lsh ADD PRIMARY KEY (article_id, band)")
        c1.execute("CREATE INDEX article_lsh_band_hash_idx ON article_lsh (band, hash)")
        c1.execute("ALTER TABLE article_lsh ADD CONSTRAINT article_lsh_article_id_fkey FOREIGN KEY (article_id) "
                   "REFERENCES articles(id) ON DELETE CASCADE NOT VALID")
        c1.commit()
        print("  bands", file=sys.stderr)
        with c1.cursor() as k1, k1.copy(
                "COPY stories (id, title, first_published_at, last_published_at, article_count, source_count, "
                "language_count) FROM STDIN") as cp:
            for e, (sid, first, last, cnt) in stories_seen.items():
                cp.write_row((sid, f"event {e}", first, last, cnt, 1, 1))
        with c1.cursor() as k1, k1.copy(
                "COPY story_articles (story_id, article_id, relation, score, method) FROM STDIN") as cp:
            firsts: set[int] = set()
            for i in range(1, n + 1):
                sid = story_of[i]
                cp.write_row((sid, i, "same_story" if sid in firsts else "original",
                              0.5 if sid in firsts else None, "lexical" if sid in firsts else None))
                firsts.add(sid)
        # profiles: counts for every story; term detail only where the window can read it
        # (and the title/body centroids the join decision reads: the event's words plus, for the
        # body, ~200 more, as a real body centroid has)
        with c1.cursor() as k1, k1.copy(
                "COPY story_profiles (story_id, member_count, terms, entities, numbers, languages, source_ids, "
                "title_terms, body_terms) FROM STDIN") as cp:
            for e, (sid, _first, last, cnt) in stories_seen.items():
                if last >= window_start:
                    terms, names, nums = event_vocab(rng, e)
                    body = {t[:7]: round(0.12 * cnt, 4) for t in terms + random.Random(-e).sample(WORDS, 200)}
                    detail = (json.dumps({t[:7]: cnt for t in terms}), json.dumps({x.lower(): cnt for x in names}),
                              json.dumps({x: cnt for x in nums}))
                    fields = (json.dumps({t[:7]: round(0.3 * cnt, 4) for t in terms[:6]}), json.dumps(body))
                else:
                    detail = ("{}", "{}", "{}")
                    fields = ("{}", "{}")
                cp.write_row((sid, cnt, *detail, ["en"], [1], *fields))
        for table in ("articles", "stories"):
            c1.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        c1.commit()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return end


def backend_cpu(dbname: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to ``dbname``."""
    total = 0.0
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if cmd.startswith("postgres:") and f" {dbname} " in cmd:
                t = p.cpu_times()
                total += t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def measure(url: str, end: datetime, new: int = 500, batch: int = 50, seed: int = 99,
            use_embedding: bool = True) -> tuple[list[float], list[float]]:
    engine = db.get_engine(url)
    dbname = make_url(url).database or ""
    rng = random.Random(seed)
    cfg = StoryConfig(use_embedding=use_embedding)
    features.embed(["warm up the encoder"])
    step = timedelta(days=1) / RATE_PER_DAY
    base_event = int((end - START) / step) // 4
    per_article, lock_ms = [], []
    stage = stories.StoryStage(engine, cfg)  # one per run, as the story lane holds it
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
        with engine.connect():  # the pooled connection exists before the clock starts
            pass
        c0, b0 = time.process_time(), backend_cpu(dbname)
        counts = stage.assign(ids)
        cpu = time.process_time() - c0 + backend_cpu(dbname) - b0
        per_article.append(cpu * 1000 / len(ids))
        lock_ms.append(counts.lock_seconds * 1000 / len(ids))
    return per_article, lock_ms


def encoder_cost(n: int = 200) -> float | None:
    """CPU ms per article of the encoder alone, on the leads the stage embeds (title + the
    body's first sentences up to ``StoryConfig.lead_chars``), in batches of 50."""
    if not features.encoder_available():
        return None
    rng, lead_chars = random.Random(3), StoryConfig().lead_chars
    texts = [features.lead(t, None, b, lead_chars) for t, b, *_ in (article_text(rng, e) for e in range(n))]
    features.embed(texts[:5])  # load the model
    times = []
    for i in range(0, n, 50):
        t0 = time.process_time()
        features.embed(texts[i:i + 50])
        times.append((time.process_time() - t0) * 1000 / 50)
    return statistics.median(times)


def _end_of(n: int) -> datetime:
    """The time of the last of ``n`` bulk-loaded articles (what :func:`bulk_load` returns)."""
    return START + timedelta(days=1) / RATE_PER_DAY * n


def main() -> None:
    """Sizes as arguments. ``--load-only`` loads each size into a database that is kept (its name
    is printed); ``--from-db NAME`` (one size) measures on a fresh copy of such a database
    (``CREATE DATABASE … TEMPLATE``) instead of loading: a 1M corpus is loaded once and each
    code version is measured on an identical copy of it."""
    args = sys.argv[1:]
    use_embedding = "--no-embedding" not in args
    load_only = "--load-only" in args
    template = args[args.index("--from-db") + 1] if "--from-db" in args else None
    sizes = [int(x) for x in args if not x.startswith("--") and x != template] or [10000, 100000]
    base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = make_url(db.to_sqlalchemy_url(base)).set(drivername="postgresql").render_as_string(hide_password=False)
    results: dict = {}
    for n in sizes:
        name = f"newsetl_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            if template:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(db.to_sqlalchemy_url(base)).set(database=name).render_as_string(hide_password=False)
        try:
            migrations.upgrade(url)
            t0 = time.perf_counter()
            end = _end_of(n) if template else bulk_load(url, n)
            load_s = time.perf_counter() - t0
            if load_only:
                print(f"{n} articles loaded in {load_s:.0f} s into database {name} (kept)", file=sys.stderr)
                results[n] = {"load_s": round(load_s, 1), "database": name}
                continue
            runs, lock_ms = measure(url, end, use_embedding=use_embedding)
            results[n] = {"load_s": round(load_s, 1), "embedding": use_embedding, "from_db": template,
                          "cpu_ms_per_article_median": round(statistics.median(runs), 2),
                          "cpu_ms_per_article_batches": [round(x, 2) for x in runs],
                          "lock_held_ms_per_article_median": round(statistics.median(lock_ms), 2),
                          "lock_held_ms_per_article_batches": [round(x, 2) for x in lock_ms]}
            print(n, results[n], file=sys.stderr)
        finally:
            db.get_engine(url).dispose()
            if not load_only:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if not load_only:
        smallest = results[min(results)]["cpu_ms_per_article_median"]
        for n in results:
            results[n]["ratio_vs_smallest"] = round(results[n]["cpu_ms_per_article_median"] / smallest, 2)
        results["encoder_ms_per_article"] = encoder_cost()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
