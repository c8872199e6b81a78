"""Story clustering: online, incremental, deterministic; runs after load, one batch at a time.

For each new article, in a fixed order (event time = published_at else first_seen_at, then
id), under one PostgreSQL advisory lock so that concurrent runs cannot interleave:

1. **Near-duplicate** (``etl.dedup``): a copy gets ``duplicate_of`` → the earliest original and
   joins the original's story with relation ``near_duplicate`` (method ``minhash``).
2. **Attribution** (``etl.attribution``): cues such as "según la VOA" or "(AFP)" become
   ``article_citations`` rows. When a cited outlet has an article in a story of the window and
   this article's similarity to that story clears the *lower* attribution threshold, it joins
   with relation ``cites`` (method ``attribution``): an outlet saying it is reporting another
   outlet's story is strong evidence that it is the same event.
3. **Story match**: compared with the *profiles* of the stories active in the window (default
   ±72 h around the article's time) — never with their articles — on

   * entity coverage: the share of the article's named entities (capitalized words of title +
     first ~1,500 characters) that the story's members mention, each weighted by how many of
     them do (√share);
   * term coverage, the same over content words (folded, stop words out, truncated stems);
   * number coverage, the same over numbers;
   * embedding cosine with the story's centroid (title + lead through the multilingual
     sentence encoder, when the ``crosslingual`` extra is installed);

   minus a small time-distance penalty. The best story wins if the score reaches the threshold
   (relation ``same_story``, method ``lexical`` or ``embedding`` — the larger contribution);
   otherwise the article opens a new story (relation ``original``).
   When the story has no member in the article's language, words cannot overlap: the
   cross-lingual weights drop terms and lean on entities, numbers and the embedding.

Weights and thresholds were tuned on the ECB+ dev set (see docs/benchmarks.md): entities
weigh most because the hard negatives there are the same *kind* of event (two earthquakes,
two rehab check-ins) that only names, places and figures tell apart.

A rerun changes nothing (processed articles carry ``article_features.assigned_at``);
:func:`recluster` rebuilds a window from scratch.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from etl.stories import attribution, dedup, features

log = logging.getLogger(__name__)

LOCK_KEY = 0x6E657773  # 'news': serializes story assignment across processes


@dataclass(frozen=True)
class StoryConfig:
    window_hours: float = 72.0
    threshold: float = 0.40
    cites_threshold: float = 0.22           # with an attribution cue to a member outlet
    # same-language weights: entities, terms, numbers, embedding (sum 1)
    weights: tuple[float, float, float, float] = (0.3, 0.3, 0.1, 0.3)
    # across languages (no shared words): entities, numbers, embedding
    cross_weights: tuple[float, float, float] = (0.4, 0.1, 0.5)
    time_penalty: float = 0.05              # subtracted at a full window's distance
    min_entity: float = 0.0                 # entity cosine below this vetoes a join
    # without the encoder, lexical scores (renormalized to weights summing to 1) are scaled so
    # that this, their own tuned threshold, lands on `threshold`
    lexical_threshold: float = 0.30
    feature_chars: int = 1500               # title + lead text for terms/entities/numbers
    lead_chars: int = 300                   # title + lead text for the embedding
    use_embedding: bool = True

    @classmethod
    def from_env(cls) -> "StoryConfig":
        kw: dict[str, object] = {}
        if os.environ.get("NEWSETL_STORY_WINDOW_HOURS"):
            kw["window_hours"] = float(os.environ["NEWSETL_STORY_WINDOW_HOURS"])
        if os.environ.get("NEWSETL_STORY_THRESHOLD"):
            kw["threshold"] = float(os.environ["NEWSETL_STORY_THRESHOLD"])
        if os.environ.get("NEWSETL_STORY_EMBEDDING", "").lower() in {"0", "false", "no", "off"}:
            kw["use_embedding"] = False
        return cls(**kw)  # type: ignore[arg-type]


@dataclass
class AssignCounts:
    processed: int = 0
    near_duplicates: int = 0
    stories_new: int = 0
    stories_joined: int = 0     # same_story + cites
    citations: int = 0

    def add(self, other: "AssignCounts") -> None:
        for k, v in vars(other).items():
            setattr(self, k, getattr(self, k) + v)


# --- story profiles ------------------------------------------------------------------------

@dataclass
class Profile:
    """A story as the matcher sees it: feature counts over its members and an embedding sum."""

    story_id: int
    first: datetime
    last: datetime
    member_count: int = 0
    terms: Counter = field(default_factory=Counter)
    entities: Counter = field(default_factory=Counter)
    numbers: Counter = field(default_factory=Counter)
    centroid: np.ndarray | None = None
    embedded_count: int = 0
    languages: set[str] = field(default_factory=set)
    source_ids: set[int] = field(default_factory=set)
    dirty: bool = False

    def add(self, art: "Item", profile_too: bool = True) -> None:
        self.first = min(self.first, art.time)
        self.last = max(self.last, art.time)
        if art.language:
            self.languages.add(art.language)
        self.source_ids.add(art.source_id)
        self.dirty = True
        if not profile_too:
            return
        self.member_count += 1
        self.terms.update(art.terms)
        self.entities.update(art.entities)
        self.numbers.update(art.numbers)
        if art.embedding is not None:
            self.centroid = art.embedding.copy() if self.centroid is None else self.centroid + art.embedding
            self.embedded_count += 1


def _cosine(feats: Sequence[str], counts: Counter) -> float:
    """Cosine between the article's feature set and the story's member counts: a feature most
    members mention weighs more than one a single member mentioned."""
    if not feats or not counts:
        return 0.0
    norm = math.sqrt(sum(v * v for v in counts.values()))
    return sum(counts.get(f, 0) for f in feats) / (math.sqrt(len(feats)) * norm)


def score(art: "Item", prof: Profile, cfg: StoryConfig) -> tuple[float, str]:
    """(similarity, method) of an article to a story profile."""
    ent = _cosine(art.entities, prof.entities)
    num = _cosine(art.numbers, prof.numbers)
    emb = None
    if art.embedding is not None and prof.centroid is not None and cfg.use_embedding:
        norm = float(np.linalg.norm(prof.centroid))
        emb = float(art.embedding @ prof.centroid) / norm if norm else 0.0
    cross = bool(art.language and prof.languages and art.language not in prof.languages)
    if cross:
        we, wn, wv = cfg.cross_weights
        if emb is None:  # no encoder: entities and numbers only, rescaled
            total = (we * ent + wn * num) / (we + wn) * cfg.threshold / cfg.lexical_threshold
            lexical, semantic = total, 0.0
        else:
            lexical, semantic = we * ent + wn * num, wv * emb
            total = lexical + semantic
    else:
        we, wt, wn, wv = cfg.weights
        term = _cosine(art.terms, prof.terms)
        lexical = we * ent + wt * term + wn * num
        if emb is None:
            semantic, total = 0.0, lexical / (we + wt + wn) * cfg.threshold / cfg.lexical_threshold
        else:
            semantic, total = wv * emb, lexical + wv * emb
    dt = abs((art.time - prof.last).total_seconds()) if art.time > prof.last else \
        max(0.0, (prof.first - art.time).total_seconds())
    total -= cfg.time_penalty * min(1.0, dt / (cfg.window_hours * 3600))
    if art.entities and ent < cfg.min_entity:
        total = min(total, cfg.threshold - 1e-6)  # no shared names/places: never the same event
    return total, ("embedding" if semantic > lexical else "lexical")


# --- the articles being assigned --------------------------------------------------------------

@dataclass
class Item:
    id: int
    source_id: int
    language: str | None
    time: datetime
    title: str | None
    description: str | None
    body: str | None
    terms: list[str]
    entities: list[str]
    numbers: list[str]
    embedding: np.ndarray | None


def _lang(code: str | None) -> str | None:
    return code.split("-")[0].split("_")[0].lower() if code else None


def _load_items(conn: Connection, ids: Sequence[int], cfg: StoryConfig) -> list[Item]:
    """The not-yet-assigned articles among ``ids``, in processing order, with their features
    computed (and cached in ``article_features``) — embeddings in one batch call."""
    rows = conn.execute(text("""
        SELECT a.id, a.source_id, a.language, a.title, a.description, a.body,
               COALESCE(a.published_at, a.first_seen_at) AS event_t,
               f.article_id IS NOT NULL AS has_features, f.terms, f.entities, f.numbers, f.embedding
          FROM articles a
          LEFT JOIN article_features f ON f.article_id = a.id
         WHERE a.id = ANY(:ids) AND f.assigned_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id)
         ORDER BY event_t, a.id"""), {"ids": list(ids)}).all()
    items: list[Item] = []
    to_embed: list[tuple[int, str]] = []
    fresh: list[Item] = []
    for r in rows:
        if r.has_features:
            emb = np.asarray(r.embedding, dtype=np.float32) if r.embedding is not None else None
            item = Item(r.id, r.source_id, _lang(r.language), r.event_t, r.title, r.description, r.body,
                        list(r.terms), list(r.entities), list(r.numbers), emb)
        else:
            f = features.article_features(r.title, r.description, r.body, cfg.feature_chars)
            item = Item(r.id, r.source_id, _lang(r.language), r.event_t, r.title, r.description, r.body,
                        f.terms, f.entities, f.numbers, None)
            fresh.append(item)
        if item.embedding is None and cfg.use_embedding:
            to_embed.append((len(items), features.lead(r.title, r.description, r.body, cfg.lead_chars)))
        items.append(item)
    if to_embed:
        vecs = features.embed([t for _, t in to_embed])
        if vecs is not None:
            for (i, _), v in zip(to_embed, vecs, strict=True):
                items[i].embedding = v
    for item in items:
        conn.execute(text("""
            INSERT INTO article_features (article_id, event_time, language, terms, entities, numbers, embedding)
            VALUES (:id, :t, :lang, :terms, :entities, :numbers, :emb)
            ON CONFLICT (article_id) DO UPDATE
               SET embedding = COALESCE(article_features.embedding, excluded.embedding)"""),
            {"id": item.id, "t": item.time, "lang": item.language, "terms": item.terms,
             "entities": item.entities, "numbers": item.numbers,
             "emb": item.embedding.tolist() if item.embedding is not None else None})
    return items


def _load_profiles(conn: Connection, start: datetime, end: datetime) -> dict[int, Profile]:
    """Profiles of the stories active between ``start`` and ``end`` (window included)."""
    rows = conn.execute(text("""
        SELECT s.id, s.first_published_at, s.last_published_at, p.member_count, p.terms,
               p.entities, p.numbers, p.centroid, p.embedded_count, p.languages, p.source_ids
          FROM stories s JOIN story_profiles p ON p.story_id = s.id
         WHERE s.last_published_at >= :start AND s.first_published_at <= :end
         ORDER BY s.id"""), {"start": start, "end": end}).all()
    out = {}
    for r in rows:
        out[r.id] = Profile(
            r.id, r.first_published_at, r.last_published_at, r.member_count, Counter(r.terms),
            Counter(r.entities), Counter(r.numbers),
            np.asarray(r.centroid, dtype=np.float32) if r.centroid is not None else None,
            r.embedded_count, set(r.languages), set(r.source_ids))
    return out


def _save_profile(conn: Connection, p: Profile) -> None:
    conn.execute(text("""
        INSERT INTO story_profiles (story_id, member_count, terms, entities, numbers, centroid,
                                    embedded_count, languages, source_ids)
        VALUES (:id, :n, CAST(:terms AS jsonb), CAST(:entities AS jsonb), CAST(:numbers AS jsonb),
                :centroid, :ne, :langs, :sources)
        ON CONFLICT (story_id) DO UPDATE
           SET member_count = excluded.member_count, terms = excluded.terms,
               entities = excluded.entities, numbers = excluded.numbers,
               centroid = excluded.centroid, embedded_count = excluded.embedded_count,
               languages = excluded.languages, source_ids = excluded.source_ids"""),
        {"id": p.story_id, "n": p.member_count, "terms": json.dumps(p.terms, sort_keys=True),
         "entities": json.dumps(p.entities, sort_keys=True), "numbers": json.dumps(p.numbers, sort_keys=True),
         "centroid": p.centroid.tolist() if p.centroid is not None else None,
         "ne": p.embedded_count, "langs": sorted(p.languages), "sources": sorted(p.source_ids)})
    p.dirty = False


def refresh_story_counters(conn: Connection, story_ids: Iterable[int]) -> None:
    """Recomputes title, counts and first/last time from the members; bumps updated_at.
    The title is the original's (the first article of the story)."""
    ids = sorted(set(story_ids))
    if not ids:
        return
    conn.execute(text("""
        UPDATE stories s
           SET article_count = x.n, source_count = x.ns, language_count = x.nl,
               first_published_at = x.f, last_published_at = x.l, title = x.title, updated_at = now()
          FROM (SELECT sa.story_id, count(*) AS n, count(DISTINCT a.source_id) AS ns,
                       count(DISTINCT a.language) AS nl,
                       min(COALESCE(a.published_at, a.first_seen_at)) AS f,
                       max(COALESCE(a.published_at, a.first_seen_at)) AS l,
                       (array_agg(a.title ORDER BY sa.relation <> 'original',
                                  COALESCE(a.published_at, a.first_seen_at), a.id))[1] AS title
                  FROM story_articles sa JOIN articles a ON a.id = sa.article_id
                 WHERE sa.story_id = ANY(:ids)
                 GROUP BY sa.story_id) x
         WHERE s.id = x.story_id"""), {"ids": ids})


