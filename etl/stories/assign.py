"""The story stage in the pipeline: online, incremental, deterministic; runs after load, one
batch at a time, through the story engine (``etl.stories.engine``) on PostgreSQL.

A batch goes in two steps:

1. **Outside the story lock** — what depends on the article alone: its text features, its
   sentence embedding (one encoder call for the batch) and its MinHash bands; the features are
   cached in ``article_features``; the window's profiles are read into the stage's cache.
2. **One transaction, committed under the lock** (one PostgreSQL advisory lock per database,
   so that concurrent runs cannot interleave and the stories are a function of the order of
   the batches): the articles still unplaced, with those whose text changed since they were
   placed (queued in ``story_rescore`` by a trigger: taken out of their story and placed
   again), go through the engine in processing order (event time = published_at else
   first_seen_at, then id), and everything the batch decided is written. The batch decides
   *before* taking the lock and checks the story clock (sql/0017_story_clock.sql) once it
   holds it: when another worker's batch committed meanwhile, it rolls back and decides again
   under the lock (``AssignCounts.redecided``).

The lock is the one serial section when workers share a database: ``AssignCounts.lock_seconds``
is how long a batch held it (with one worker: the clock check and the commit).

A rerun changes nothing (processed articles carry ``article_features.assigned_at``);
:func:`recluster` rebuilds a window from scratch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from etl.config import StoryConfig
from etl.models import AssignCounts, Relation
from etl.store.queries import query
from etl.store.retry import retry_on_conflict
from etl.stories import features
from etl.stories.engine import StoryEngine, prepare
from etl.stories.model import JoinModels
from etl.stories.postgres import PostgresRepository, ProfileCache
from etl.stories.profile import Item, Profile, build_item
from etl.stories.repository import Prepared
from etl.stories.snapshot import float4_array, row_params

log = logging.getLogger(__name__)

LOCK_KEY = 0x6E657773  # 'news': serializes story assignment across processes
REVISED_PER_BATCH = 200  # revised articles a batch places again (the rest wait for the next)
# Library default for scripts and tests; the flows and commands pass ``settings.stories``.
DEFAULT_CONFIG = StoryConfig()


def _lang(code: str | None) -> str | None:
    return code.split("-")[0].split("_")[0].lower() if code else None


class _Stale(Exception):
    """Another story transaction committed while a batch decided without the lock."""


class StoryStage:
    """The story stage of one process on one database: the engine (and the window state it
    carries from batch to batch) and the profile cache. A run's story lane holds one for the
    run; a command makes its own. Batches go through it one at a time (the engine's state is
    the stage's own: a second thread waits for the first)."""

    def __init__(self, db: Engine, config: StoryConfig = DEFAULT_CONFIG, models: JoinModels | None = None) -> None:
        self.db = db
        self.config = config
        self.engine = StoryEngine(config, models)
        self.cache = ProfileCache()
        self._one_at_a_time = threading.Lock()
        # called between deciding a batch and taking the lock (tests: another worker commits there)
        self.before_lock: Callable[[], object] | None = None

    def assign(self, article_ids: Sequence[int]) -> AssignCounts:
        """Near-duplicates and stories for the given articles (already-placed ones are
        skipped), together with the articles whose text changed since they were placed."""
        # a restarting database fails the preparation like the transaction: both are run again
        prepared = retry_on_conflict(lambda: self._prepare_outside_lock(article_ids),
                                     what=f"preparing {len(article_ids)} article(s) for the story stage")

        def attempt() -> AssignCounts:
            try:
                return self._place(prepared, locked=False)
            except _Stale:  # another worker placed articles meanwhile: decide again, under the lock
                counts = self._place(prepared, locked=True)
                counts.redecided += 1
                return counts

        # a concurrent load's trigger (articles → stories) can deadlock with us; the whole batch
        # rolled back, so it is simply run again
        return retry_on_conflict(attempt, what=f"assigning stories to {len(article_ids)} article(s)")

    def _place(self, prepared: list[Prepared], locked: bool) -> AssignCounts:
        """One transaction: the batch decided and written, then committed under the story lock.

        ``locked=False`` (the first try): the batch is decided without the lock, in its own
        transaction, reading the story clock first (sql/0017_story_clock.sql); the lock is
        taken just before the commit and the clock read again. Unchanged, no other story
        transaction committed while this one read, so its decisions are the ones it would have
        made under the lock; changed, :class:`_Stale` rolls everything back (the engine's window
        state recounts what the batch touched at its next sync). ``locked=True``: the lock is
        taken first, as a batch that must not fail again."""
        with self._one_at_a_time, self.db.begin() as conn:
            held_from = time.perf_counter()
            if locked:
                conn.execute(query("stories/lock"), {"k": LOCK_KEY})
            seen = conn.execute(query("stories/clock")).scalar_one()
            revised = set(conn.execute(query("stories/take_revised"), {"n": REVISED_PER_BATCH}).scalars())
            if revised:
                _release(conn, sorted(revised))
                conn.execute(query("stories/forget_features"), {"ids": sorted(revised)})
            # another worker may have placed some of them while this one prepared
            still = set(conn.execute(query("stories/still_unassigned"),
                                     {"ids": [p.item.id for p in prepared]}).scalars()) if prepared else set()
            arts = [p for p in prepared if p.item.id in still and p.item.id not in revised]
            if revised:  # their text changed: prepared again, in the transaction (a few per batch)
                arts += self._prepare(conn, sorted(revised))
                arts.sort(key=lambda p: (p.item.time, p.item.id))
            result = self.engine.step(PostgresRepository(conn, self.cache), arts)
            changed = bool(arts or revised)  # nothing to place: no lock, no tick (no one decides again)
            if changed and not locked:
                if self.before_lock is not None:
                    self.before_lock()
                held_from = time.perf_counter()
                conn.execute(query("stories/lock"), {"k": LOCK_KEY})
                if conn.execute(query("stories/clock")).scalar_one() != seen:
                    raise _Stale
            if changed:
                conn.execute(query("stories/tick"))
            counts = result.counts
            counts.revised = len(revised)
        counts.lock_seconds = time.perf_counter() - held_from if changed or locked else 0.0  # commit included
        return counts

    def _prepare_outside_lock(self, article_ids: Sequence[int]) -> list[Prepared]:
        if not article_ids:
            return []
        with self.db.begin() as conn:
            prepared = self._prepare(conn, article_ids)
        if prepared:  # the window's profiles into the cache, so that the locked read finds them
            window = timedelta(hours=self.config.window_hours)
            with self.db.connect() as conn:
                self.cache.load(conn, prepared[0].item.time - window, prepared[-1].item.time + window)
        return prepared

    def _prepare(self, conn: Connection, ids: Sequence[int]) -> list[Prepared]:
        """The not-yet-placed articles among ``ids``, in processing order, with their features:
        the lexical ones recomputed from the text (cheap), the embedding from the cache or from
        one encoder call for the batch; the features are cached in ``article_features``."""
        cfg = self.config
        rows = conn.execute(query("stories/unassigned_articles"), {"ids": list(ids)}).all()
        items: list[Item] = []
        to_embed: list[tuple[int, str]] = []
        for r in rows:
            emb = np.asarray(r.embedding, dtype=np.float32) if r.has_features and r.embedding is not None else None
            item = build_item(r.id, r.source_id, _lang(r.language), r.event_t, r.title, r.description, r.body,
                              cfg, emb)
            if item.embedding is None and cfg.use_embedding:
                to_embed.append((len(items), features.lead(r.title, r.description, r.body, cfg.lead_chars)))
            items.append(item)
        if to_embed:
            vecs = features.embed([t for _, t in to_embed])
            if vecs is not None:
                for (i, _), v in zip(to_embed, vecs, strict=True):
                    items[i].embedding = v
        if items:  # one executemany (pipelined), not a round trip per article
            conn.execute(query("stories/save_features"), [{
                "id": item.id, "t": item.time, "lang": item.language, "terms": item.terms,
                "entities": item.entities, "numbers": item.numbers,
                "emb": float4_array(item.embedding)} for item in items])
        return [prepare(item) for item in items]


def assign(engine: Engine, article_ids: Sequence[int], config: StoryConfig = DEFAULT_CONFIG,
           stage: StoryStage | None = None) -> AssignCounts:
    """Dedup + story assignment for the given articles (see :class:`StoryStage`); ``stage``
    carries the window state and profile cache from an earlier batch of the same run."""
    return (stage if stage is not None else StoryStage(engine, config)).assign(article_ids)


def assign_pending(engine: Engine, config: StoryConfig = DEFAULT_CONFIG, since: datetime | None = None,
                   chunk: int = 200) -> AssignCounts:
    """Assigns every article not yet processed (optionally only from ``since``), oldest first,
    in chunks: what :func:`recluster` and a backlog catch-up run."""
    total = AssignCounts()
    stage = StoryStage(engine, config)
    last: tuple[datetime, int] | None = None
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query("stories/pending_articles"), {
                "since": since, "lt": last[0] if last else None, "lid": last[1] if last else 0,
                "n": chunk}).all()
        if not rows:
            return total
        total.add(stage.assign([r.id for r in rows]))
        last = (rows[-1].event_t, rows[-1].id)


