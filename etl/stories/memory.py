"""The story repository in memory: the engine's storage for training and cross-validation on the
dev sets, with the PostgreSQL repository's semantics — a saved profile comes back as the
database would give it (body centroid capped and rounded, JSON key order, float32 centroid),
a story's span is its members' span, a merge moves the members — so that the same articles
give the same stories through either (``tests/test_story_engine.py`` checks it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from etl.config import StoryConfig
from etl.models import MatchMethod, Relation
from etl.stories import attribution
from etl.stories.attribution import Outlet
from etl.stories.dedup import Family
from etl.stories.engine import StepResult, StoryEngine, prepare
from etl.stories.model import JoinModels
from etl.stories.profile import Item, Profile
from etl.stories.repository import BatchWrites, Membership, Prepared, StoryLink
from etl.stories.snapshot import StoredProfile, stored_form


@dataclass
class _Article:
    time: datetime
    source_id: int
    body: str | None
    duplicate_of: int | None = None


@dataclass
class _Story:
    title: str | None
    first: datetime
    last: datetime
    members: set[int] = field(default_factory=set)
    profile: StoredProfile | None = None


class MemoryRepository:
    """:class:`~etl.stories.repository.StoryRepository` over dictionaries. ``add_articles``
    stands for the load stage: the engine only places articles the repository holds."""

    def __init__(self, sources: Iterable[tuple[int, str, str]] = ()) -> None:
        self.articles: dict[int, _Article] = {}
        self.stories_: dict[int, _Story] = {}
        self.members: dict[int, Membership] = {}
        self.bands_: dict[int, dict[int, int]] = {}               # article -> band -> hash
        self.by_band: dict[tuple[int, int], set[int]] = {}
        self.citations: list[dict[str, object]] = []
        self.merges: list[tuple[int, int]] = []
        self.links: dict[tuple[int, int], StoryLink] = {}
        self.assigned: set[int] = set()
        self._outlets = attribution.outlet_index(sources)
        self._next_story = 1

    def add_articles(self, items: Iterable[Item]) -> None:
        for it in items:
            self.articles.setdefault(it.id, _Article(it.time, it.source_id, it.body))

    # --- stories -------------------------------------------------------------------------
    def window(self, start: datetime, end: datetime) -> dict[int, Profile]:
        return {sid: s.profile.profile(sid, s.first, s.last) for sid, s in sorted(self.stories_.items())
                if s.profile is not None and s.last >= start and s.first <= end}

    def stories(self, ids: Sequence[int]) -> dict[int, Profile]:
        out = {}
        for sid in sorted(set(ids)):
            s = self.stories_.get(sid)
            if s is not None and s.profile is not None:
                out[sid] = s.profile.profile(sid, s.first, s.last)
        return out

    def older_with_names(self, caps: Mapping[str, int], far: datetime, edge: datetime) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for key in sorted(caps):
            ids = [sid for sid, s in sorted(self.stories_.items())
                   if s.profile is not None and far <= s.last < edge and key in s.profile.entities]
            if ids:
                out[key] = ids[:caps[key] + 1]
        return out

    def new_story_id(self, upper_bound: int) -> int:
        sid = self._next_story
        self._next_story += 1
        return sid

    def membership(self, article_id: int) -> Membership | None:
        return self.members.get(article_id)

    def first_of_outlet(self, story_id: int, source_id: int, me: int) -> tuple[datetime, int] | None:
        s = self.stories_.get(story_id)
        if s is None:
            return None
        found = [(self.articles[a].time, a) for a in s.members if a != me and self.articles[a].source_id == source_id]
        return min(found) if found else None

    def outlets(self) -> list[tuple[str, Outlet]]:
        return self._outlets

    # --- near-duplicates -------------------------------------------------------------------
    def band_hits(self, arts: Sequence[tuple[int, Sequence[tuple[int, int]]]], limit: int) -> dict[int, list[tuple[int, int]]]:
        out: dict[int, list[tuple[int, int]]] = {}
        for aid, bands in arts:
            hits: Counter = Counter()
            for key in bands:
                hits.update(a for a in self.by_band.get(key, ()) if a != aid)
            if hits:
                out[aid] = sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return out

    def families(self, ids: Sequence[int]) -> list[Family]:
        groups: dict[int, list[int]] = {}
        for a in ids:
            groups.setdefault(self.articles[a].duplicate_of or a, []).append(a)
        fams = [Family(root, self.articles[root].time, tuple(sorted(m)), self.articles[min(m)].body)
                for root, m in groups.items()]
        return sorted(fams, key=lambda f: (f.root_time, f.root))

    def bodies(self, ids: Sequence[int]) -> list[tuple[int, str | None]]:
        return [(a, self.articles[a].body) for a in sorted(ids)]

    def mark_duplicate(self, article_id: int, original_id: int) -> None:
        self.articles[article_id].duplicate_of = original_id

    def make_original(self, article_id: int, old_original_id: int) -> None:
        for aid, a in self.articles.items():
            if (aid == old_original_id or a.duplicate_of == old_original_id) and aid != article_id:
                a.duplicate_of = article_id

    def demote(self, article_id: int, score: float) -> None:
        m = self.members[article_id]
        self.members[article_id] = Membership(m.story_id, Relation.NEAR_DUPLICATE, score, MatchMethod.MINHASH)

    # --- the batch -------------------------------------------------------------------------
    def commit(self, writes: BatchWrites) -> None:
        for sid, title, t in writes.new_stories:
            self.stories_[sid] = _Story(title, t, t)
        for aid, m in writes.members:
            self.members[aid] = m
            self.stories_[m.story_id].members.add(aid)
        for aid, bands in writes.bands:
            mine = self.bands_.setdefault(aid, {})
            for b, h in bands:
                old = mine.get(b)
                if old is not None:
                    self.by_band[(b, old)].discard(aid)
                mine[b] = h
                self.by_band.setdefault((b, h), set()).add(aid)
        self.citations.extend(writes.citations)
        for gone, into in writes.merges:
            self.merges.append((gone, into))
            self._move_links(gone, into)
            moved = self.stories_.pop(gone).members
            for aid in moved:
                m = self.members[aid]
                self.members[aid] = Membership(into, m.relation, m.score, m.method)
            self.stories_[into].members |= moved
        for link in writes.links:
            key = (link.story_id, link.related_id)
            had = self.links.get(key)
            if had is None or link.score > had.score:
                self.links[key] = StoryLink(key[0], key[1], had.kind if had else link.kind, link.score)
        self.assigned.update(writes.assigned)
        for p in writes.profiles:
            self.stories_[p.story_id].profile = stored_form(p)
        for sid in writes.touched:
            s = self.stories_[sid]
            times = [self.articles[a].time for a in s.members]
            s.first, s.last = min(times), max(times)

    def _move_links(self, gone: int, into: int) -> None:
        """stories/merge_links: the merged story's links move to the survivor."""
        for key in [k for k in self.links if gone in k]:
            link = self.links.pop(key)
            other = key[1] if key[0] == gone else key[0]
            if other == into:
                continue
            new = (max(into, other), min(into, other))
            old = self.links.get(new)
            if old is None or link.score > old.score:
                self.links[new] = StoryLink(new[0], new[1], old.kind if old else link.kind, link.score)

    # --- reading the result ----------------------------------------------------------------
    def story_of(self) -> dict[int, int]:
        """Article id → story id, for every placed article."""
        return {aid: m.story_id for aid, m in self.members.items()}


