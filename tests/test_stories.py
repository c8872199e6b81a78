"""Stories end to end: the real ingest flow against the demo outlets, then rerun and recluster."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from etl import stories
from etl.stories import features
from flows.ingest import ingest

PANAMA = {
    ("france24", "en", "americas-ministers-pledge-120-million"),
    ("france24", "es", "cancilleres-de-las-americas-firman-en-panama"),
    ("france24", "fr", "migrations-onze-pays-des-ameriques"),
    ("voa", "en", "americas-ministers-sign-darien-declaration"),
    ("voa", "es", "once-paises-firman-en-panama"),
    ("voa", "en", "rights-groups-welcome-darien-fund"),          # the follow-up next day
    ("hemiwire", "en", "eleven-nations-sign-darien-migration-pact"),
}
SAME_DAY_OTHERS = ["panama-canal", "canal-de-panama", "lampedusa", "eu-interior-ministers",
                   "ministros-del-interior-de-la-ue"]


def _memberships(engine: Engine) -> dict[str, tuple[int, str]]:
    with engine.connect() as conn:
        return {r.url: (r.story_id, r.relation) for r in conn.execute(text("""
            SELECT a.canonical_url AS url, sa.story_id, sa.relation
              FROM story_articles sa JOIN articles a ON a.id = sa.article_id"""))}


def _clusters(engine: Engine) -> set[frozenset[str]]:
    by_story: dict[int, set[str]] = {}
    for url, (sid, _rel) in _memberships(engine).items():
        by_story.setdefault(sid, set()).add(url)
    return {frozenset(v) for v in by_story.values()}


def _find(urls: list[tuple[str, str, str]], outlet: str, lang: str, slug_prefix: str) -> str:
    hits = [u for o, lng, u in urls if o == outlet and lng == lang and slug_prefix in u]
    assert len(hits) == 1, (outlet, lang, slug_prefix, hits)
    return hits[0]


@pytest.fixture
def demo_sources(demo_sites, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "sources.toml"
    path.write_text(demo_sites.sources_toml(min_request_interval=0.0), encoding="utf-8")
    return str(path)


def test_demo_panama_story_across_outlets_and_languages(engine: Engine, prefect_harness: None,
                                                        demo_sources: str) -> None:
    assert features.encoder_available(), "the crosslingual extra is on in tests"
    summary = ingest(sources_file=demo_sources, force=True, kind="demo")
    assert summary["articles_new"] > 30
    with engine.connect() as conn:
        urls = [(r.slug, r.language, r.canonical_url) for r in conn.execute(text(
            "SELECT s.slug, a.language, a.canonical_url FROM articles a JOIN sources s ON s.id = a.source_id"))]
        run = conn.execute(text(
            "SELECT near_duplicates, stories_new, stories_joined, citations FROM ingestion_runs")).one()
    members = _memberships(engine)
    panama = {_find(urls, *key) for key in PANAMA}
    story_ids = {members[u][0] for u in panama}
    assert len(story_ids) == 1, "the Panama meeting is one story in en/es/fr across three outlets"
    (panama_story,) = story_ids
    assert {u for u, (sid, _r) in members.items() if sid == panama_story} == panama
    # the same-day hard negatives stay out of it (and out of each other's stories)
    others = {prefix: [u for u in members if prefix in u] for prefix in SAME_DAY_OTHERS}
    for prefix, found in others.items():
        assert found, prefix
        assert all(members[u][0] != panama_story for u in found), prefix
    canal = {members[u][0] for u in others["panama-canal"] + others["canal-de-panama"]}
    eu = {members[u][0] for u in others["eu-interior-ministers"] + others["ministros-del-interior-de-la-ue"]}
    assert canal.isdisjoint(eu) and canal.isdisjoint({members[u][0] for u in others["lampedusa"]})
    # the wire copy of the Chile quake is a near-duplicate of VOA's earlier original
    with engine.connect() as conn:
        quake = {r.slug: r for r in conn.execute(text("""
            SELECT s.slug, a.id, a.duplicate_of FROM articles a JOIN sources s ON s.id = a.source_id
             WHERE a.canonical_url LIKE '%strong-quake-shakes-central-chile%'"""))}
        story = conn.execute(text("SELECT * FROM stories WHERE id = :s"), {"s": panama_story}).one()
        cites = conn.execute(text("""
            SELECT c.cited_name, c.cited_article_id FROM article_citations c
              JOIN articles a ON a.id = c.article_id WHERE a.canonical_url LIKE '%eleven-nations%'""")).all()
    assert quake["hemiwire"].duplicate_of == quake["voa"].id and quake["voa"].duplicate_of is None
    assert members[[u for u in members if "strong-quake" in u and "127.0.0.4" in u][0]][1] == "near_duplicate"
    assert (story.article_count, story.source_count, story.language_count) == (7, 3, 3)
    assert story.first_published_at < story.last_published_at and story.title
    assert {"France 24"} <= {c.cited_name for c in cites}
    assert run.near_duplicates >= 1 and run.stories_new >= 20 and run.stories_joined >= 6 and run.citations >= 1

    # a rerun changes no assignment
    before = _memberships(engine)
    again = ingest(sources_file=demo_sources, force=True, kind="demo")
    assert again["articles_new"] == 0 and _memberships(engine) == before

    # recluster rebuilds the window from scratch, to the same clusters
    clusters = _clusters(engine)
    counts = stories.recluster(engine, datetime(2026, 11, 20, tzinfo=UTC))
    assert counts.processed > 20
    assert _clusters(engine) == clusters
    with engine.connect() as conn:
        assert conn.execute(text(
            "SELECT count(*) FROM stories s WHERE NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.story_id = s.id)")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM articles WHERE duplicate_of IS NOT NULL")).scalar() == 1


def test_works_without_the_sentence_encoder(engine: Engine, demo_sources: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the crosslingual extra, stories still form from lexical evidence."""
    import os

    from etl import store
    from etl.config import load_settings, load_sources
    from etl.fetch.http import Fetcher
    from etl.jobs.cycle import run_cycle
    from etl.store import db

    monkeypatch.setattr(features, "_encoder", lambda: None)
    assert features.embed(["x"]) is None
    settings = load_settings(demo_sources)
    eng = db.get_engine(os.environ["NEWSETL_DATABASE_URL"])
    store.sync_sources(eng, load_sources(settings.sources_file))
    with Fetcher(settings) as fetcher:
        cycle = run_cycle(eng, settings, fetcher=fetcher, force=True)
    assert cycle.stories.processed == cycle.inserted > 30
    members = _memberships(engine)
    en = [u for u in members if "americas-ministers" in u]
    assert len(en) == 2 and members[en[0]][0] == members[en[1]][0]  # F24 en + VOA en, same words
    canal = [u for u in members if "panama-canal" in u]
    assert members[canal[0]][0] != members[en[0]][0]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM article_features WHERE embedding IS NOT NULL")).scalar() == 0