def _outlets(conn: Connection) -> list[tuple[str, attribution.Outlet]]:
    rows = conn.execute(text("SELECT id, slug, name FROM sources ORDER BY id")).all()
    return attribution.outlet_index((r.id, r.slug, r.name) for r in rows)


# --- assignment -------------------------------------------------------------------------------

class _Inverted:
    """Feature → stories of the loaded window, so that an article is scored only against
    stories that share a named entity, a number or two content words with it (an embedding
    alone never makes a story: the design notes found it must be combined with overlap)."""

    def __init__(self) -> None:
        self.entities: dict[str, set[int]] = {}
        self.terms: dict[str, set[int]] = {}

    def add(self, p: Profile, art: "Item | None" = None) -> None:
        ents = list(art.entities) + list(art.numbers) if art else list(p.entities) + list(p.numbers)
        terms = art.terms if art else list(p.terms)
        for e in ents:
            self.entities.setdefault(e, set()).add(p.story_id)
        for t in terms:
            self.terms.setdefault(t, set()).add(p.story_id)


def _candidates(art: "Item", inv: _Inverted) -> set[int]:
    out: set[int] = set()
    for e in list(art.entities) + list(art.numbers):
        out |= inv.entities.get(e, set())
    hits: Counter = Counter()
    for t in art.terms:
        hits.update(inv.terms.get(t, ()))
    out |= {sid for sid, n in hits.items() if n >= 2}
    return out

