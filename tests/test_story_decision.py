"""Stories v2: the shipped join model, the matcher (pure), merging converged stories and placing
revised articles again (real PostgreSQL). The demo's Panama story with the shipped model is in
tests/test_stories.py."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from etl import store, stories
from etl.config import StoryConfig, parse_sources
from etl.fetch.urls import canonicalize
from etl.models import ArticleRecord
from etl.parse.normalize import content_hash
from etl.stories import model
from etl.stories.index import candidate_hits
from etl.stories.matcher import Matcher
from etl.stories.memory import cluster
from etl.stories.model import FEATURES, load_models
from etl.stories.postgres import ProfileCache
from etl.stories.profile import build_item

T0 = datetime(2026, 11, 20, 7, tzinfo=UTC)
QUAKE = [
    ("Magnitude 6.1 earthquake shakes central Chile",
     "A magnitude 6.1 earthquake shook central Chile early on Thursday, rattling buildings in Santiago "
     "and Valparaiso. The quake struck at a depth of 45 kilometres north of San Antonio, the national "
     "seismological centre said. Power was briefly cut to 20,000 homes in the Valparaiso region."),
    ("Strong quake rattles Santiago and Valparaiso, no major damage",
     "Chile's disaster agency Senapred said there were no reports of major damage after the magnitude 6.1 "
     "tremor near San Antonio on Thursday. Buildings swayed in Santiago and Valparaiso; about 20,000 homes "
     "lost power for two hours. The navy ruled out a tsunami. The quake was 45 kilometres deep."),
    ("Chile quake: navy rules out tsunami after 6.1 tremor near San Antonio",
     "The Chilean navy ruled out a tsunami threat after a magnitude 6.1 earthquake struck 45 kilometres "
     "below the coast near San Antonio on Thursday, shaking Santiago and Valparaiso. Senapred teams "
     "inspected roads and hospitals; power returned to 20,000 homes in Valparaiso within two hours."),
]
BANK = ("Central bank cuts rates for the fifth time this year",
        "The central bank cut its benchmark interest rate by a quarter point on Thursday, its fifth "
        "reduction this year, saying inflation had eased faster than expected. The board voted four to "
        "one; markets had expected the move and the currency weakened slightly. Economists said the bank "
        "would likely pause in February.")
REGISTRY = "".join(f"""
[[sources]]
slug = "{slug}"
name = "{slug.title()}"
  [[sources.feeds]]
  url = "https://{slug}.example/rss"
  language = "en"
