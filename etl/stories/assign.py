"""Story clustering: online, incremental, deterministic; runs after load, one batch at a time.

For each new article, in a fixed order (event time = published_at else first_seen_at, then
id), under one PostgreSQL advisory lock so that concurrent runs cannot interleave:

1. **Near-duplicate** (``etl.stories.dedup``): a copy gets ``duplicate_of`` → the earliest original and
   joins the original's story with relation ``near_duplicate`` (method ``minhash``).
2. **Attribution** (``etl.stories.attribution``): cues such as "según la VOA" or "(AFP)" become
   ``article_citations`` rows. When a cited outlet has an article in a story of the window and
   this article's similarity to that story clears the *lower* attribution threshold, it joins
   with relation ``cites`` (method ``attribution``): an outlet saying it is reporting another
   outlet's story is strong evidence that it is the same event.
3. **Story match** (``etl.stories.decision``): the stories active in the window (default ±72 h
   around the article's time) that share a name, a number or two content words with it are
   compared with the article through their *profiles* — never their articles — on per-field
   IDF-weighted cosines (title, lead, body), entity and number overlap, the embedding cosine,
   time gap, outlet and size; a logistic regression fitted on the ECB+ and GVC dev sets
   (``join_model.json``, ``bench/eval_stories.py --write-model``) gives P(same event). The most
   probable story is joined at or above the model's threshold (relation ``same_story``, method
   ``embedding`` when the embedding was the largest contribution, else ``lexical``); otherwise
   the article opens a new story (relation ``original``). A story with no member in the
   article's language is scored by the hand-set cross-lingual rule of ``scoring.score``.
   Older stories (ended up to ``reach_days`` before the window) are candidates too when they
   share a rare name with the article, found by one indexed lookup per batch
   (:func:`_load_reach`), and joined only at ``reach_probability``.
4. **Merges**: at the end of the batch, each story that grew is compared with the others of its
   window like an article; one that converged (P ≥ ``merge_probability``) is folded into the
   older story, recorded in ``story_merges``.

Articles whose text changed after they were placed (queued in ``story_rescore`` by a trigger)
are taken out of their story and placed again with the next batch.

A rerun changes nothing (processed articles carry ``article_features.assigned_at``);
:func:`recluster` rebuilds a window from scratch.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.engine import Connection, Row

from etl.config import StoryConfig
from etl.models import AssignCounts, MatchMethod, Relation
from etl.store.queries import query
from etl.store.retry import retry_on_conflict
from etl.stories import attribution, dedup, features
from etl.stories.decision import REACH_MIN_NAME, Matcher, Reach, WindowState, build_item
from etl.stories.scoring import Item, Profile, score

log = logging.getLogger(__name__)

LOCK_KEY = 0x6E657773  # 'news': serializes story assignment across processes
REVISED_PER_BATCH = 200  # revised articles a batch places again (the rest wait for the next)
# Library default for scripts and tests; the flows and commands pass ``settings.stories``.
DEFAULT_CONFIG = StoryConfig()


# --- the articles being assigned --------------------------------------------------------------

def _lang(code: str | None) -> str | None:
    return code.split("-")[0].split("_")[0].lower() if code else None


def _load_items(conn: Connection, ids: Sequence[int], cfg: StoryConfig) -> list[Item]:
    """The not-yet-assigned articles among ``ids``, in processing order, with their features:
    the lexical ones recomputed from the text (cheap), the embedding from the cache or from
    one encoder call for the whole batch; the features are cached in ``article_features``."""
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
            "emb": _float4_array(item.embedding)} for item in items])
    return items


def _float4_array(v: np.ndarray | None) -> str | None:
    """A float32 vector as a PostgreSQL array literal: the driver's list adapter walks 512
    floats in Python per row (a tenth of the stage's CPU); ``str`` of the list does it in C.
    Each float32 value is written as the shortest decimal of its exact double, which reads
    back as the same float4."""
    if v is None:
        return None
    return "{" + str(v.tolist())[1:-1] + "}"


@dataclass(frozen=True)
class _StoredProfile:
    """A ``story_profiles`` row (with its story's span) as decoded from the database: shared,
    never mutated; each batch builds its own :class:`Profile` from it (the matcher mutates those)."""

    first: datetime
    last: datetime
    member_count: int
    terms: dict
    entities: dict
    numbers: dict
    centroid: np.ndarray | None
    embedded_count: int
    languages: tuple[str, ...]
    source_ids: tuple[int, ...]
    title: dict
    body: dict

    def profile(self, story_id: int) -> Profile:
        return Profile(
            story_id, self.first, self.last, self.member_count, Counter(self.terms), Counter(self.entities),
            Counter(self.numbers), self.centroid.copy() if self.centroid is not None else None,
            self.embedded_count, set(self.languages), set(self.source_ids), Counter(self.title), Counter(self.body),
            origin=self)


# Decoded profiles of the recent windows, per database: story id -> (stamp, row, last load that
# used it). Consecutive batches share most of their window, and decoding ~3,000 profiles (JSON)
# per batch was a fifth of the stage's CPU. A row is reused only while its stamp (the xmin of the
# story and profile rows) is unchanged, so any write by any process is seen; rows this
# transaction wrote are never kept. Memory: about one window's rows beside the batch's own copies.
_PROFILE_CACHE: dict[str, dict[int, tuple[str, "_StoredProfile", int]]] = {}
_PROFILE_CACHE_LIMIT = 5_000  # rows per database; beyond it, rows unused by the last 3 loads go
_profile_cache_lock = threading.Lock()
_profile_loads = 0


def _decode_profile(r: Row) -> _StoredProfile:
    return _StoredProfile(
        r.first_published_at, r.last_published_at, r.member_count, r.terms, r.entities, r.numbers,
        np.asarray(r.centroid, dtype=np.float32) if r.centroid is not None else None,
        r.embedded_count, tuple(r.languages), tuple(r.source_ids), r.title_terms, r.body_terms)


def _load_profiles(conn: Connection, start: datetime, end: datetime) -> dict[int, Profile]:
    """Profiles of the stories active between ``start`` and ``end`` (window included): the
    stamps of the window first, then only the rows not decoded before (or changed since)."""
    stamps = conn.execute(query("stories/active_profile_stamps"), {"start": start, "end": end}).all()
    key = conn.engine.url.render_as_string(hide_password=True)
    global _profile_loads
    with _profile_cache_lock:
        _profile_loads += 1
        gen = _profile_loads
        cache = _PROFILE_CACHE.setdefault(key, {})
        want = [r.id for r in stamps if r.own or cache.get(r.id, ("",))[0] != r.stamp]
        fetched: dict[int, _StoredProfile] = {}
        if want:
            own = {r.id for r in stamps if r.own}
            for r in conn.execute(query("stories/profiles_by_id"), {"ids": want}):
                fetched[r.id] = stored = _decode_profile(r)
                if r.id not in own:
                    cache[r.id] = (r.stamp, stored, gen)
                else:
                    cache.pop(r.id, None)
        out = {}
        for r in stamps:
            hit = fetched.get(r.id)
            if hit is None and not r.own and r.id in cache:
                stamp, hit, _ = cache[r.id]
                cache[r.id] = (stamp, hit, gen)
            if hit is not None:  # None: deleted between the two reads
                out[r.id] = hit.profile(r.id)
        if len(cache) > _PROFILE_CACHE_LIMIT:
            for sid in [k for k, v in cache.items() if v[2] < gen - 2]:
                del cache[sid]
    return out


# The matcher's index, story frequencies and story arrays, per database, carried from batch to
# batch (decision.WindowState: it re-derives whatever changed, keyed on the shared decoded rows
# above). One batch at a time uses it (the advisory lock serializes batches per database; a
# thread that finds it busy anyway builds its own).
_WINDOW_STATES: dict[str, tuple[threading.Lock, WindowState]] = {}


@contextmanager
def _window_state(conn: Connection) -> Iterator[WindowState | None]:
    key = conn.engine.url.render_as_string(hide_password=True)
    with _profile_cache_lock:
        entry = _WINDOW_STATES.get(key)
        if entry is None:
            entry = _WINDOW_STATES[key] = (threading.Lock(), WindowState())
    if not entry[0].acquire(blocking=False):
        yield None
        return
    try:
        yield entry[1]
    finally:
        entry[0].release()


def _save_profiles(conn: Connection, profs: Sequence[Profile]) -> None:
    """One executemany for every changed profile of a batch."""
    if profs:
        conn.execute(query("stories/save_profile"), [_profile_params(p) for p in profs])


def _save_profile(conn: Connection, p: Profile) -> None:
    _save_profiles(conn, [p])


def _profile_params(p: Profile) -> dict[str, object]:
    p.dirty = False
    return {
        "id": p.story_id, "n": p.member_count, "terms": json.dumps(p.terms, sort_keys=True),
        "entities": json.dumps(p.entities, sort_keys=True), "numbers": json.dumps(p.numbers, sort_keys=True),
        "centroid": _float4_array(p.centroid),
        "ne": p.embedded_count, "langs": sorted(p.languages), "sources": sorted(p.source_ids),
        "body": json.dumps(p.cap_body(), sort_keys=True), "title": json.dumps(dict(p.title), sort_keys=True)}


def refresh_story_counters(conn: Connection, story_ids: Iterable[int]) -> None:
    """Recomputes title, counts and first/last time from the members; bumps updated_at.
    The title is the original's (the first article of the story)."""
    ids = sorted(set(story_ids))
    if not ids:
        return
    conn.execute(query("stories/refresh_story_counters"), {"ids": ids})


def _outlets(conn: Connection) -> list[tuple[str, attribution.Outlet]]:
    rows = conn.execute(query("stories/outlets")).all()
    return attribution.outlet_index((r.id, r.slug, r.name) for r in rows)


# --- assignment -------------------------------------------------------------------------------

def _assign_items(conn: Connection, items: list[Item], cfg: StoryConfig) -> AssignCounts:
    counts = AssignCounts()
    if not items:
        return counts
    with _window_state(conn) as state:
        return _assign_in_window(conn, items, cfg, counts, state)


class _Members:
    """The batch's new story memberships, inserted together (one statement, so the warehouse's
    statement-level membership trigger fires once, not once per article). Reads of
    ``story_articles`` during the batch go through here: a pending row answers for itself, and
    the rows are flushed before a query that could see them."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pending: dict[int, list] = {}   # article id -> [story, relation, score, method]
        self.stories: set[int] = set()
        self.new_stories: list[tuple[int, str | None, datetime]] = []  # inserted before the members
        self.free_ids: list[int] = []
        self.taken = 0

    def new_story(self, title: str | None, t: datetime, upper_bound: int) -> int:
        """A new story's id, from the stories' sequence in creation order (ids for up to
        ``upper_bound`` stories are taken in one statement; unused ones are skipped, as a
        rolled-back insert's would be); the row is inserted with the batch's other new stories."""
        if not self.free_ids:
            self.free_ids = list(self.conn.execute(query("stories/new_story_ids"), {"n": upper_bound}).scalars())
            self.taken = self.free_ids[-1]
            self.free_ids.reverse()
        story_id = self.free_ids.pop()
        self.new_stories.append((story_id, title, t))
        return story_id

    def add(self, story_id: int, article_id: int, relation: Relation, score: float | None,
            method: MatchMethod | None) -> None:
        self.pending[article_id] = [story_id, relation, score, method]
        self.stories.add(story_id)

    def of(self, article_id: int) -> tuple[int, Relation, float | None, MatchMethod | None] | None:
        """(story, relation, score, method) of an article, as stories/membership reads it."""
        row = self.pending.get(article_id)
        if row is not None:
            return row[0], row[1], row[2], row[3]
        r = self.conn.execute(query("stories/membership"), {"id": article_id}).first()
        return (r.story_id, r.relation, r.score, r.method) if r is not None else None

    def demote(self, article_id: int, score: float) -> None:
        """stories/demote_to_near_duplicate."""
        row = self.pending.get(article_id)
        if row is not None:
            row[1], row[2], row[3] = Relation.NEAR_DUPLICATE, score, MatchMethod.MINHASH
        else:
            self.conn.execute(query("stories/demote_to_near_duplicate"), {"id": article_id, "s": score})

    def first_of_outlet(self, story_id: int, source_id: int, me: int) -> int | None:
        if story_id in self.stories:
            self.flush()
        return self.conn.execute(query("stories/first_article_of_outlet"), {
            "s": story_id, "src": source_id, "me": me}).scalar()

    def close(self) -> None:
        """Flushes, and gives back the story ids taken but not used."""
        self.flush()
        if self.free_ids:
            self.conn.execute(query("stories/give_back_story_ids"), {"next": self.free_ids[-1], "taken": self.taken})
            self.free_ids = []

    def flush(self) -> None:
        if self.new_stories:
            self.conn.execute(query("stories/new_stories"), {
                "ids": [i for i, _, _ in self.new_stories], "titles": [t for _, t, _ in self.new_stories],
                "ts": [t for _, _, t in self.new_stories]})
            self.new_stories.clear()
        if not self.pending:
            return
        rows = list(self.pending.items())
        self.conn.execute(query("stories/add_members"), {
            "s": [r[0] for _, r in rows], "a": [a for a, _ in rows], "rel": [str(r[1]) for _, r in rows],
            "score": [r[2] for _, r in rows], "method": [str(r[3]) if r[3] is not None else None for _, r in rows]})
        self.pending.clear()
        self.stories.clear()


def _assign_in_window(conn: Connection, items: list[Item], cfg: StoryConfig, counts: AssignCounts,
                      state: WindowState | None) -> AssignCounts:
    window = timedelta(hours=cfg.window_hours)
    profiles = _load_profiles(conn, items[0].time - window, items[-1].time + window)
    matcher = Matcher(profiles, cfg, state=state)
    matcher.reach = _load_reach(conn, items, matcher, cfg)
    outlets = _outlets(conn)
    touched: set[int] = set()
    grown: set[int] = set()
    all_bands = [dedup.bands_for(art.body) for art in items]
    probe = dedup.BatchProbe()
    probe.load(conn, [(art.id, bands) for art, bands in zip(items, all_bands, strict=True)])
    members = _Members(conn)
    citations: list[dict[str, object]] = []
    for k, (art, bands) in enumerate(zip(items, all_bands, strict=True)):
        counts.processed += 1
        story_id: int | None = None
        relation, method, sim = Relation.ORIGINAL, None, None
        cited_article: dict[str, int] = {}

        # 1. near-duplicate of a stored article (or of one earlier in the batch) → the original's story
        near = dedup.confirm(conn, art.body, probe.candidates(art.id, bands)) if bands else None
        took_over = False
        if near is not None:
            counts.near_duplicates += 1
            member = members.of(near.original_id)
            if (art.time, art.id) < (near.original_time, near.original_id):
                # published before the stored "original": this one is the original, and it
                # takes over the old original's place in the story
                dedup.make_original(conn, art.id, near.original_id)
                if member is not None:
                    members.demote(near.original_id, near.score)
                    story_id, relation, sim, method = member
                    relation = Relation(relation)
                    method = MatchMethod(method) if method is not None else None
                    took_over = True
            else:
                dedup.mark_duplicate(conn, art.id, near.original_id)
                if member is not None:
                    story_id, relation, method, sim = member[0], Relation.NEAR_DUPLICATE, MatchMethod.MINHASH, near.score
            if story_id is not None and story_id not in profiles:
                for p in _load_profiles_by_id(conn, [story_id]).values():
                    matcher.track(p)

        # 2. attribution cues (recorded whatever happens next)
        cites = attribution.find_citations(
            "\n".join(x for x in (art.title, art.description, art.body) if x), outlets, art.source_id)
        active = matcher.active(art)
        if story_id is None:
            decided = matcher.decide(art, active + matcher.reach_candidates(art))
            cited_sources = {c.outlet.source_id for c in cites if c.outlet.source_id is not None}
            if decided.story_id is not None:
                story_id, relation, sim, method = decided.story_id, Relation.SAME_STORY, decided.score, decided.method
            elif active and cited_sources:
                # the best story that holds an article of a cited outlet, at the lower bar
                for p in sorted(active, key=lambda p: p.story_id):
                    if not (p.source_ids & cited_sources):
                        continue
                    s, _m = score(art, p, cfg)
                    if s >= cfg.cites_threshold and (sim is None or s > sim):
                        story_id, relation, sim, method = p.story_id, Relation.CITES, s, MatchMethod.ATTRIBUTION
        if story_id is not None and relation != Relation.ORIGINAL:
            for c in cites:
                if c.outlet.source_id is None:
                    continue
                aid = members.first_of_outlet(story_id, c.outlet.source_id, art.id)
                if aid is not None:
                    cited_article[c.outlet.name] = aid
        citations.extend({"a": art.id, "name": c.outlet.name, "src": c.outlet.source_id,
                          "cited": cited_article.get(c.outlet.name), "cue": c.cue[:200]} for c in cites)
        counts.citations += len(cites)

        # 3. join or open a story
        if story_id is None:
            story_id = members.new_story(art.title, art.time, len(items) - k)
            matcher.open(story_id, art)
            counts.stories_new += 1
        else:
            if relation != Relation.NEAR_DUPLICATE and not took_over:
                counts.stories_joined += 1
            # a copy adds no new evidence: counting its words twice would tilt the profile
            matcher.add(story_id, art, profile_too=relation != Relation.NEAR_DUPLICATE and not took_over)
        members.add(story_id, art.id, relation, sim, method)
        touched.add(story_id)
        if relation in (Relation.SAME_STORY, Relation.CITES):
            grown.add(story_id)
    members.close()
    dedup.store_batch_bands(conn, probe)
    if citations:  # one pipelined executemany
        conn.execute(query("stories/save_citation"), citations)
    # 4. stories that grew in this batch: has one converged with another?
    for gone, into in matcher.merge_converged(grown):
        conn.execute(query("stories/merge_members"), {"from": gone, "into": into})
        conn.execute(query("stories/drop_story"), {"id": gone})
        touched.discard(gone)
        touched.add(into)
        counts.stories_merged += 1
    conn.execute(query("stories/mark_assigned"), {"ids": [art.id for art in items]})
    _save_profiles(conn, [profiles[sid] for sid in sorted(touched)])
    refresh_story_counters(conn, touched)
    return counts


def _load_reach(conn: Connection, items: Sequence[Item], matcher: Matcher, cfg: StoryConfig) -> Reach | None:
    """The long reach of a batch (:class:`etl.stories.decision.Reach`): the stories that
    ended within ``cfg.reach_days`` before the batch, before its window, and hold one of the
    batch's rare names — found through the profiles' entity index, never by loading the
    span: names that more than ``reach_max_stories`` stories of the window hold are not
    looked up, and each name stops at its cap + 1 stories (then it is not rare). Two
    set-based statements per batch (the names, then the profiles of the rare ones' stories)."""
    if cfg.reach_days <= 0 or not items:
        return None
    caps: dict[str, int] = {}
    for art in items:
        for e in art.entities:
            if len(e) >= REACH_MIN_NAME and e not in caps:
                caps[e] = cfg.reach_max_stories - len(matcher.index.entities.get(e, ()))
    keys = sorted(k for k, cap in caps.items() if cap > 0)
    if not keys:
        return Reach({}, {})
    rows = conn.execute(query("stories/reach_candidates"), {
        "keys": keys, "caps": [caps[k] for k in keys],
        "far": items[0].time - timedelta(days=cfg.reach_days),
        "edge": items[0].time - timedelta(hours=cfg.window_hours)}).all()
    hits: dict[str, list[int]] = {}
    for r in rows:
        hits.setdefault(r.key, []).append(r.id)
    ids = sorted({sid for k, sids in hits.items() if len(sids) <= caps[k] for sid in sids} - matcher.profiles.keys())
    profiles: dict[int, Profile] = {}
    if ids:
        for r in conn.execute(query("stories/profiles_by_id"), {"ids": ids}):
            profiles[r.id] = _decode_profile(r).profile(r.id)
    return Reach(profiles, {k: len(sids) for k, sids in hits.items()})


def _load_profiles_by_id(conn: Connection, ids: Sequence[int]) -> dict[int, Profile]:
    rows = conn.execute(query("stories/story_spans"), {"ids": list(ids)}).all()
    if not rows:
        return {}
    start = min(r.first_published_at for r in rows)
    end = max(r.last_published_at for r in rows)
    return {k: v for k, v in _load_profiles(conn, start, end).items() if k in ids}


def assign(engine: Engine, article_ids: Sequence[int], config: StoryConfig = DEFAULT_CONFIG) -> AssignCounts:
    """Dedup + story assignment for the given articles (already-assigned ones are skipped),
    in event-time order, in one transaction under the story lock — together with the articles
    whose text changed since they were placed (queued in ``story_rescore``)."""

    def transaction() -> AssignCounts:
        with engine.begin() as conn:
            conn.execute(query("stories/lock"), {"k": LOCK_KEY})
            # articles whose text changed since they were placed are placed again, with the batch
            revised = conn.execute(query("stories/take_revised"), {"n": REVISED_PER_BATCH}).scalars().all()
            if revised:
                _release(conn, revised)
                conn.execute(query("stories/forget_features"), {"ids": list(revised)})
            items = _load_items(conn, sorted(set(article_ids) | set(revised)), config)
            counts = _assign_items(conn, items, config)
            counts.revised = len(revised)
            return counts

    # a concurrent load's trigger (articles → stories) can deadlock with us; the whole batch
    # rolled back, so it is simply run again
    return retry_on_conflict(transaction, what=f"assigning stories to {len(article_ids)} article(s)")


def assign_pending(engine: Engine, config: StoryConfig = DEFAULT_CONFIG, since: datetime | None = None,
                   chunk: int = 200) -> AssignCounts:
    """Assigns every article not yet processed (optionally only from ``since``), oldest first,
    in chunks: what :func:`recluster` and a backlog catch-up run."""
    total = AssignCounts()
    last: tuple[datetime, int] | None = None
    while True:
        with engine.connect() as conn:
            rows = conn.execute(query("stories/pending_articles"), {
                "since": since, "lt": last[0] if last else None, "lid": last[1] if last else 0,
                "n": chunk}).all()
        if not rows:
            return total
        total.add(assign(engine, [r.id for r in rows], config))
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
    refresh_story_counters(conn, kept)


def _rebuild_profile(conn: Connection, story_id: int) -> None:
    rows = conn.execute(query("stories/profile_members"), {"s": story_id}).all()
    if not rows:
        return
    prof = Profile(story_id, rows[0].event_t, rows[0].event_t)
    for r in rows:
        item = Item(r.id, r.source_id, r.language, r.event_t, None, None, None, list(r.terms), list(r.entities),
                    list(r.numbers), np.asarray(r.embedding, dtype=np.float32) if r.embedding is not None else None,
                    features.term_vector(r.title), features.term_vector(r.body or r.description))
        prof.add(item, profile_too=r.relation != Relation.NEAR_DUPLICATE)
    _save_profile(conn, prof)