def cluster(items: Sequence[Item], cfg: StoryConfig, models: JoinModels | None = None, batch: int = 100,
            sources: Iterable[tuple[int, str, str]] = (),
            bands: Mapping[int, list[tuple[int, int]]] | None = None,
            observe: Callable[[Item, Sequence[Profile], np.ndarray], None] | None = None) -> MemoryRepository:
    """Places ``items`` (in processing order: event time, then id) in batches of ``batch``
    through the story engine on a fresh memory repository, as the pipeline places a stream of
    loaded batches; returns the repository (``story_of()``: the stories). ``bands``: the
    articles' MinHash bands by id when the caller has them (a cross-validation places the same
    articles many times), else computed here."""
    repo = MemoryRepository(sources)
    engine = StoryEngine(cfg, models)
    engine.observe = observe
    for start in range(0, len(items), batch):
        chunk = list(items[start:start + batch])
        repo.add_articles(chunk)
        engine.step(repo, [Prepared(it, bands[it.id]) if bands is not None else prepare(it) for it in chunk])
    return repo


def step(engine: StoryEngine, repo: MemoryRepository, items: Sequence[Item]) -> StepResult:
    """One batch, as :func:`cluster` runs it (for callers that look between batches)."""
    repo.add_articles(items)
    return engine.step(repo, [prepare(it) for it in items])
