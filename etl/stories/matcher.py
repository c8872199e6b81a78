"""Join-or-new for one article against the stories of its window: the similarity features of
the article to each candidate story, the learned model's probability, and merging stories that
converged. Pure computation: the engine (``etl.stories.engine``) feeds it profiles and applies
its decisions.

For each candidate story (picked by :class:`~etl.stories.index.CandidateIndex`, inside the
time window, or by the long reach) a row of similarity features is computed — per-field TF-IDF
cosines of the article's title, lead and body against the story's centroids, how much better
this story is than the best other one on the body, entity and number overlap, the
sentence-embedding cosine, the time gap, whether the outlet already reports the story, the
story's size — and the model (:mod:`etl.stories.model`) turns it into a probability. The most
probable story is joined when that probability reaches the model's threshold. Deterministic for
a given processing order and batching.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from etl.config import StoryConfig
from etl.models import MatchMethod
from etl.stories.index import candidates
from etl.stories.model import FEATURES, JoinModels, load_models
from etl.stories.profile import Item, Profile
from etl.stories.reach import Reach
from etl.stories.window import IDF_REFRESH, CandidateArrays, WindowState, micros, sparse


@dataclass(frozen=True)
class Decision:
    story_id: int | None     # None: open a new story
    score: float | None      # the model's probability of one event
    method: MatchMethod | None
    # the other candidates the model found closest, most probable first: (story id, P(one event))
    # before any bar — what the engine links as related stories
    near: tuple[tuple[int, float], ...] = ()


_LOG1P = [math.log1p(k) for k in range(256)]


def _log1p_counts(counts: np.ndarray) -> np.ndarray:
    """math.log1p of small integer counts (the same floats as the scalar code gave)."""
    return np.array([_LOG1P[k] if k < 256 else math.log1p(k) for k in counts.astype(np.int64).tolist()])


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
        self._idf_n = self.freq.n

    # --- which stories -------------------------------------------------------------------

    def active(self, art: Item) -> list[Profile]:
        """Candidate stories in the window around the article, by id."""
        window = timedelta(hours=self.cfg.window_hours)
        out = []
        for sid in sorted(candidates(art, self.index)):
            p = self.profiles.get(sid)
            if p is not None and p.last >= art.time - window and p.first <= art.time + window:
                out.append(p)
        return out

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

    # --- how alike ----------------------------------------------------------------------

    def features(self, art: Item, profs: Sequence[Profile]) -> np.ndarray:
        """(len(profs), len(FEATURES)) similarity features of the article to each story.

        One function per group of columns (:data:`FEATURE_GROUPS`), each over every candidate
        at once; the "gap" and count columns are derived from the others."""
        if abs(self.freq.n - self._idf_n) > IDF_REFRESH * self._idf_n + 4:
            # the weights follow the story frequencies once the number of stories moved by
            # 10%: often while a stream starts, rarely in a full window
            self.state.reset_weights()
            self._idf_n = self.freq.n
        x = np.zeros((len(profs), len(FEATURES)), dtype=np.float64)
        if not profs:
            return x
        cands = CandidateArrays(self.state, profs)
        for group in FEATURE_GROUPS:
            for name, column in group(self, art, cands).items():
                x[:, _COLUMN[name]] = column
        x[:, _COLUMN["body_gap"]] = x[:, _COLUMN["body_cos"]] - x[:, _COLUMN["body_cos"]].max()
        x[:, _COLUMN["title_gap"]] = x[:, _COLUMN["title_cos"]] - x[:, _COLUMN["title_cos"]].max()
        x[:, _COLUMN["entity_gap"]] = x[:, _COLUMN["entity_cos"]] - x[:, _COLUMN["entity_cos"]].max()
        x[:, _COLUMN["embedding_gap"]] = x[:, _COLUMN["embedding_cos"]] - x[:, _COLUMN["embedding_cos"]].max()
        x[:, _COLUMN["candidates"]] = math.log1p(len(profs))
        return x

    def _weighted_cos(self, vec: Mapping[str, float], cands: CandidateArrays, field: str) -> np.ndarray:
        """IDF²-weighted cosine of an article vector with one centroid field of every candidate:
        Σ a·c·w / √(Σ a²w · Σ c²w). A centroid's words are weighted when it first shares a
        word with an article (as the scalar code did, so the same weights)."""
        out = np.zeros(cands.n)
        if not vec:
            return out
        st = self.state
        a_idx, a_val = sparse(st.lex, vec)
        w = st.weights(a_idx)
        na = sum((a_val * a_val * w).tolist())  # in order, as the scalar loop summed it
        if na == 0.0:
            return out
        idx, val, row = cands.field(field)
        if not len(idx):
            return out
        st._fit()
        dense = st.dense
        dense[a_idx] = a_val * w
        prod = val * dense[idx]
        dense[a_idx] = 0.0
        num = np.bincount(row, weights=prod, minlength=cands.n)
        hit = num != 0.0
        if not hit.any():
            return out
        sel = hit[row]
        sidx, sval = idx[sel], val[sel]
        norm = np.bincount(row[sel], weights=sval * sval * st.weights(sidx), minlength=cands.n)
        out[hit] = num[hit] / np.sqrt(na * norm[hit])
        return out

    def _count_cos(self, feats: Sequence[str], cands: CandidateArrays, field: str) -> tuple[np.ndarray, np.ndarray]:
        """(:func:`etl.stories.scoring.cosine` of the article's features with each candidate's
        counts, how many of the features each candidate has): integer sums, so exact."""
        cos, shared = np.zeros(cands.n), np.zeros(cands.n)
        if not feats:
            return cos, shared
        st = self.state
        idx, val, row = cands.field(field)
        if not len(idx):
            return cos, shared
        vocab = st.ent if field == "entities" else st.num
        a_idx = vocab.lookup(feats)
        st._fit()
        mark = st.mark
        mark[a_idx] = 1.0
        m = mark[idx]
        mark[a_idx] = 0.0
        total = np.bincount(row, weights=val * m, minlength=cands.n)
        shared = np.asarray(np.bincount(row, weights=m, minlength=cands.n), dtype=np.float64)
        norms = np.array([r.entity_norm if field == "entities" else r.number_norm for r in cands.rows])
        ok = norms > 0
        cos[ok] = total[ok] / (math.sqrt(len(feats)) * norms[ok])
        return cos, shared

    # One function per group of feature columns: each returns {feature name: column over the
    # candidates}. A new feature is a new entry in FEATURES and a function here.

    def lexical_columns(self, art: Item, cands: CandidateArrays) -> dict[str, np.ndarray]:
        return {"title_cos": self._weighted_cos(art.title_vec, cands, "title"),
                "lead_cos": self._weighted_cos(dict.fromkeys(art.terms, 1.0), cands, "terms"),
                "body_cos": self._weighted_cos(art.body_vec, cands, "body")}

    def entity_columns(self, art: Item, cands: CandidateArrays) -> dict[str, np.ndarray]:
        cos, shared = self._count_cos(art.entities, cands, "entities")
        return {"entity_cos": cos, "entity_shared": _log1p_counts(shared)}

    def number_columns(self, art: Item, cands: CandidateArrays) -> dict[str, np.ndarray]:
        return {"number_cos": self._count_cos(art.numbers, cands, "numbers")[0]}

    def embedding_columns(self, art: Item, cands: CandidateArrays) -> dict[str, np.ndarray]:
        out = np.zeros(cands.n)
        if art.embedding is not None:
            have = [i for i, r in enumerate(cands.rows) if r.centroid is not None and r.centroid_norm]
            if have:
                rows = [cands.rows[i] for i in have]
                dots = np.stack([r.centroid for r in rows]) @ art.embedding  # type: ignore[misc]
                out[have] = dots.astype(np.float64) / np.array([r.centroid_norm for r in rows])
        return {"embedding_cos": out}

    def story_columns(self, art: Item, cands: CandidateArrays) -> dict[str, np.ndarray]:
        """Time gap (fraction of the window, capped at 1.5), same outlet, log members."""
        t = micros(art.time)
        first = np.array([r.first_us for r in cands.rows], dtype=np.int64)
        last = np.array([r.last_us for r in cands.rows], dtype=np.int64)
        gap = np.where(t > last, t - last, np.maximum(first - t, 0)) / 1e6
        window_s = self.cfg.window_hours * 3600
        return {"time_gap": np.minimum(gap / window_s, 1.5),
                "same_outlet": np.array([1.0 if art.source_id in p.source_ids else 0.0 for p in cands.profs]),
                "log_members": np.array([r.log_members for r in cands.rows]),
                "cross": np.array([1.0 if self.cross_lingual(art, p) else 0.0 for p in cands.profs])}

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

    @staticmethod
    def cross_lingual(art: Item, p: Profile) -> bool:
        return bool(art.language and p.languages and art.language not in p.languages)

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

FeatureGroup = Callable[[Matcher, Item, CandidateArrays], dict[str, np.ndarray]]
# every column of FEATURES but the derived ones (gaps, candidate count) comes from one of these
FEATURE_GROUPS: tuple[FeatureGroup, ...] = (
    Matcher.lexical_columns, Matcher.entity_columns, Matcher.number_columns, Matcher.embedding_columns,
    Matcher.story_columns)
_COLUMN = {name: k for k, name in enumerate(FEATURES)}