""" for slug in ("wire", "voa", "daily"))


def test_shipped_model_loads_and_says_where_it_comes_from() -> None:
    doc = json.loads(Path(model.__file__).with_name(model.MODEL_FILE).read_text(encoding="utf-8"))
    assert doc["command"].split()[0] in ("bench/train_stories.py", "bench/eval_stories.py")
    assert set(doc["data_sha256"]) == {"ecbplus-dev.jsonl", "gvc-train.jsonl", "meantime-dev.jsonl",
                                       "semeval-pairs-dev.jsonl"}
    assert set(doc["trained_on"]) <= set(doc["data_sha256"])
    assert all(len(h) == 64 for h in doc["data_sha256"].values())
    cv = doc["cv_scores"]
    assert cv["ecbplus"]["b3_f1"] > 0.5 and cv["gvc"]["b3_f1"] > 0.5 and cv["meantime"]["b3_f1"] > 0.5
    assert cv["pairs"]["all"]["f1"] > 0.5 and {"ar", "de", "de-en", "tr"} <= set(cv["pairs"])
    models = load_models()
    assert models.version == doc["version"]
    assert "embedding_cos" in models.embedding.features and "cross" in models.embedding.features
    assert "embedding_cos" not in models.lexical.features
    assert models.sparse is not None and "embedding_cos" in models.sparse.features
    for m in (models.embedding, models.lexical, models.sparse):
        assert set(m.features) <= set(FEATURES) and len(m.coef) == len(m.features) == len(m.mean)
        assert 0.0 < m.threshold < 1.0


def _items(cfg: StoryConfig) -> list:
    return [build_item(i, i % 2, "en", T0 + timedelta(hours=i), t, None, b, cfg)
            for i, (t, b) in enumerate([*QUAKE, BANK])]


def test_matcher_joins_the_same_event_and_opens_a_new_story_for_another() -> None:
    cfg = StoryConfig(use_embedding=False)
    q1, q2, q3, bank = _items(cfg)
    m = Matcher({}, cfg)
    m.open(1, q1)
    m.open(2, bank)
    x = m.features(q2, [m.profiles[1], m.profiles[2]])
    assert x[0, FEATURES.index("entity_cos")] > x[1, FEATURES.index("entity_cos")]
    assert x[0, FEATURES.index("body_cos")] > 0.2 > x[1, FEATURES.index("body_cos")]
    assert m.decide(q2).story_id == 1
    far = replace(bank, id=9, time=T0 + timedelta(days=10))
    assert m.decide(far).story_id is None  # same words, outside the 72-hour window


def test_an_article_is_scored_against_the_stories_that_share_the_most_with_it() -> None:
    """A full window offers an article many stories that share two common words with it; it is
    scored against the ``max_candidates`` that share the most (names and numbers count twice)."""
    cfg = StoryConfig(use_embedding=False, max_candidates=2)
    q1, q2, q3, bank = _items(cfg)
    m = Matcher({}, cfg)
    m.open(1, bank)
    m.open(2, q1)
    m.open(3, q3)
    m.open(4, build_item(7, 1, "en", T0 + timedelta(hours=5), "Storm cuts power to coastal homes", None,
                         "A winter storm cut power to homes along the coast; buildings lost roofs and the "
                         "region's roads were closed.", cfg))  # shares a few common words with the quake
    wide = Matcher(dict(m.profiles), replace(cfg, max_candidates=32))
    everyone = [p.story_id for p in wide.active(q2)]
    assert len(everyone) > 2, "the test needs more candidates than the cap"
    hits = candidate_hits(q2, wide.index)
    best_two = sorted(sorted(everyone, key=lambda sid: (-hits[sid], sid))[:2])
    assert [p.story_id for p in m.active(q2)] == best_two == [2, 3]  # the quake's stories, by id
    assert m.decide(q2).story_id in (2, 3)


def test_converged_stories_merge_into_the_older_one() -> None:
    cfg = StoryConfig(use_embedding=False)
    q1, q2, q3, bank = _items(cfg)
    m = Matcher({}, cfg)
    m.open(1, bank)
    m.open(2, q1)
    m.open(3, q2)  # the same event, opened apart (as a stricter bar would have done)
    m.add(3, q3)
    assert m.merge_target(1) is None
    target = m.merge_target(3)
    assert target == 2
    assert m.merge(3, target) == (3, 2)
    assert set(m.profiles) == {1, 2} and m.profiles[2].member_count == 3
    assert m.merge_target(2) is None


def _setup(engine: Engine) -> dict[str, tuple[int, int]]:
    ids = store.sync_sources(engine, parse_sources(REGISTRY))
    feeds = {f.slug: f.id for f in store.due_feeds(engine, force=True)}
    return {slug: (sid, feeds[slug]) for slug, sid in ids.items()}


def _record(src: tuple[int, int], url: str, title: str, body: str, hours: float) -> ArticleRecord:
    return ArticleRecord(
        source_id=src[0], feed_id=src[1], entry_key=url, url=url, canonical_url=canonicalize(url),
        final_url=url, guid=None, title=title, description=None, body=body, language="en",
        authors=[], published_at=T0 + timedelta(hours=hours), updated_at=None, fetched_at=datetime.now(UTC),
        content_hash=content_hash(body), http_status=200, extraction_status="ok", extraction_error=None,
        word_count=len(body.split()))


def _story_of(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT a.canonical_url, sa.story_id FROM story_articles sa JOIN articles a ON a.id = sa.article_id")).all())


def test_stories_that_converge_are_merged_and_readers_can_follow(engine: Engine) -> None:
    src = _setup(engine)
    cfg = StoryConfig(use_embedding=False)
    shipped = load_models()
    # first, a bar no article clears: the two reports of the quake open two stories
    never = model.JoinModels(replace(shipped.embedding, threshold=1.01),
                             replace(shipped.lexical, threshold=1.01), "never")
    first = store.upsert_articles(engine, [
        _record(src["wire"], "https://wire.example/quake", *QUAKE[0], 0),
        _record(src["voa"], "https://voa.example/quake", *QUAKE[1], 1)])
    stories.StoryStage(engine, cfg, never).assign(first.new_ids)
    before = _story_of(engine)
    assert len(set(before.values())) == 2
    with engine.connect() as conn:  # kept apart, but linked: the model found them close
        links = conn.execute(text("SELECT story_id, related_story_id, kind FROM warehouse.story_links")).all()
    assert [tuple(r) for r in links] == [(max(before.values()), min(before.values()), "related")]
    older = min(before.values())
    # then the shipped model: a third report joins one, and the two converge
    third = store.upsert_articles(engine, [_record(src["daily"], "https://daily.example/quake", *QUAKE[2], 2)])
    counts = stories.StoryStage(engine, cfg, shipped).assign(third.new_ids)
    assert counts.stories_merged == 1
    after = _story_of(engine)
    assert set(after.values()) == {older}, "one story, under the older id"
    with engine.connect() as conn:
        merges = conn.execute(text("SELECT from_story_id, into_story_id FROM warehouse.story_merges")).all()
        assert [tuple(r) for r in merges] == [(max(before.values()), older)]
        assert conn.execute(text("SELECT count(*) FROM stories")).scalar_one() == 1
        assert conn.execute(text("SELECT article_count FROM stories")).scalar_one() == 3
        merge_xid = int(conn.execute(text("SELECT change_xid::text FROM story_merges")).scalar_one())
    # incremental readers get the merge in the pull window that covers it (the horizon is
    # cluster-wide: wait until other sessions' older transactions have finished)
    deadline = time.monotonic() + 120
    while True:
        with engine.connect() as conn:
            horizon = conn.execute(text("SELECT warehouse.pull_horizon()")).scalar_one()
            if horizon > merge_xid:
                changed = conn.execute(text("SELECT from_story_id FROM warehouse.story_merges_changed(0, :h)"),
                                       {"h": horizon}).scalars().all()
                before_merge = conn.execute(text("SELECT count(*) FROM warehouse.story_merges_changed(0, :h)"),
                                            {"h": merge_xid}).scalar_one()
                break
        assert time.monotonic() < deadline, "pull horizon stuck"
        time.sleep(0.2)
    assert changed == [max(before.values())]
    assert before_merge == 0
    with engine.connect() as conn:  # the link between the two merged stories went with the merge
        assert conn.execute(text("SELECT count(*) FROM warehouse.story_links")).scalar_one() == 0


def test_related_stories_are_linked_not_merged_and_a_quiet_one_is_a_follow_up() -> None:
    """With a bar no article clears, every report opens its own story; the model's close
    candidates become links: ``related`` when the other story is still running, ``follow_up``
    when it had gone quiet for ``follow_up_hours``; an unrelated story gets no link."""
    cfg = StoryConfig(use_embedding=False)
    shipped = load_models()
    never = model.JoinModels(replace(shipped.embedding, threshold=1.01),
                             replace(shipped.lexical, threshold=1.01), "never")
    q1, q2, q3, bank = _items(cfg)
    late = replace(q3, id=10, time=T0 + timedelta(hours=40))  # the quake, 40 h later
    repo = cluster([q1, replace(q2, time=T0 + timedelta(minutes=30)), bank, late], cfg, never)
    story = repo.story_of()
    assert len(set(story.values())) == 4
    links = {(link.story_id, link.related_id): link.kind for link in repo.links.values()}
    assert links[(story[q2.id], story[q1.id])] == "related"
    assert links[(story[late.id], story[q1.id])] == "follow_up"
    assert not any(story[bank.id] in pair for pair in links)
    assert all(link.score >= cfg.link_probability for link in repo.links.values())


def test_an_article_whose_text_changed_is_placed_again(engine: Engine) -> None:
    src = _setup(engine)
    cfg = StoryConfig(use_embedding=False)
    loaded = store.upsert_articles(engine, [
        _record(src["wire"], "https://wire.example/quake", *QUAKE[0], 0),
        _record(src["voa"], "https://voa.example/rates", *BANK, 1)])
    stories.assign(engine, loaded.new_ids, cfg)
    before = _story_of(engine)
    assert before["https://wire.example/quake"] != before["https://voa.example/rates"]
    # VOA's page is refetched and now reports the quake (a revision of the same URL)
    revised = store.upsert_articles(engine, [_record(src["voa"], "https://voa.example/rates", *QUAKE[1], 1)])
    assert revised.updated == 1 and not revised.new_ids
    counts = stories.assign(engine, [], cfg)
    assert counts.revised == 1
    after = _story_of(engine)
    assert after["https://voa.example/rates"] == after["https://wire.example/quake"]
    with engine.connect() as conn:
        # its old story had no other member: gone; nothing left queued
        assert conn.execute(text("SELECT count(*) FROM stories")).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM story_rescore")).scalar_one() == 0
    assert stories.assign(engine, [], cfg).revised == 0


def test_a_batch_is_decided_again_under_the_lock_when_another_worker_committed_meanwhile(engine: Engine) -> None:
    """A batch decides before it takes the story lock; when another worker's batch committed in
    between (the story clock moved), it rolls back and decides again under the lock. Alone, a
    worker never decides twice."""
    src = _setup(engine)
    cfg = StoryConfig(use_embedding=False)
    quake = store.upsert_articles(engine, [
        _record(src["wire"], "https://wire.example/quake", *QUAKE[0], 0),
        _record(src["voa"], "https://voa.example/quake", *QUAKE[1], 1)])
    bank = store.upsert_articles(engine, [_record(src["daily"], "https://daily.example/rates", *BANK, 24 * 30)])
    worker_a, worker_b = stories.StoryStage(engine, cfg), stories.StoryStage(engine, cfg)
    b_counts = []
    worker_a.before_lock = lambda: b_counts.append(worker_b.assign(bank.new_ids))
    a_counts = worker_a.assign(quake.new_ids)
    assert len(b_counts) == 1, "the hook ran once: the second decision was made under the lock"
    assert b_counts[0].redecided == 0 and b_counts[0].stories_new == 1
    assert a_counts.redecided == 1 and a_counts.processed == 2 and a_counts.stories_new == 1
    worker_a.before_lock = None
    later = store.upsert_articles(engine, [_record(src["daily"], "https://daily.example/quake", *QUAKE[2], 2)])
    again = worker_a.assign(later.new_ids)
    assert again.redecided == 0 and again.stories_joined == 1
    placed = _story_of(engine)
    assert len(placed) == 4, "every article placed once"
    assert placed["https://wire.example/quake"] == placed["https://voa.example/quake"] == placed["https://daily.example/quake"]
    assert placed["https://daily.example/rates"] != placed["https://wire.example/quake"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM stories")).scalar_one() == 2  # nothing left by the rollback
        assert conn.execute(text("SELECT tick FROM story_clock")).scalar_one() == 3  # three batches committed


def test_window_profiles_are_reused_only_while_their_rows_are_unchanged(engine: Engine) -> None:
    """The profile cache across batches: a batch's own changes to its profiles never leak into
    the next load, and a write to the row (by anyone, or earlier in the same transaction) is seen."""
    src = _setup(engine)
    loaded = store.upsert_articles(engine, [_record(src["wire"], "https://wire.example/quake", *QUAKE[0], 0)])
    stories.assign(engine, loaded.new_ids, StoryConfig(use_embedding=False))
    lo, hi = T0 - timedelta(days=3), T0 + timedelta(days=3)
    cache = ProfileCache()

    def _load_profiles(conn, lo, hi):  # noqa: ANN001, ANN202
        return cache.load(conn, lo, hi)

    with engine.connect() as conn:
        ((sid, first),) = _load_profiles(conn, lo, hi).items()
    with pytest.raises(TypeError):  # a profile shares the cached row's containers, read-only,
        first.terms["mutated"] = 5  # until its first change copies them
    first.own()
    first.terms["mutated"] += 5  # the matcher mutates the profiles of its batch
    with engine.connect() as conn:
        again = _load_profiles(conn, lo, hi)[sid]
    assert "mutated" not in again.terms and again.member_count == first.member_count == 1
    with engine.begin() as conn:  # another run rewrites the profile
        conn.execute(text("""UPDATE story_profiles SET member_count = 42, terms = '{"quake": 7}'"""))
    with engine.connect() as conn:
        fresh = _load_profiles(conn, lo, hi)[sid]
    assert fresh.member_count == 42 and fresh.terms == {"quake": 7}
    with engine.connect() as conn:  # two writes in one transaction share one xmin: still seen
        conn.execute(text("UPDATE story_profiles SET member_count = 43"))
        assert _load_profiles(conn, lo, hi)[sid].member_count == 43
        conn.execute(text("UPDATE story_profiles SET member_count = 44"))
        assert _load_profiles(conn, lo, hi)[sid].member_count == 44
        conn.rollback()
    with engine.connect() as conn:
        assert _load_profiles(conn, lo, hi)[sid].member_count == 42


MURDERS = ("Police: Four women found dead in Tulsa apartment",
           "Four women were found shot to death inside an apartment at the Fairmont Terrace complex in "
           "Tulsa on Monday, police said. Officers identified the victims as Rebeika Powell, 23, Kayetie "
           "Melchor, 22, Misty Nunley, 33, and Julie Jackson, 55. Detectives are looking for two brothers, "
           "Cedric Poore and James Poore, in connection with the killings at Fairmont Terrace.")
HEARING = ("Hearing set for Poore brothers charged in Fairmont Terrace murders",
           "A preliminary hearing was scheduled on Thursday for Cedric Poore and James Poore, the two brothers "
           "charged with first-degree murder in the killings of four women at the Fairmont Terrace apartment "
           "complex in Tulsa. Rebeika Powell, Kayetie Melchor, Misty Nunley and Julie Jackson were found shot "
           "to death in the apartment in January, police said.")

PLEA = ("Poore brothers plead not guilty in Fairmont Terrace killings",
        "Cedric Poore and James Poore pleaded not guilty on Tuesday to four counts of first-degree murder "
        "in the deaths of Rebeika Powell, Kayetie Melchor, Misty Nunley and Julie Jackson at the Fairmont "
        "Terrace apartments in Tulsa. A judge set the trial for next spring; both men remain in jail.")


def test_the_long_reach_links_a_follow_up_weeks_later_only_within_its_days() -> None:
    cfg = StoryConfig(use_embedding=False)
    murders, bank, hearing = (build_item(i, i, "en", T0 + timedelta(days=d), t, None, b, cfg)
                              for i, (d, (t, b)) in enumerate([(0, MURDERS), (0.05, BANK), (21, HEARING)]))
    def stories_of(items: list, c: StoryConfig) -> int:
        return len(set(cluster(items, c).story_of().values()))

    assert stories_of([murders, bank, hearing], cfg) == 2
    off = replace(cfg, reach_days=0)
    assert stories_of([murders, bank, hearing], off) == 3
    too_late = replace(hearing, time=T0 + timedelta(days=cfg.reach_days + 10))
    assert stories_of([murders, bank, too_late], cfg) == 3


def test_a_follow_up_weeks_later_joins_through_a_rare_name(engine: Engine) -> None:
    """The long reach in the database: three weeks after the murders, the hearing (same
    names) joins their story, found through the profiles' entity index; past the reach after
    the story's last article, another report opens a story of its own."""
    src = _setup(engine)
    cfg = StoryConfig(use_embedding=False)
    first = store.upsert_articles(engine, [
        _record(src["wire"], "https://wire.example/tulsa", *MURDERS, 0),
        _record(src["voa"], "https://voa.example/rates", *BANK, 1)])
    stories.assign(engine, first.new_ids, cfg)
    hearing = store.upsert_articles(engine, [_record(src["daily"], "https://daily.example/hearing", *HEARING, 21 * 24)])
    stories.assign(engine, hearing.new_ids, cfg)
    placed = _story_of(engine)
    assert placed["https://daily.example/hearing"] == placed["https://wire.example/tulsa"]
    assert placed["https://voa.example/rates"] != placed["https://wire.example/tulsa"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT article_count FROM stories WHERE id = :s"),
                            {"s": placed["https://wire.example/tulsa"]}).scalar_one() == 2
    late = store.upsert_articles(engine, [_record(src["voa"], "https://voa.example/plea", *PLEA,
                                                  (21 + cfg.reach_days + 10) * 24)])
    assert late.new_ids
    stories.assign(engine, late.new_ids, cfg)
    placed = _story_of(engine)
    assert placed["https://voa.example/plea"] != placed["https://wire.example/tulsa"]
