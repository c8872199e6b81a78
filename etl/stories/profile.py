"""A story as the join decision sees it: the article (:class:`Item`) and the story *profile*
(feature counts over its members, per-field term centroids, an embedding sum). A profile is
what is stored per story (``story_profiles``): an article is compared with it, never with the
story's articles, so the cost of a comparison does not grow with the story. Pure data.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from etl.config import StoryConfig
from etl.stories import features


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
    # the names rare in the language at large (features.Names.rare): the long reach's keys
    rare: frozenset[str] = frozenset()


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
    # the shared decoded row this profile was built from (etl.stories.snapshot), if any: the
    # matcher keys what it derives from an unchanged profile on it, across batches
    origin: object = field(default=None, compare=False, repr=False)
    # copy-on-write: a profile built from a stored row reads the row's (read-only) containers
    # until it first changes; a window holds thousands of stories and a batch changes a few
    shared: bool = field(default=False, compare=False, repr=False)

    def own(self) -> None:
        """Private, mutable copies of the containers (before the first change)."""
        if self.shared:
            self.terms, self.entities, self.numbers = Counter(self.terms), Counter(self.entities), Counter(self.numbers)
            self.title, self.body = Counter(self.title), Counter(self.body)
            self.languages, self.source_ids = set(self.languages), set(self.source_ids)
            self.shared = False

    def cap_body(self) -> dict[str, float]:
        """The body centroid as saved: its ``BODY_TERMS`` heaviest terms, rounded; the
        profile is reset to it, so that the story looks the same whether it stayed in
        memory or was saved and loaded again."""
        self.own()
        top = sorted(self.body.items(), key=lambda kv: (-kv[1], kv[0]))[:BODY_TERMS]
        body = Counter(rounded(Counter(dict(top))))
        title = Counter(rounded(self.title))
        if body != self.body or title != self.title:  # (an unchanged profile keeps its version)
            self.body, self.title = body, title
            self.version += 1
        return dict(self.body)

    def absorb(self, other: "Profile") -> None:
        """Takes in every member of ``other`` (a story merged into this one)."""
        self.own()
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
        self.own()
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


def build_item(article_id: int, source_id: int, language: str | None, time: datetime, title: str | None,
               description: str | None, body: str | None, cfg: StoryConfig,
               embedding: np.ndarray | None = None) -> Item:
    """An article as the matcher sees it: lexical features of title + lead, and the title and
    body term vectors (recomputed from the text: cheap, so never cached)."""
    f = features.article_features(title, description, body, cfg.feature_chars, language)
    return Item(article_id, source_id, language, time, title, description, body, f.terms, f.entities,
                f.numbers, embedding, features.term_vector(title, lang=language),
                features.term_vector(body or description, lang=language), f.rare)