def _assign_items(conn: Connection, items: list[Item], cfg: StoryConfig) -> AssignCounts:
    counts = AssignCounts()
    if not items:
        return counts
    window = timedelta(hours=cfg.window_hours)
    profiles = _load_profiles(conn, items[0].time - window, items[-1].time + window)
    outlets = _outlets(conn)
    inverted = _Inverted()
    for p in profiles.values():
        inverted.add(p)
    touched: set[int] = set()
    for art in items:
        counts.processed += 1
        story_id: int | None = None
        relation, method, sim = "original", None, None
        cited_article: dict[str, int] = {}

        # 1. near-duplicate of a stored article → the original's story
        bands = dedup.bands_for(art.body)
        near = dedup.find_near_duplicate(conn, art.id, art.body, bands)
        dedup.store_bands(conn, art.id, bands)
        took_over = False
        if near is not None:
            counts.near_duplicates += 1
            member = conn.execute(text(
                "SELECT story_id, relation, score, method FROM story_articles WHERE article_id = :id"),
                {"id": near.original_id}).first()
            if (art.time, art.id) < (near.original_time, near.original_id):
                # published before the stored "original": this one is the original, and it
                # takes over the old original's place in the story
                dedup.make_original(conn, art.id, near.original_id)
                if member is not None:
                    conn.execute(text("""
                        UPDATE story_articles SET relation = 'near_duplicate', method = 'minhash', score = :s
                         WHERE article_id = :id"""), {"id": near.original_id, "s": near.score})
                    story_id, relation, sim, method = member.story_id, member.relation, member.score, member.method
                    took_over = True
            else:
                dedup.mark_duplicate(conn, art.id, near.original_id)
                if member is not None:
                    story_id, relation, method, sim = member.story_id, "near_duplicate", "minhash", near.score
            if story_id is not None and story_id not in profiles:
                profiles.update(_load_profiles_by_id(conn, [story_id]))

        # 2. attribution cues (recorded whatever happens next)
        cites = attribution.find_citations(
            "\n".join(x for x in (art.title, art.description, art.body) if x), outlets, art.source_id)
        active = [profiles[sid] for sid in sorted(_candidates(art, inverted))
                  if profiles[sid].last >= art.time - window and profiles[sid].first <= art.time + window]
        if story_id is None:
            best: tuple[float, int, str] | None = None
            for p in active:
                s, m = score(art, p, cfg)
                if best is None or s > best[0] or (s == best[0] and p.story_id < best[1]):
                    best = (s, p.story_id, m)
            cited_sources = {c.outlet.source_id for c in cites if c.outlet.source_id is not None}
            if best is not None and best[0] >= cfg.threshold:
                story_id, relation, sim, method = best[1], "same_story", best[0], best[2]
            elif best is not None and cited_sources:
                # the best story that holds an article of a cited outlet, at the lower bar
                for p in sorted(active, key=lambda p: p.story_id):
                    if not (p.source_ids & cited_sources):
                        continue
                    s, _m = score(art, p, cfg)
                    if s >= cfg.cites_threshold and (story_id is None or s > sim):
                        story_id, relation, sim, method = p.story_id, "cites", s, "attribution"
        if story_id is not None and relation != "original":
            for c in cites:
                if c.outlet.source_id is None:
                    continue
                aid = conn.execute(text("""
                    SELECT a.id FROM story_articles sa JOIN articles a ON a.id = sa.article_id
                     WHERE sa.story_id = :s AND a.source_id = :src AND a.id <> :me
                     ORDER BY COALESCE(a.published_at, a.first_seen_at), a.id LIMIT 1"""),
                    {"s": story_id, "src": c.outlet.source_id, "me": art.id}).scalar()
                if aid is not None:
                    cited_article[c.outlet.name] = aid
        for c in cites:
            conn.execute(text("""
                INSERT INTO article_citations (article_id, cited_name, cited_source_id, cited_article_id, cue)
                VALUES (:a, :name, :src, :cited, :cue)
                ON CONFLICT (article_id, cited_name) DO UPDATE
                   SET cited_source_id = excluded.cited_source_id,
                       cited_article_id = excluded.cited_article_id, cue = excluded.cue"""),
                {"a": art.id, "name": c.outlet.name, "src": c.outlet.source_id,
                 "cited": cited_article.get(c.outlet.name), "cue": c.cue[:200]})
        counts.citations += len(cites)

        # 3. join or open a story
        if story_id is None:
            story_id = conn.execute(text("""
                INSERT INTO stories (title, first_published_at, last_published_at)
                VALUES (:title, :t, :t) RETURNING id"""), {"title": art.title, "t": art.time}).scalar_one()
            profiles[story_id] = Profile(story_id, art.time, art.time)
            inverted.add(profiles[story_id])
            counts.stories_new += 1
        elif relation != "near_duplicate" and not took_over:
            counts.stories_joined += 1
        conn.execute(text("""
            INSERT INTO story_articles (story_id, article_id, relation, score, method)
            VALUES (:s, :a, :rel, :score, :method)"""),
            {"s": story_id, "a": art.id, "rel": relation, "score": sim, "method": method})
        prof = profiles[story_id]
        # a copy adds no new evidence: counting its words twice would tilt the profile
        prof.add(art, profile_too=relation != "near_duplicate" and not took_over)
        inverted.add(prof, art)
        touched.add(story_id)
        conn.execute(text("UPDATE article_features SET assigned_at = now() WHERE article_id = :id"),
                     {"id": art.id})
    for sid in sorted(touched):
        _save_profile(conn, profiles[sid])
    refresh_story_counters(conn, touched)
    return counts


