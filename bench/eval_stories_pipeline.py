"""Story clustering against ECB+ (../shared/data/stories/ecbplus-dev.jsonl), end to end.

The 496 articles are served as RSS feeds + article pages by six outlets on loopback hosts
(127.0.0.11–16); every article of one topic gets a publish time inside one 24-hour window
(topics start 12 hours apart, so neighbouring windows overlap and the 72-hour story window
always holds several topics). Then the real pipeline runs — poll → fetch → extract →
normalize → load → dedup/stories, batch by batch (``etl.jobs.cycle.run_cycle``, the flow's steps) — on a throwaway
PostgreSQL database, and the stories are scored against ``cluster_id``: B-cubed precision,
recall and F1, and pairwise F1.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/eval_stories_pipeline.py [--no-embedding]
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["NEWSETL_ALLOW_PRIVATE_NETWORKS"] = "1"

import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from etl import store  # noqa: E402
from etl.config import StoryConfig, load_settings, load_sources  # noqa: E402
from etl.fetch.http import Fetcher  # noqa: E402
from etl.jobs.cycle import run_cycle  # noqa: E402
from etl.store import db, migrations  # noqa: E402
from etl.stories.features import sentences  # noqa: E402
from etl.stories.model import load_models  # noqa: E402
from tests.webserver import TestWeb, static  # noqa: E402

DATA = next((p / "shared" / "data" / "stories" / "ecbplus-dev.jsonl" for p in ROOT.parents
             if (p / "shared" / "data").is_dir()), ROOT.parent / "shared" / "data" / "stories" / "ecbplus-dev.jsonl")
OUTLETS = [f"127.0.0.{i}" for i in range(11, 17)]
BASE = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def build_sites(rows: list[dict], seed: int = 7) -> tuple[list[TestWeb], dict[str, str]]:
    """Starts one TestWeb per outlet; returns them and doc_id → page URL."""
    rng = random.Random(seed)
    topics = sorted({r["topic"] for r in rows})
    start = {t: BASE + timedelta(hours=12 * i) for i, t in enumerate(topics)}
    webs = [TestWeb(host).__enter__() for host in OUTLETS]
    items: dict[int, list[str]] = defaultdict(list)
    urls: dict[str, str] = {}
    for r in rows:
        k = rng.randrange(len(webs))
        web = webs[k]
        path = f"/news/{r['doc_id']}"
        published = start[r["topic"]] + timedelta(minutes=rng.randrange(24 * 60))
        title = r["first_sentence"].strip()
        sents = sentences(r["full_text"])
        paras = ["".join(f"<p>{html.escape(' '.join(sents[i:i + 3]))}</p>" for i in range(0, len(sents), 3))]
        page = (f"<html lang='en'><head><title>{html.escape(title)}</title></head><body>"
                f"<nav>Home World Politics</nav><article><h1>{html.escape(title)}</h1>{''.join(paras)}"
                f"</article><footer>© outlet</footer></body></html>")
        urls[r["doc_id"]] = web.route(path, static(page))
        items[k].append(
            f"<item><title>{html.escape(title)}</title><link>{web.url(path)}</link><guid>{path}</guid>"
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<description>{html.escape(title)}</description></item>")
    for k, web in enumerate(webs):
        web.route("/rss.xml", static(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Outlet {k}</title>'
            f"{''.join(items[k])}</channel></rss>", content_type="application/rss+xml"))
    return webs, urls


def bcubed(pred: dict[str, object], gold: dict[str, object]) -> dict[str, float]:
    by_pred, by_gold = defaultdict(set), defaultdict(set)
    for d in pred:
        by_pred[pred[d]].add(d)
        by_gold[gold[d]].add(d)
    p = sum(len(by_pred[pred[d]] & by_gold[gold[d]]) / len(by_pred[pred[d]]) for d in pred) / len(pred)
    r = sum(len(by_pred[pred[d]] & by_gold[gold[d]]) / len(by_gold[gold[d]]) for d in pred) / len(pred)
    tp = fp = fn = 0
    for a, b in itertools.combinations(sorted(pred), 2):
        same_p, same_g = pred[a] == pred[b], gold[a] == gold[b]
        tp += same_p and same_g
        fp += same_p and not same_g
        fn += same_g and not same_p
    pp = tp / (tp + fp) if tp + fp else 0.0
    pr = tp / (tp + fn) if tp + fn else 0.0
    return {"bcubed_p": p, "bcubed_r": r, "bcubed_f1": 2 * p * r / (p + r),
            "pairwise_p": pp, "pairwise_r": pr, "pairwise_f1": 2 * pp * pr / (pp + pr) if pp + pr else 0.0,
            "stories": len(by_pred), "gold_clusters": len(by_gold)}


def run(db_url: str, rows: list[dict], cfg: StoryConfig) -> dict[str, float]:
    webs, urls = build_sites(rows)
    tmp = Path(tempfile.mkdtemp(prefix="ecb-eval-"))
    lines = []
    for k, web in enumerate(webs):
        lines.append(f'[[sources]]\nslug = "outlet-{k}"\nname = "Outlet {k}"\nmin_request_interval = 0.0\n'
                     f'  [[sources.feeds]]\n  url = "{web.url("/rss.xml")}"\n  language = "en"\n')
    (tmp / "sources.toml").write_text("\n".join(lines))
    settings = replace(load_settings(tmp / "sources.toml"), stories=cfg)
    engine = db.get_engine(db_url)
    store.sync_sources(engine, load_sources(settings.sources_file))
    t0 = time.perf_counter()
    with Fetcher(settings) as fetcher:
        cycle = run_cycle(engine, settings, fetcher=fetcher, force=True)
    total_s = time.perf_counter() - t0
    for web in webs:
        web.__exit__()
    with engine.connect() as conn:
        story_of = dict(conn.execute(text("""
            SELECT COALESCE(a.canonical_url, u.url), sa.story_id
              FROM story_articles sa JOIN articles a ON a.id = sa.article_id
              LEFT JOIN article_urls u ON u.article_id = a.id""")).all())
        extra = dict(conn.execute(text(
            "SELECT u.url, sa.story_id FROM article_urls u JOIN story_articles sa ON sa.article_id = u.article_id")).all())
        near = conn.execute(text("SELECT count(*) FROM articles WHERE duplicate_of IS NOT NULL")).scalar()
        exact = conn.execute(text("SELECT count(*) FROM article_urls")).scalar()
    story_of.update(extra)
    from etl.fetch.urls import canonicalize

    pred, gold = {}, {}
    for r in rows:
        sid = story_of.get(canonicalize(urls[r["doc_id"]]))
        pred[r["doc_id"]] = sid if sid is not None else f"missing-{r['doc_id']}"
        gold[r["doc_id"]] = r["cluster_id"]
    scores = bcubed(pred, gold)
    scores.update(articles=len(rows), near_duplicates=near, exact_duplicates=exact,
                  missing=sum(1 for v in pred.values() if isinstance(v, str)),
                  ingest_s=total_s, stories_new=cycle.stories.stories_new)
    return scores


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-embedding", action="store_true")
    ap.add_argument("--window-hours", type=float)
    args = ap.parse_args()
    cfg = StoryConfig()
    if args.no_embedding:
        cfg = replace(cfg, use_embedding=False)
    if args.window_hours is not None:
        cfg = replace(cfg, window_hours=args.window_hours)
    rows = [json.loads(line) for line in DATA.open(encoding="utf-8")]
    base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    admin = make_url(db.to_sqlalchemy_url(base)).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"newsetl_eval_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(db.to_sqlalchemy_url(base)).set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url)
        scores = run(url, rows, cfg)
    finally:
        db.get_engine(url).dispose()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps({"config": {"model": load_models().version, "window_hours": cfg.window_hours,
                                 "embedding": cfg.use_embedding}, **{k: round(v, 4) if isinstance(v, float) else v
                                                                     for k, v in scores.items()}}, indent=1))


if __name__ == "__main__":
    main()
