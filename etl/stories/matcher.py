"""Join-or-new for one article against the stories of its window: the similarity features of
the article to each candidate story, the learned model's probability, and merging stories that
converged. Pure computation: the engine (``etl.stories.engine``) feeds it profiles and applies
its decisions.

For each candidate story (picked by :class:`~etl.stories.index.CandidateIndex`, inside the
time window, or by the long reach) a row of similarity features is computed
(:mod:`etl.stories.similarity`) and the model (:mod:`etl.stories.model`) turns it into a
probability. The most
probable story is joined when that probability reaches the model's threshold. Deterministic for
a given processing order and batching.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from etl.config import StoryConfig
from etl.models import MatchMethod
from etl.stories.index import candidate_hits
from etl.stories.model import FEATURES, JoinModels, load_models
from etl.stories.profile import Item, Profile
from etl.stories.reach import Reach
from etl.stories.similarity import Similarity
from etl.stories.window import WindowState


@dataclass(frozen=True)
class Decision:
    story_id: int | None     # None: open a new story
    score: float | None      # the model's probability of one event
    method: MatchMethod | None
    # the other candidates the model found closest, most probable first: (story id, P(one event))
    # before any bar — what the engine links as related stories
    near: tuple[tuple[int, float], ...] = ()


class Matcher:
    """The stories of a window as the join decision sees them: profiles, the candidate index
    and story frequencies, kept current as articles are added. Pure computation; the database
    side (``etl.stories.assign``) loads the profiles and saves what changed.

    ``state`` carries the index, the frequencies and the stories' arrays over from the
    previous batch's matcher (see :class:`WindowState`); a matcher without one builds them.
    ``reach``: the batch's long reach (:class:`Reach`), if any. ``languages``: the batch's
    (with the window's, they set the words' background weights)."""

    def __init__(self, profiles: dict[int, Profile], cfg: StoryConfig, models: JoinModels | None = None,
                 reach: Reach | None = None, state: WindowState | None = None,
                 languages: Iterable[str] = ()) -> None:
        self.profiles = profiles
        self.reach = reach
        self.cfg = cfg
        self.models = models if models is not None else load_models()
        # training: sees each decision's candidates and features (the stream's own decisions)
        self.observe: Callable[[Item, Sequence[Profile], np.ndarray], None] | None = None
        if state is None:
            state = WindowState()
        elif state.too_big():
            state.__init__()  # type: ignore[misc]  # start over, in place (the caller keeps it)
        state.sync(profiles)
        state.reset_weights()  # each batch weighs with its own window's frequencies
        langs = set(languages)
        for p in profiles.values():
            langs.update(p.languages)
        state.use_languages(langs)
        self.state = state
        self.index = state.index
        self.freq = state.freq
        self.similarity = Similarity(state, cfg)

    # --- which stories -------------------------------------------------------------------

    def active(self, art: Item) -> list[Profile]:
        """Candidate stories in the window around the article, by id: at most
        ``cfg.max_candidates``, those sharing the most with it (ties: the lower id)."""
        window = timedelta(hours=self.cfg.window_hours)
        inside = []
        for sid, shared in candidate_hits(art, self.index).items():
            p = self.profiles.get(sid)
            if p is not None and p.last >= art.time - window and p.first <= art.time + window:
                inside.append((-shared, sid, p))
        if len(inside) > self.cfg.max_candidates:
            inside = sorted(inside, key=lambda c: c[:2])[:self.cfg.max_candidates]
        return [p for _, _, p in sorted(inside, key=lambda c: c[1])]

    def candidates(self, art: Item) -> list[Profile]:
        """The window's candidate stories, then the long reach's (older stories sharing a
        rare name with the article)."""
        return self.active(art) + self.reach_candidates(art)

    def reach_candidates(self, art: Item) -> list[Profile]:
        """Older stories (ended before the article's window, within ``cfg.reach_days``)
        sharing a rare name with it: none without a :class:`Reach`."""
        if self.reach is None:
            return []
        return self.reach.candidates(art, self.cfg, self.profiles, self.index)

    def track(self, p: Profile) -> None:
        """A story that the caller loaded into ``profiles`` after construction."""
        self.state.forget(p.story_id)
        self.profiles[p.story_id] = p
        self.index.add(p)
        self.freq.update(p)
        self.state.changed(p.story_id)

    # --- how alike (etl.stories.similarity) -----------------------------------------------

    def features(self, art: Item, profs: Sequence[Profile]) -> np.ndarray:
        """(len(profs), len(FEATURES)) similarity features of the article to each story."""
        return self.similarity.features(art, profs)

    def _bars(self, art: Item, profs: Sequence[Profile], prob: np.ndarray, threshold: float) -> np.ndarray:
        """The probabilities, with those of stories that may only grow on stronger evidence
        zeroed when below their bar:

        * a long-reach story (it ended before the article's window): ``cfg.reach_probability``
          — a story weeks old is joined only on strong evidence;
        * a story whose first article is more than ``cfg.span_hours`` older than this one,
          unless the two share *identity evidence* (a name rare in the language that few
          stories of the stream hold): ``cfg.span_probability``. A story's span grows with
          the event's own names, not with a topic's daily news (a month of market reports,
          a bankruptcy then the rescue plan)."""
        cfg = self.cfg
        edge = art.time - timedelta(hours=cfg.window_hours)
        late = art.time - timedelta(hours=cfg.span_hours)
        out = prob.copy()
        for i, p in enumerate(profs):
            if p.last < edge and self.reach is not None:
                bar = max(threshold, cfg.reach_probability)
            elif p.first < late and not self.identity(art, p):
                bar = max(threshold, cfg.span_probability)
            else:
                continue
            if out[i] < bar:
                out[i] = 0.0
        return out

    def identity(self, art: Item, p: Profile) -> bool:
        """Whether the article shares with the story a name that is rare in the language and
        held by at most ``cfg.reach_max_stories`` stories (the window's, and the long reach's
        horizon when there is one)."""
        for e in art.rare:
            if e in p.entities:
                n = len(self.index.entities.get(e, ()))
                if self.reach is not None:
                    n += self.reach.counts.get(e, 0)
                if n <= self.cfg.reach_max_stories:
                    return True
        return False

    def alone(self, profs: Sequence[Profile]) -> bool:
        """Whether the one candidate is all the window holds (the sparse model decides)."""
        return len(profs) == 1 and len(self.profiles) <= 1

    def probabilities(self, art: Item, profs: Sequence[Profile]) -> np.ndarray:
        """The model's probability of one event for each of these stories (no bar applied)."""
        if not profs:
            return np.zeros(0)
        return self.models.for_item(art, self.alone(profs)).probability(self.features(art, profs))

    def decide(self, art: Item, profs: Sequence[Profile] | None = None) -> Decision:
        """The story to join: the most probable candidate, in any language, if it clears the
        model's threshold (or the higher bar of an older story: :meth:`_bars`)."""
        profs = self.candidates(art) if profs is None else profs
        if not profs:
            return Decision(None, None, None)
        model = self.models.for_item(art, self.alone(profs))
        x = self.features(art, profs)
        if self.observe is not None:
            self.observe(art, profs, x)
        raw = model.probability(x)
        order = np.argsort(-raw, kind="stable")[:3]
        near = tuple((profs[i].story_id, float(raw[i])) for i in order.tolist())
        prob = self._bars(art, profs, raw, model.threshold)
        k = int(np.argmax(prob))  # ties: the lowest story id (profiles are in id order)
        if prob[k] >= model.threshold:
            method = MatchMethod.EMBEDDING if model.embedding_share(x[k]) else MatchMethod.LEXICAL
            return Decision(profs[k].story_id, float(prob[k]), method,
                            tuple(n for n in near if n[0] != profs[k].story_id))
        return Decision(None, None, None, near)

    # --- what changes -----------------------------------------------------------------------

    def open(self, story_id: int, art: Item) -> Profile:
        """A new story with this article as its first member."""
        self.state.forget(story_id)  # (an id this state still counts: a batch rolled back)
        p = Profile(story_id, art.time, art.time)
        self.profiles[story_id] = p
        self.add(story_id, art)
        return p

    def add(self, story_id: int, art: Item, profile_too: bool = True) -> None:
        if story_id not in self.profiles and self.reach is not None and story_id in self.reach.profiles:
            self.track(self.reach.profiles[story_id])  # a follow-up joined an older story
        p = self.profiles[story_id]
        p.add(art, profile_too=profile_too)
        self.index.add(p, art)
        self.freq.update(p)
        self.state.changed(story_id)

    def merge_target(self, story_id: int) -> int | None:
        """The story this one has converged with, if any: the most probable other story in
        the window when the story itself is compared like an article (its centroids against
        theirs), when that probability clears the merge bar (``cfg.merge_probability``, or
        the join bar if higher)."""
        p = self.profiles[story_id]
        item = p.as_item()
        others = [q for q in self.active(item) if q.story_id != story_id]
        if not others:
            return None
        model = self.models.for_item(item)
        x = self.features(item, others)
        x[:, FEATURES.index("same_outlet")] = [1.0 if p.source_ids & q.source_ids else 0.0 for q in others]
        prob = model.probability(x)
        k = int(np.argmax(prob))
        return others[k].story_id if prob[k] >= max(model.threshold, self.cfg.merge_probability) else None

    def merge_converged(self, grown: Iterable[int]) -> list[tuple[int, int]]:
        """Checks the stories that grew (once each, by id, at the end of a batch) and merges
        every one that converged with another; returns the merges (from, into) in order."""
        done: list[tuple[int, int]] = []
        for sid in sorted(set(grown)):
            while sid in self.profiles and (other := self.merge_target(sid)) is not None:
                gone, sid = self.merge(sid, other)
                done.append((gone, sid))
        return done

    def merge(self, a: int, b: int) -> tuple[int, int]:
        """Merges two stories, keeping the older id (the smaller: ids grow with creation);
        returns (from, into)."""
        into, gone = min(a, b), max(a, b)
        keep, drop = self.profiles[into], self.profiles.pop(gone)
        keep.absorb(drop)
        self.freq.remove(gone)
        self.freq.update(keep)
        self.index.add(keep)
        self.state.changed(gone)
        self.state.changed(into)
        return gone, into