def _load_profiles_by_id(conn: Connection, ids: Sequence[int]) -> dict[int, Profile]:
    rows = conn.execute(text("SELECT first_published_at, last_published_at FROM stories WHERE id = ANY(:ids)"),
                        {"ids": list(ids)}).all()
    if not rows:
        return {}
    start = min(r.first_published_at for r in rows)
    end = max(r.last_published_at for r in rows)
    return {k: v for k, v in _load_profiles(conn, start, end).items() if k in ids}


def assign(engine: Engine, article_ids: Sequence[int], config: StoryConfig | None = None) -> AssignCounts:
    """Dedup + story assignment for the given articles (already-assigned ones are skipped),
    in event-time order, in one transaction under the story lock."""
    cfg = config or StoryConfig.from_env()
    if not article_ids:
        return AssignCounts()
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
                items = _load_items(conn, sorted(set(article_ids)), cfg)
                return _assign_items(conn, items, cfg)
        except DBAPIError as exc:
            # a concurrent load's trigger (articles → stories) can deadlock with us; the whole
            # batch rolled back, so simply run it again
            if attempt == 2 or getattr(exc.orig, "sqlstate", None) not in ("40P01", "40001"):
                raise
            log.warning("story assignment retried after %s", type(exc.orig).__name__)
    raise AssertionError("unreachable")


