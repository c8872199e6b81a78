"""The long reach: a story that ended before the article's window, up to ``cfg.reach_days``
earlier, is a candidate too when the article shares a *rare* name with it — a hearing or a
charge weeks after a shooting. The matcher scores it like any candidate, and it is joined only
at ``cfg.reach_probability``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from etl.config import StoryConfig
from etl.stories.index import CandidateIndex
from etl.stories.profile import Item, Profile

REACH_MIN_NAME = 3  # letters: shorter names (initials, "EU") never make an older story a candidate


class Reach:
    """The long reach: stories that ended before the window but within ``cfg.reach_days``,
    found only through rare names they share with an article. The older ones (``profiles``:
    before the batch's window) are kept apart from the matcher — no index of their words, no
    story frequencies — until an article joins one."""

    def __init__(self, profiles: Mapping[int, Profile], counts: Mapping[str, int] | None = None) -> None:
        self.profiles = dict(profiles)
        self.index: dict[str, set[int]] = {}
        for p in self.profiles.values():
            for e in p.entities:
                self.index.setdefault(e, set()).add(p.story_id)
        # how many stories of the reach's span hold each name: all of them here when
        # ``profiles`` is the whole span; the database side loads only the stories of rare
        # names and passes the counts its lookup found (etl.stories.assign._load_reach)
        self.counts = {e: len(ids) for e, ids in self.index.items()} if counts is None else dict(counts)

    def rare(self, art: Item, held: CandidateIndex, max_stories: int) -> list[str]:
        """The article's names (``REACH_MIN_NAME`` letters or more) that at most ``max_stories``
        stories hold, in the older span and in the batch's window together: the only keys that
        make an older story a candidate."""
        out = []
        for e in art.entities:
            if len(e) >= REACH_MIN_NAME:
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
    that ended at most ``cfg.reach_days`` before the batch's first article."""
    if cfg.reach_days <= 0:
        return None
    far = lo + timedelta(hours=cfg.window_hours) - timedelta(days=cfg.reach_days)
    return Reach({k: p for k, p in profiles.items() if k not in held and p.last >= far})
