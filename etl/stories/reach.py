"""The long reach: a story that ended before the article's window, up to ``cfg.reach_days``
earlier, is a candidate too when the article shares a *rare* name with it — a hearing or a
charge weeks after a shooting. The matcher scores it like any candidate, and it is joined only
at ``cfg.reach_probability``.

A name is rare against the stream and against the language, never against the few stories of
a window (on a quiet stream almost every name would be): at most ``cfg.reach_max_stories``
stories of the last ``cfg.reach_horizon_days`` hold it (the window's included), and it is
uncommon in the language at large (``etl.stories.lexicon``: "Apple", "iPhone" or "Nasdaq" are
held by few stories of a quiet stream, yet they name a subject, not an event).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from etl.config import StoryConfig
from etl.stories.index import CandidateIndex
from etl.stories.profile import Item, Profile

REACH_MIN_NAME = 3  # letters: shorter names (initials, "EU") never make an older story a candidate


def reach_names(art: Item) -> list[str]:
    """The article's names that may make an older story a candidate: long enough, and rare
    in the language at large (``Item.rare``, from ``etl.stories.features.names``)."""
    return [e for e in art.entities if len(e) >= REACH_MIN_NAME and e in art.rare]


class Reach:
    """The long reach: stories that ended before the window but within ``cfg.reach_days``,
    found only through rare names they share with an article. ``profiles``: the stories of
    the rarity horizon before the batch's window that hold one of the batch's rare names;
    they are kept apart from the matcher — no index of their words, no story frequencies —
    until an article joins one."""

    def __init__(self, profiles: Mapping[int, Profile], counts: Mapping[str, int] | None = None) -> None:
        self.profiles = dict(profiles)
        self.index: dict[str, set[int]] = {}
        for p in self.profiles.values():
            for e in p.entities:
                self.index.setdefault(e, set()).add(p.story_id)
        # how many stories of the horizon before the window hold each name: all of them here
        # when ``profiles`` is the whole horizon; the engine loads only the stories of rare
        # names and passes the counts its lookup found (StoryEngine._reach)
        self.counts = {e: len(ids) for e, ids in self.index.items()} if counts is None else dict(counts)

    def rare(self, art: Item, held: CandidateIndex, max_stories: int) -> list[str]:
        """The article's rare names (:func:`reach_names`) that at most ``max_stories`` stories
        hold, in the horizon and in the batch's window together: the only keys that make an
        older story a candidate."""
        out = []
        for e in reach_names(art):
            n = self.counts.get(e, 0) + len(held.entities.get(e, ()))
            if 0 < n <= max_stories:
                out.append(e)
        return out

    def candidates(self, art: Item, cfg: StoryConfig, held: Mapping[int, Profile],
                   index: CandidateIndex) -> list[Profile]:
        """Stories sharing a rare name with the article that ended between ``reach_days``
        and the window before it (those the window already offers are not repeated)."""
        window = timedelta(hours=cfg.window_hours)
        far = art.time - timedelta(days=cfg.reach_days)
        ids: set[int] = set()
        for e in self.rare(art, index, cfg.reach_max_stories):
            ids |= self.index.get(e, set())
            ids |= index.entities.get(e, set())
        out = []
        for sid in sorted(ids):
            p = held.get(sid) or self.profiles.get(sid)
            if p is not None and far <= p.last < art.time - window:
                out.append(p)
        return out


def reach_pool(profiles: Mapping[int, Profile], lo: datetime, held: Mapping[int, Profile],
               cfg: StoryConfig) -> Reach | None:
    """The long reach of a batch whose window starts at ``lo``: the stories not in the window
    that ended at most ``cfg.reach_horizon_days`` before the batch's first article (those
    older than ``cfg.reach_days`` count for rarity only)."""
    if cfg.reach_days <= 0:
        return None
    far = lo + timedelta(hours=cfg.window_hours) - timedelta(days=max(cfg.reach_days, cfg.reach_horizon_days))
    return Reach({k: p for k, p in profiles.items() if k not in held and p.last >= far})