def assign_pending(engine: Engine, config: StoryConfig | None = None, since: datetime | None = None,
                   chunk: int = 200) -> AssignCounts:
    """Assigns every article not yet processed (optionally only from ``since``), oldest first,
    in chunks: what :func:`recluster` and a backlog catch-up run."""
    total = AssignCounts()
    last: tuple[datetime, int] | None = None
    while True:
        with engine.connect() as conn:
            rows = conn.execute(text("""
                SELECT a.id, COALESCE(a.published_at, a.first_seen_at) AS event_t
                  FROM articles a LEFT JOIN article_features f ON f.article_id = a.id
                 WHERE f.assigned_at IS NULL
                   AND (CAST(:since AS timestamptz) IS NULL OR COALESCE(a.published_at, a.first_seen_at) >= :since)
                   AND (CAST(:lt AS timestamptz) IS NULL
                        OR (COALESCE(a.published_at, a.first_seen_at), a.id) > (CAST(:lt AS timestamptz), :lid))
                 ORDER BY event_t, a.id LIMIT :n"""),
                {"since": since, "lt": last[0] if last else None, "lid": last[1] if last else 0,
                 "n": chunk}).all()
        if not rows:
            return total
        total.add(assign(engine, [r.id for r in rows], config))
        last = (rows[-1].event_t, rows[-1].id)