def recluster(engine: Engine, since: datetime, config: StoryConfig = DEFAULT_CONFIG) -> AssignCounts:
    """Rebuilds the stories of every article from ``since`` on, from scratch and in order.

    Their story memberships, near-duplicate links, LSH bands and citations are deleted; stories
    left empty are deleted, stories that keep older members get their profile rebuilt from
    those members; then the window is assigned again. Cached features (and embeddings) stay.
    """
    with engine.begin() as conn:
        conn.execute(query("stories/lock"), {"k": LOCK_KEY})
        ids = conn.execute(query("stories/recluster_articles"), {"since": since}).scalars().all()
        _release(conn, ids)
        conn.execute(query("stories/tick"))
    return assign_pending(engine, config, since=since)


def _release(conn: Connection, ids: Sequence[int]) -> None:
    """Takes articles out of the story stage's results, to be assigned again: memberships,
    near-duplicate links, LSH bands and citations go; stories left empty are deleted, those
    that keep other members get their profile rebuilt from them (set-based, but for the
    profile rebuild: one per kept story)."""
    if not ids:
        return
    affected = conn.execute(query("stories/recluster_affected_stories"), {"ids": ids}).scalars().all()
    conn.execute(query("stories/recluster_drop_members"), {"ids": ids})
    conn.execute(query("stories/recluster_clear_duplicates"), {"ids": ids})
    conn.execute(query("stories/recluster_drop_bands"), {"ids": ids})
    conn.execute(query("stories/recluster_drop_citations"), {"ids": ids})
    conn.execute(query("stories/recluster_unassign"), {"ids": ids})
    conn.execute(query("stories/recluster_drop_empty_stories"), {"ids": affected})
    kept = conn.execute(query("stories/recluster_kept_stories"), {"ids": affected}).scalars().all()
    for sid in kept:
        _rebuild_profile(conn, sid)
    if kept:
        conn.execute(query("stories/refresh_story_counters"), {"ids": sorted(kept)})


def _rebuild_profile(conn: Connection, story_id: int) -> None:
    rows = conn.execute(query("stories/profile_members"), {"s": story_id}).all()
    if not rows:
        return
    prof = Profile(story_id, rows[0].event_t, rows[0].event_t)
    for r in rows:
        item = Item(r.id, r.source_id, r.language, r.event_t, None, None, None, list(r.terms), list(r.entities),
                    list(r.numbers), np.asarray(r.embedding, dtype=np.float32) if r.embedding is not None else None,
                    features.term_vector(r.title, lang=r.language),
                    features.term_vector(r.body or r.description, lang=r.language))
        prof.add(item, profile_too=r.relation != Relation.NEAR_DUPLICATE)
    conn.execute(query("stories/save_profile"), [row_params(prof)])
