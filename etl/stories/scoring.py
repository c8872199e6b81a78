"""How alike an article and a story are: the story *profile* (feature counts over its members,
an embedding centroid), the score that compares an article with it, and the inverted index that
picks the stories worth scoring. Pure computation: no database.

Score = entity coverage, term coverage and number coverage (cosine of the article's features
against the members' counts: a feature most members mention weighs more), plus the embedding
cosine with the centroid, minus a small time-distance penalty. Across languages (no shared
words) the weights drop terms and lean on entities, numbers and the embedding.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from etl.config import StoryConfig
from etl.models import MatchMethod


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
    # per-field sublinear-tf vectors (features.term_vector) for the learned join decision
    title_vec: dict[str, float] = field(default_factory=dict)
    body_vec: dict[str, float] = field(default_factory=dict)


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
    # sums of the members' title and body term vectors (the per-field centroids)
    title: Counter = field(default_factory=Counter)
    body: Counter = field(default_factory=Counter)
    dirty: bool = False
    version: int = 0  # bumped on every change (cached norms key on it)
    # the shared decoded row this profile was built from (etl.stories.assign), if any: the
    # matcher keys what it derives from an unchanged profile on it, across batches
    origin: object = field(default=None, compare=False, repr=False)

    def cap_body(self) -> dict[str, float]:
        """The body centroid as saved: its ``BODY_TERMS`` heaviest terms, rounded; the
        profile is reset to it, so that the story looks the same whether it stayed in
        memory or was saved and loaded again."""
        top = sorted(self.body.items(), key=lambda kv: (-kv[1], kv[0]))[:BODY_TERMS]
        body = Counter(rounded(Counter(dict(top))))
        title = Counter(rounded(self.title))
        if body != self.body or title != self.title:  # (an unchanged profile keeps its version)
            self.body, self.title = body, title
            self.version += 1
        return dict(self.body)

    def absorb(self, other: "Profile") -> None:
        """Takes in every member of ``other`` (a story merged into this one)."""
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)
        self.member_count += other.member_count
        for mine, theirs in ((self.terms, other.terms), (self.entities, other.entities),
                             (self.numbers, other.numbers), (self.title, other.title), (self.body, other.body)):
            mine.update(theirs)
        if other.centroid is not None:
            self.centroid = other.centroid.copy() if self.centroid is None else self.centroid + other.centroid
        self.embedded_count += other.embedded_count
        self.languages |= other.languages
        self.source_ids |= other.source_ids
        self.dirty = True
        self.version += 1

    def as_item(self) -> "Item":
        """The story as an article-like item, to compare two stories with the join features:
        its heaviest entities, numbers and words only (a story's full vocabulary would make
        every other story a candidate, and the comparison grow with the story)."""
        def top(c: Counter, k: int) -> list[str]:
            return sorted(t for t, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:k])

        def unit(vec: Counter, k: int) -> dict[str, float]:
            kept = {t: vec[t] for t in top(vec, k)}
            norm = math.sqrt(sum(v * v for v in kept.values())) or 1.0
            return {t: v / norm for t, v in kept.items()}

        emb = None
        if self.centroid is not None:
            norm = float(np.linalg.norm(self.centroid))
            emb = self.centroid / norm if norm else None
        lang = next(iter(self.languages)) if len(self.languages) == 1 else None
        return Item(-self.story_id, -1, lang, self.last, None, None, None, top(self.terms, 40),
                    top(self.entities, 15), top(self.numbers, 8), emb, unit(self.title, 20), unit(self.body, 150))

    def add(self, art: "Item", profile_too: bool = True) -> None:
        self.first = min(self.first, art.time)
        self.last = max(self.last, art.time)
        if art.language:
            self.languages.add(art.language)
        self.source_ids.add(art.source_id)
        self.dirty = True
        self.version += 1
        if not profile_too:
            return
        self.member_count += 1
        self.terms.update(art.terms)
        self.entities.update(art.entities)
        self.numbers.update(art.numbers)
        self.title.update(art.title_vec)
        self.body.update(art.body_vec)
        if art.embedding is not None:
            self.centroid = art.embedding.copy() if self.centroid is None else self.centroid + art.embedding
            self.embedded_count += 1


BODY_TERMS = 400  # a story's body centroid keeps its heaviest terms (profiles stay small)


def rounded(vec: Counter) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in vec.items()}


def cosine(feats: Sequence[str], counts: Counter) -> float:
    """Cosine between the article's feature set and the story's member counts: a feature most
    members mention weighs more than one a single member mentioned."""
    if not feats or not counts:
        return 0.0
    norm = math.sqrt(sum(v * v for v in counts.values()))
    return sum(counts.get(f, 0) for f in feats) / (math.sqrt(len(feats)) * norm)


def score(art: "Item", prof: Profile, cfg: StoryConfig) -> tuple[float, MatchMethod]:
    """(similarity, method) of an article to a story profile."""
    ent = cosine(art.entities, prof.entities)
    num = cosine(art.numbers, prof.numbers)
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
        term = cosine(art.terms, prof.terms)
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
    return total, (MatchMethod.EMBEDDING if semantic > lexical else MatchMethod.LEXICAL)


class CandidateIndex:
    """Feature → stories of the loaded window, so that an article is scored only against
    stories that share a named entity, a number or two content words with it (an embedding
    alone never makes a story: the design notes found it must be combined with overlap)."""

    def __init__(self) -> None:
        self.entities: dict[str, set[int]] = {}
        self.terms: dict[str, set[int]] = {}
        # the keys each story was listed under, so that it can be taken out again
        self.keys: dict[int, tuple[set[str], set[str]]] = {}

    def add(self, p: Profile, art: "Item | None" = None) -> None:
        ents = list(art.entities) + list(art.numbers) if art else list(p.entities) + list(p.numbers)
        terms = art.terms if art else list(p.terms)
        sid = p.story_id
        mine = self.keys.get(sid)
        if mine is None:
            mine = self.keys[sid] = (set(), set())
        mine[0].update(ents)
        mine[1].update(terms)
        for index, keys in ((self.entities, ents), (self.terms, terms)):
            for k in keys:  # (no throwaway set per key, as setdefault(k, set()) makes)
                held = index.get(k)
                if held is None:
                    index[k] = {sid}
                else:
                    held.add(sid)

    def remove(self, story_id: int) -> None:
        """Takes a story out of the index (it left the window, or changed and is listed again)."""
        mine = self.keys.pop(story_id, None)
        if mine is None:
            return
        for index, keys in ((self.entities, mine[0]), (self.terms, mine[1])):
            for k in keys:
                held = index.get(k)
                if held is not None:
                    held.discard(story_id)
                    if not held:
                        del index[k]


def candidates(art: "Item", inv: CandidateIndex) -> set[int]:
    """Stories sharing an entity or number, or two content words, with the article (a story
    merged away may still be listed: callers skip ids they no longer hold)."""
    out: set[int] = set()
    for e in list(art.entities) + list(art.numbers):
        out |= inv.entities.get(e, set())
    hits: Counter = Counter()
    for t in art.terms:
        hits.update(inv.terms.get(t, ()))
    out |= {sid for sid, n in hits.items() if n >= 2}
    return out