def recluster(engine: Engine, since: datetime, config: StoryConfig | None = None) -> AssignCounts:
    """Rebuilds the stories of every article from ``since`` on, from scratch and in order.

    Their story memberships, near-duplicate links, LSH bands and citations are deleted; stories
    left empty are deleted, stories that keep older members get their profile rebuilt from
    those members; then the window is assigned again. Cached features (and embeddings) stay.
    """
    cfg = config or StoryConfig.from_env()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        ids = conn.execute(text("""
            SELECT id FROM articles WHERE COALESCE(published_at, first_seen_at) >= :since"""),
            {"since": since}).scalars().all()
        affected = conn.execute(text("SELECT DISTINCT story_id FROM story_articles WHERE article_id = ANY(:ids)"),
                                {"ids": ids}).scalars().all()
        conn.execute(text("DELETE FROM story_articles WHERE article_id = ANY(:ids)"), {"ids": ids})
        conn.execute(text("UPDATE articles SET duplicate_of = NULL WHERE id = ANY(:ids) AND duplicate_of IS NOT NULL"),
                     {"ids": ids})
        conn.execute(text("DELETE FROM article_lsh WHERE article_id = ANY(:ids)"), {"ids": ids})
        conn.execute(text("DELETE FROM article_citations WHERE article_id = ANY(:ids)"), {"ids": ids})
        conn.execute(text("UPDATE article_features SET assigned_at = NULL WHERE article_id = ANY(:ids)"), {"ids": ids})
        conn.execute(text("""
            DELETE FROM stories s WHERE s.id = ANY(:ids)
               AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.story_id = s.id)"""),
            {"ids": affected})
        kept = conn.execute(text("SELECT id FROM stories WHERE id = ANY(:ids)"), {"ids": affected}).scalars().all()
        for sid in kept:
            _rebuild_profile(conn, sid)
        refresh_story_counters(conn, kept)
    return assign_pending(engine, cfg, since=since)


