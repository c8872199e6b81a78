"""What the warehouse contract (sql/0006_warehouse.sql) costs the load, and what its full-text
vectors and indexes weigh, on real article text.

Two throwaway databases on one server: *baseline* has migrations 0001–0005 (everything before
the warehouse), *warehouse* has all of them. The same articles are loaded into both through the
production path (``etl.store.upsert_articles``, batches of 100), alternating, several runs;
the report gives medians and the ratio. Text: the real bodies of /work/shared/data (Zyte
benchmark ground truth and ECB+ articles), cycled with a unique suffix to reach N articles.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python bench/warehouse_load.py --articles 3000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl import store  # noqa: E402
from etl.models import ArticleRecord  # noqa: E402
from etl.parse.normalize import content_hash  # noqa: E402
from etl.store import db, queries  # noqa: E402

# ../shared/data next to the checkout (NEWSETL_SHARED_DATA overrides it, e.g. from a worktree)
DATA = Path(os.environ.get("NEWSETL_SHARED_DATA")
            or Path(__file__).resolve().parent.parent.parent / "shared" / "data")


def real_bodies() -> list[tuple[str, str]]:
    """(language, body) pairs of real news text."""
    out = []
    truth = json.loads((DATA / "extraction" / "zyte-aeb" / "ground-truth.json").read_text())
    out += [("en", v["articleBody"]) for v in truth.values() if len(v["articleBody"]) > 500]
    for line in (DATA / "stories" / "ecbplus-dev.jsonl").read_text().splitlines():
        doc = json.loads(line)
        out.append((doc.get("language") or "en", doc["full_text"]))
    return out


def records(n: int, source_id: int, salt: str) -> list[ArticleRecord]:
    bodies = real_bodies()
    recs = []
    for i in range(n):
        lang, body = bodies[i % len(bodies)]
        body = f"{body}\n\n[{salt} {i}]"
        url = f"https://bench.example/{salt}/{i}"
        recs.append(ArticleRecord(
            source_id=source_id, feed_id=None, entry_key=url, url=url, canonical_url=url, final_url=url,
            guid=None, title=body.split(".")[0][:120], description=body[:200], body=body, language=lang,
            authors=["A. Writer"], published_at=None, updated_at=None, fetched_at=None,
            content_hash=content_hash(body), http_status=200, extraction_status="ok", extraction_error=None,
            word_count=len(body.split())))
    return recs


def make_db(base: str, name: str, upto: str | None) -> str:
    admin = make_url(db.to_sqlalchemy_url(base)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(db.to_sqlalchemy_url(base)).set(database=name).render_as_string(hide_password=False)
    from yoyo import get_backend, read_migrations

    backend = get_backend(url)
    migrations = read_migrations(str(queries.sql_dir()))
    if upto:
        migrations = migrations.filter(lambda m: m.id < upto)
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))
    backend.connection.close()
    return url


def drop_db(base: str, name: str) -> None:
    admin = make_url(db.to_sqlalchemy_url(base)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def n_rows(conn) -> int:
    return conn.execute(text("SELECT count(*) FROM articles")).scalar_one()


def load_once(url: str, n: int, salt: str) -> float:
    engine = db.get_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE articles RESTART IDENTITY CASCADE"))
        source_id = conn.execute(text(
            "INSERT INTO sources (slug, name) VALUES ('bench', 'Bench') ON CONFLICT (slug) DO UPDATE "
            "SET name = excluded.name RETURNING id")).scalar_one()
    recs = records(n, source_id, salt)
    start = time.perf_counter()
    for i in range(0, n, 100):
        store.upsert_articles(engine, recs[i:i + 100])
    return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--articles", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = os.environ.get("TEST_DATABASE_URL") or os.environ.get("NEWSETL_DATABASE_URL")
    if not base:
        sys.exit("set TEST_DATABASE_URL (a server where this may create databases)")
    tag = uuid.uuid4().hex[:8]
    names = {"baseline": f"newsetl_bench_base_{tag}", "warehouse": f"newsetl_bench_wh_{tag}"}
    try:
        urls = {"baseline": make_db(base, names["baseline"], "0006"),
                "warehouse": make_db(base, names["warehouse"], None)}
        rates: dict[str, list[float]] = {k: [] for k in urls}
        load_once(urls["baseline"], 200, "warmup")
        load_once(urls["warehouse"], 200, "warmup")
        for run in range(args.runs):
            order = ["baseline", "warehouse"] if run % 2 == 0 else ["warehouse", "baseline"]
            for kind in order:
                rates[kind].append(load_once(urls[kind], args.articles, f"r{run}"))
        med = {k: statistics.median(v) for k, v in rates.items()}
        engine = db.get_engine(urls["warehouse"])
        with engine.connect() as conn:
            sizes = conn.execute(text(
                "SELECT count(*), avg(octet_length(body)), avg(pg_column_size(x.search_vector)), "
                "pg_relation_size('article_search_idx'), pg_relation_size('articles_change_xid_idx') "
                "FROM articles a LEFT JOIN article_search x ON x.article_id = a.id")).one()
            vec_ms = []
            for _ in range(3):  # the text-search parse alone, per article
                t = time.perf_counter()
                conn.execute(text("SELECT sum(length(to_tsvector(warehouse.ts_config(language), body))) "
                                  "FROM articles")).scalar()
                vec_ms.append((time.perf_counter() - t) * 1000 / n_rows(conn))
            conn.commit()
            # wait until the load is below the horizon, so the next window holds only the update
            loaded_xid = int(conn.execute(text("SELECT CAST(pg_current_xact_id() AS text)")).scalar_one())
            conn.commit()
            while (horizon := conn.execute(text("SELECT warehouse.pull_horizon()")).scalar_one()) <= loaded_xid:
                time.sleep(0.05)
        # a pull of 100 changed rows out of N, versus fetching the same 100 rows by id
        with engine.begin() as conn:
            conn.execute(text("UPDATE articles SET title = title || ' ' WHERE id % :step = 0"),
                         {"step": max(1, args.articles // 100)})
        with engine.connect() as conn:
            while conn.execute(text("SELECT warehouse.pull_horizon()")).scalar_one() <= horizon:
                time.sleep(0.05)
            until = conn.execute(text("SELECT warehouse.pull_horizon()")).scalar_one()
            ids = conn.execute(text("SELECT article_id FROM warehouse.articles_changed(:s, :u)"),
                               {"s": horizon, "u": until}).scalars().all()
            pull_ms, byid_ms = [], []
            for _ in range(7):
                t = time.perf_counter()
                conn.execute(text("SELECT * FROM warehouse.articles_changed(:s, :u)"), {"s": horizon, "u": until}).all()
                pull_ms.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                conn.execute(text("SELECT * FROM warehouse.articles WHERE article_id = ANY(:ids)"), {"ids": ids}).all()
                byid_ms.append((time.perf_counter() - t) * 1000)
        n, body, vec, gin, xidx = sizes
        print(f"articles per run: {args.articles}, runs: {args.runs}, server: {base.split('@')[-1]}")
        print(f"load rate, rows/s (median): baseline {med['baseline']:.0f}, warehouse {med['warehouse']:.0f}, "
              f"ratio {med['warehouse'] / med['baseline']:.2f}")
        print(f"  runs baseline {[round(r) for r in rates['baseline']]}, warehouse {[round(r) for r in rates['warehouse']]}")
        print(f"per article: body {float(body):.0f} B, search_vector {float(vec):.0f} B "
              f"({float(vec) / float(body):.2f} of the body), GIN {gin / n:.0f} B, change_xid index {xidx / n:.0f} B")
        print(f"to_tsvector per article: {statistics.median(vec_ms):.2f} ms median")
        print(f"pull of {len(ids)} changed rows out of {n}: {statistics.median(pull_ms):.1f} ms median; "
              f"the same rows by id from the view: {statistics.median(byid_ms):.1f} ms "
              f"(ratio {statistics.median(pull_ms) / statistics.median(byid_ms):.2f})")
    finally:
        for name in names.values():
            drop_db(base, name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
