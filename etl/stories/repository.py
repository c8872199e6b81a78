"""What the story engine reads and writes, behind one small interface, and the typed records
that cross it.

The engine (``etl.stories.engine``) is the one join-or-new loop. It never touches SQL: it asks
a :class:`StoryRepository` for the stories of a window, a near-duplicate's family or a stored
membership, and hands it one :class:`BatchWrites` per batch. Two repositories implement it:
``etl.stories.postgres`` (the pipeline: statements of ``sql/queries/stories``, under the story
lock, in the batch's transaction) and ``etl.stories.memory`` (training and cross-validation on
the dev sets, with the same semantics: a test replays a dev-set sample through both and gets
the same stories).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from etl.models import MatchMethod, Relation
from etl.stories.attribution import Outlet
from etl.stories.dedup import Family
from etl.stories.profile import Item, Profile


@dataclass
class Prepared:
    """An article ready for the engine: its features (terms, names, numbers, term vectors,
    embedding) and its MinHash bands. Everything here is computed before the story lock is
    taken: it depends on the article alone."""

    item: Item
    bands: list[tuple[int, int]]


@dataclass(frozen=True)
class Membership:
    """An article's place in a story (a ``story_articles`` row)."""

    story_id: int
    relation: Relation
    score: float | None
    method: MatchMethod | None


@dataclass(frozen=True)
class Placement:
    """The engine's decision for one article."""

    article_id: int
    story_id: int
    relation: Relation
    score: float | None
    method: MatchMethod | None
    opened: bool = False          # the article opened this story


@dataclass(frozen=True)
class StoryLink:
    """Two stories about the same subject that are not the same event (the next day's market
    report, a trial weeks after a shooting that the model is not sure of): kept apart, linked.
    ``story_id`` is the newer story, ``related_id`` the one it relates to."""

    story_id: int
    related_id: int
    kind: str
    score: float


@dataclass
class BatchWrites:
    """Everything a batch changes, applied by :meth:`StoryRepository.commit` in this order:
    new stories, memberships, MinHash bands, citations, merges, links, the processed marks,
    the changed profiles and the stories' counters."""

    new_stories: list[tuple[int, str | None, datetime]] = field(default_factory=list)
    members: list[tuple[int, Membership]] = field(default_factory=list)     # (article id, membership)
    bands: list[tuple[int, list[tuple[int, int]]]] = field(default_factory=list)
    citations: list[dict[str, object]] = field(default_factory=list)
    merges: list[tuple[int, int]] = field(default_factory=list)              # (from, into), in order
    links: list[StoryLink] = field(default_factory=list)
    assigned: list[int] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    touched: list[int] = field(default_factory=list)                        # stories whose counters change


class StoryRepository(Protocol):
    """Storage of the story stage, as the engine needs it. Reads see the batch's own earlier
    immediate writes (``mark_duplicate``, ``make_original``, ``demote``); everything else of
    a batch arrives at once in :meth:`commit`."""

    # --- stories -----------------------------------------------------------------------
    def window(self, start: datetime, end: datetime) -> dict[int, Profile]:
        """Fresh profiles (the caller mutates them) of the stories active in [start, end]."""

    def stories(self, ids: Sequence[int]) -> dict[int, Profile]:
        """Fresh profiles of these stories, whatever their age."""

    def older_with_names(self, caps: Mapping[str, int], far: datetime, edge: datetime) -> dict[str, list[int]]:
        """For each name, the stories whose last article is in [far, edge) and whose profile
        holds the name, by id, at most ``caps[name] + 1`` of them (the long reach's lookup:
        ``far`` is the start of the rarity horizon)."""

    def new_story_id(self, upper_bound: int) -> int:
        """An id for a new story, in creation order (``upper_bound``: how many more this batch
        may still open; ids not used are given back at commit)."""

    def membership(self, article_id: int) -> Membership | None: ...

    def first_of_outlet(self, story_id: int, source_id: int, me: int) -> tuple[datetime, int] | None:
        """(time, id) of the earliest stored member of the story from this outlet, not ``me``."""

    def outlets(self) -> list[tuple[str, Outlet]]:
        """The attribution index of the sources (``attribution.outlet_index``)."""

    # --- near-duplicates ---------------------------------------------------------------
    def band_hits(self, arts: Sequence[tuple[int, Sequence[tuple[int, int]]]], limit: int) -> dict[int, list[tuple[int, int]]]:
        """For each (article, bands), the stored articles sharing bands with it: (id, shared
        bands), most first then by id, at most ``limit``."""

    def families(self, ids: Sequence[int]) -> list[Family]:
        """The copy families of these stored articles, earliest original first."""

    def bodies(self, ids: Sequence[int]) -> list[tuple[int, str | None]]:
        """(id, body) of these stored articles, by id."""

    def mark_duplicate(self, article_id: int, original_id: int) -> None: ...

    def make_original(self, article_id: int, old_original_id: int) -> None:
        """A copy published before the stored original becomes its family's original."""

    def demote(self, article_id: int, score: float) -> None:
        """A stored member becomes a near-duplicate of the article that took its place."""

    # --- the batch ---------------------------------------------------------------------
    def commit(self, writes: BatchWrites) -> None: ...