def _rebuild_profile(conn: Connection, story_id: int) -> None:
    rows = conn.execute(text("""
        SELECT f.article_id AS id, a.source_id, f.language, f.event_time AS event_t, f.terms, f.entities,
               f.numbers, f.embedding, sa.relation
          FROM story_articles sa JOIN article_features f ON f.article_id = sa.article_id
          JOIN articles a ON a.id = sa.article_id
         WHERE sa.story_id = :s ORDER BY f.event_time, f.article_id"""), {"s": story_id}).all()
    if not rows:
        return
    prof = Profile(story_id, rows[0].event_t, rows[0].event_t)
    for r in rows:
        item = Item(r.id, r.source_id, r.language, r.event_t, None, None, None, list(r.terms), list(r.entities),
                    list(r.numbers), np.asarray(r.embedding, dtype=np.float32) if r.embedding is not None else None)
        prof.add(item, profile_too=r.relation != "near_duplicate")
    _save_profile(conn, prof)


def record_run_counts(engine: Engine, run_id: int, counts: AssignCounts) -> None:
    """Adds this batch's dedup/story counts to the run's row (exact duplicates are counted by
    the load path in ``ingestion_runs.duplicates``)."""
    with engine.begin() as conn:
        conn.execute(text("""
            UPDATE ingestion_runs
               SET near_duplicates = near_duplicates + :nd, stories_new = stories_new + :sn,
                   stories_joined = stories_joined + :sj, citations = citations + :c
             WHERE id = :run_id"""),
            {"run_id": run_id, "nd": counts.near_duplicates, "sn": counts.stories_new,
             "sj": counts.stories_joined, "c": counts.citations})
