"""Join-or-new: the learned decision that puts an article into a story or opens a new one.

For each candidate story (picked by :class:`~etl.stories.scoring.CandidateIndex`, inside the
time window) a row of similarity features is computed — per-field TF-IDF cosines of the
article's title, lead and body against the story's centroids, how much better this story is
than the best other one on the body, entity and number overlap, the sentence-embedding cosine,
the time gap, whether the outlet already reports the story, the story's size — and a logistic
regression fitted on the dev sets (``bench/train_stories.py``; weights, command, data hashes
and cross-validated scores in ``join_model.json``) turns it into a probability. The most
probable story is joined when that probability reaches the model's threshold.

The long reach (:class:`Reach`): a story that ended before the window, up to
``cfg.reach_days`` earlier, is a candidate too when the article shares a *rare* name with it
(one that at most ``cfg.reach_max_stories`` stories of the window and of that span hold): a
hearing or a charge weeks after a shooting. The same model scores it (its ``time_gap`` is
then beyond the window), and it is joined only at ``cfg.reach_probability``.

IDF is *story frequency* in the window: a word most open stories share ("shooting",
"police", "earthquake") says little about which one an article belongs to, and that is
exactly what separates incidents that look alike. It is computed from the profiles the
matcher holds and kept up to date as stories open and grow; the weights derived from it are
refreshed when the number of stories has moved by 10% (so that the stories' weighted norms
can be cached in between). Deterministic for a given processing order and batching.

Two models ship: one with the embedding feature, one without it (the lexical fallback for
articles without an embedding: the encoder turned off with ``NEWSETL_STORY_EMBEDDING=0``, or
not importable). The dev sets are English, so the learned model is not
trusted across languages: a story with no member in the article's language is scored with
the hand-set cross-lingual rule of :func:`~etl.stories.scoring.score` (entities, numbers,
embedding), which the demo's en/es/fr stories were checked with.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import mul
from pathlib import Path

import numpy as np

from etl.config import StoryConfig
from etl.models import MatchMethod
from etl.stories import features
from etl.stories.scoring import CandidateIndex, Item, Profile, candidates, score

FEATURES = ("title_cos", "lead_cos", "body_cos", "body_gap", "entity_cos", "entity_shared",
            "number_cos", "embedding_cos", "time_gap", "same_outlet", "log_members", "title_gap",
            "entity_gap", "candidates")
MODEL_FILE = "join_model.json"
IDF_REFRESH = 0.1  # relative change in the number of stories that refreshes the IDF weights


@dataclass(frozen=True)
class JoinModel:
    """A standardized logistic regression over (a subset of) :data:`FEATURES`."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    threshold: float

    @classmethod
    def from_dict(cls, d: Mapping) -> "JoinModel":
        return cls(tuple(d["features"]), np.asarray(d["mean"], dtype=np.float64),
                   np.asarray(d["scale"], dtype=np.float64), np.asarray(d["coef"], dtype=np.float64),
                   float(d["intercept"]), float(d["threshold"]))

    def columns(self) -> list[int]:
        return [FEATURES.index(f) for f in self.features]

    def probability(self, x: np.ndarray) -> np.ndarray:
        """P(same story) for each row of a (n, len(FEATURES)) feature matrix."""
        z = (x[:, self.columns()] - self.mean) / self.scale @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def embedding_share(self, row: np.ndarray) -> bool:
        """Whether the embedding contributed more to this decision than any other feature."""
        if "embedding_cos" not in self.features:
            return False
        contrib = (row[self.columns()] - self.mean) / self.scale * self.coef
        k = self.features.index("embedding_cos")
        return bool(contrib[k] > 0 and contrib[k] >= contrib.max())


@dataclass(frozen=True)
class JoinModels:
    embedding: JoinModel
    lexical: JoinModel
    version: str

    def for_item(self, art: Item) -> JoinModel:
        return self.embedding if art.embedding is not None else self.lexical


def parse_models(doc: Mapping) -> JoinModels:
    return JoinModels(JoinModel.from_dict(doc["models"]["embedding"]),
                      JoinModel.from_dict(doc["models"]["lexical"]), str(doc["version"]))


@functools.cache
def load_models(path: str | None = None) -> JoinModels:
    """The shipped weights (``etl/stories/join_model.json``), or the file at ``path``."""
    file = Path(__file__).with_name(MODEL_FILE) if path is None else Path(path)
    return parse_models(json.loads(file.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Decision:
    story_id: int | None     # None: open a new story
    score: float | None      # the probability (learned) or the cross-lingual score
    method: MatchMethod | None


class StoryFrequency:
    """Story frequency of each word over the matcher's profiles → smooth IDF weights."""

    def __init__(self, profiles: Iterable[Profile]) -> None:
        self.n = 0
        self.sf: Counter = Counter()
        self.keys: dict[int, set[str]] = {}
        for p in profiles:
            self.update(p)

    def remove(self, story_id: int) -> None:
        keys = self.keys.pop(story_id, None)
        if keys is not None:
            self.n -= 1
            self.sf.subtract(keys)

    def update(self, p: Profile) -> None:
        new = set(p.title)
        new.update(p.body, p.terms)
        old = self.keys.get(p.story_id)
        if old is None:  # a story not counted yet (every story of a freshly loaded window)
            self.n += 1
            if new:  # (a story without words stays uncounted in keys, as it always was)
                self.sf.update(new)
                self.keys[p.story_id] = new
            return
        added = new - old
        if added:
            self.sf.update(added)
            self.keys[p.story_id] = old | added

    def idf(self, term: str) -> float:
        return math.log((1 + self.n) / (1 + self.sf.get(term, 0))) + 1.0


def _weights(idf: dict[str, float], freq: StoryFrequency, term: str) -> float:
    w = idf.get(term)
    if w is None:
        w = idf[term] = freq.idf(term) ** 2
    return w


def _weighted(vec: Mapping[str, float], idf: dict[str, float], freq: StoryFrequency) -> tuple[dict[str, float], float]:
    """An article vector with its IDF² weights applied, and its weighted squared norm:
    computed once per article, then compared with every candidate."""
    out = {}
    na = 0.0
    for t, a in vec.items():
        w = _weights(idf, freq, t)
        out[t] = a * w
        na += a * a * w
    return out, na


def _wcos(wvec: Mapping[str, float], na: float, centroid: Mapping[str, float],
          centroid_norm: Callable[[], float]) -> float:
    """IDF-weighted cosine of an article vector (from :func:`_weighted`) and a story centroid
    (its weighted norm comes from the caller's cache: it is the costly part)."""
    if not wvec or not centroid or na == 0.0:
        return 0.0
    # only the shared terms are multiplied: the same sum as over every term with 0.0 for the
    # missing ones (adding 0.0 changes no float), in the same order, so bit-identical
    if len(wvec) <= len(centroid):
        num = sum([w * centroid[t] for t, w in wvec.items() if t in centroid])
    else:
        num = sum([c * wvec[t] for t, c in centroid.items() if t in wvec])
    if num == 0.0:
        return 0.0
    return num / math.sqrt(na * centroid_norm())


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
        """The article's names (3 letters or more) that at most ``max_stories`` stories hold,
        in the older span and in the batch's window together: the only keys that make an
        older story a candidate."""
        out = []
        for e in art.entities:
            if len(e) >= 3:
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


class Matcher:
    """The stories of a window as the join decision sees them: profiles, the candidate index
    and story frequencies, kept current as articles are added. Pure computation; the database
    side (``etl.stories.assign``) loads the profiles and saves what changed."""

    def __init__(self, profiles: dict[int, Profile], cfg: StoryConfig, models: JoinModels | None = None,
                 reach: Reach | None = None) -> None:
        self.profiles = profiles
        self.reach = reach
        self.cfg = cfg
        self.models = models if models is not None else load_models()
        self.index = CandidateIndex()
        for p in profiles.values():
            self.index.add(p)
        self.freq = StoryFrequency(profiles.values())
        self._idf: dict[str, float] = {}
        self._idf_n = self.freq.n
        self._norms: dict[tuple[int, str], tuple[int, int, float]] = {}

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
        self.profiles[p.story_id] = p
        self.index.add(p)
        self.freq.update(p)

    # --- how alike ----------------------------------------------------------------------

    def features(self, art: Item, profs: Sequence[Profile]) -> np.ndarray:
        """(len(profs), len(FEATURES)) similarity features of the article to each story."""
        if abs(self.freq.n - self._idf_n) > IDF_REFRESH * self._idf_n + 4:
            # the weights (and the cached centroid norms) follow the story frequencies once the
            # number of stories moved by 10%: often while a stream starts, rarely in a full window
            self._idf, self._idf_n = {}, self.freq.n
        idf = self._idf
        x = np.zeros((len(profs), len(FEATURES)), dtype=np.float64)
        wt, nt = _weighted(art.title_vec, idf, self.freq)
        wl, nl = _weighted({t: 1.0 for t in art.terms}, idf, self.freq)
        wb, nb = _weighted(art.body_vec, idf, self.freq)
        window_s = self.cfg.window_hours * 3600
        for i, p in enumerate(profs):
            x[i, 0] = _wcos(wt, nt, p.title, functools.partial(self._norm, p, "title"))
            x[i, 1] = _wcos(wl, nl, p.terms, functools.partial(self._norm, p, "terms"))
            x[i, 2] = _wcos(wb, nb, p.body, functools.partial(self._norm, p, "body"))
            x[i, 4] = self._cosine(art.entities, p, "entities")
            x[i, 5] = math.log1p(sum(1 for e in art.entities if e in p.entities))
            x[i, 6] = self._cosine(art.numbers, p, "numbers")
            if art.embedding is not None and p.centroid is not None:
                norm = self._centroid_norm(p)
                x[i, 7] = float(art.embedding @ p.centroid) / norm if norm else 0.0
            if art.time > p.last:
                dt = (art.time - p.last).total_seconds()
            else:
                dt = max(0.0, (p.first - art.time).total_seconds())
            x[i, 8] = min(dt / window_s, 1.5)
            x[i, 9] = 1.0 if art.source_id in p.source_ids else 0.0
            x[i, 10] = math.log1p(p.member_count)
        if len(profs):
            x[:, 3] = x[:, 2] - x[:, 2].max()
            x[:, 11] = x[:, 0] - x[:, 0].max()
            x[:, 12] = x[:, 4] - x[:, 4].max()
            x[:, 13] = math.log1p(len(profs))
        return x

    def _cosine(self, feats: Sequence[str], p: Profile, name: str) -> float:
        """:func:`etl.stories.scoring.cosine` of the article's features and a story's counts,
        with the counts' norm cached per story version (the same expression, so the same float)."""
        counts: Counter = getattr(p, name)
        if not feats or not counts:
            return 0.0
        key = (p.story_id, name)
        hit = self._norms.get(key)
        if hit is not None and hit[0] == p.version:
            norm = hit[2]
        else:
            norm = math.sqrt(sum(v * v for v in counts.values()))
            self._norms[key] = (p.version, -1, norm)
        return sum(counts.get(f, 0) for f in feats) / (math.sqrt(len(feats)) * norm)

    def _centroid_norm(self, p: Profile) -> float:
        """Norm of a story's embedding sum (the caller checked it has one), cached per version."""
        key = (p.story_id, "centroid")
        hit = self._norms.get(key)
        if hit is not None and hit[0] == p.version:
            return hit[2]
        assert p.centroid is not None
        norm = float(np.linalg.norm(p.centroid))
        self._norms[key] = (p.version, -1, norm)
        return norm

    def _norm(self, p: Profile, name: str) -> float:
        """Squared IDF-weighted norm of a centroid, cached until the story or the story
        frequencies change."""
        key = (p.story_id, name)
        hit = self._norms.get(key)
        if hit is not None and hit[0] == p.version and hit[1] == self._idf_n:
            return hit[2]
        idf, freq = self._idf, self.freq
        centroid: Mapping[str, float] = getattr(p, name)
        if not idf.keys() >= centroid.keys():  # weights not used yet (from the same frequencies)
            for t in [t for t in centroid if t not in idf]:
                idf[t] = freq.idf(t) ** 2
        # = sum(c * c * idf[t] for t, c in centroid.items()), with the loop in C (bit-identical)
        vals = centroid.values()
        value = sum(map(mul, map(mul, vals, vals), map(idf.__getitem__, centroid)))
        self._norms[key] = (p.version, self._idf_n, value)
        return value

    def _reach_bar(self, art: Item, profs: Sequence[Profile], prob: np.ndarray, threshold: float) -> np.ndarray:
        """The probabilities with those of long-reach stories (ended before the article's
        window) below ``cfg.reach_probability`` zeroed: a story weeks old is joined only on
        strong evidence."""
        if self.reach is None:
            return prob
        bar = max(threshold, self.cfg.reach_probability)
        edge = art.time - timedelta(hours=self.cfg.window_hours)
        out = prob.copy()
        for i, p in enumerate(profs):
            if p.last < edge and out[i] < bar:
                out[i] = 0.0
        return out

    @staticmethod
    def cross_lingual(art: Item, p: Profile) -> bool:
        return bool(art.language and p.languages and art.language not in p.languages)

    def decide(self, art: Item, profs: Sequence[Profile] | None = None) -> Decision:
        """The story to join (the most probable one, if it clears the model's threshold; else
        the best cross-lingual story by the hand-set rule, if it clears ``cfg.threshold``)."""
        profs = self.candidates(art) if profs is None else profs
        same = [p for p in profs if not self.cross_lingual(art, p)]
        if same:
            model = self.models.for_item(art)
            x = self.features(art, same)
            prob = model.probability(x)
            prob = self._reach_bar(art, same, prob, model.threshold)
            k = int(np.argmax(prob))  # ties: the lowest story id (profiles are in id order)
            if prob[k] >= model.threshold:
                method = MatchMethod.EMBEDDING if model.embedding_share(x[k]) else MatchMethod.LEXICAL
                return Decision(same[k].story_id, float(prob[k]), method)
        best: tuple[float, int, MatchMethod] | None = None
        for p in profs:
            if not self.cross_lingual(art, p):
                continue
            s, m = score(art, p, self.cfg)
            if best is None or s > best[0]:
                best = (s, p.story_id, m)
        if best is not None and best[0] >= self.cfg.threshold:
            return Decision(best[1], best[0], best[2])
        return Decision(None, None, None)

    # --- what changes -----------------------------------------------------------------------

    def open(self, story_id: int, art: Item) -> Profile:
        """A new story with this article as its first member."""
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

    def merge_target(self, story_id: int) -> int | None:
        """The story this one has converged with, if any: the most probable other story in
        the window when the story itself is compared like an article (its centroids against
        theirs), when that probability clears the merge bar (``cfg.merge_probability``, or
        the join bar if higher). Only same-language evidence
        (the learned model) merges stories."""
        p = self.profiles[story_id]
        item = p.as_item()
        others = [q for q in self.active(item) if q.story_id != story_id and not self.cross_lingual(item, q)]
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
        return gone, into


def cluster_stream(items: Sequence[Item], cfg: StoryConfig, models: JoinModels | None = None,
                   batch: int = 100, merge: bool = True) -> dict[int, int]:
    """Article id → story id for items in processing order, all in memory: the story-match
    step of ``etl.stories.assign`` without the database (no near-duplicate or attribution
    step). The benches and the dev-set evaluation run this; ``batch`` mirrors how the stage
    sees the stream (the window's profiles are loaded once per batch)."""
    window = timedelta(hours=cfg.window_hours)
    profiles: dict[int, Profile] = {}
    out: dict[int, int] = {}
    merged: dict[int, int] = {}
    grown: set[int] = set()
    next_id = 1
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        lo, hi = chunk[0].time - window, chunk[-1].time + window
        held = {k: p for k, p in profiles.items() if p.last >= lo and p.first <= hi}
        m = Matcher(held, cfg, models, reach_pool(profiles, lo, held, cfg))
        for art in chunk:
            d = m.decide(art)
            if d.story_id is None:
                m.open(next_id, art)
                out[art.id] = next_id
                next_id += 1
            else:
                m.add(d.story_id, art)
                out[art.id] = d.story_id
                grown.add(d.story_id)
        if merge:
            for gone, into in m.merge_converged(grown):
                merged[gone] = into
        grown.clear()
        for p in m.profiles.values():
            p.cap_body()  # as saving and loading the profile would
        profiles.update(m.profiles)
        for gone in merged:
            profiles.pop(gone, None)

    def final(sid: int) -> int:
        while sid in merged:
            sid = merged[sid]
        return sid

    return {a: final(s) for a, s in out.items()}


def build_item(article_id: int, source_id: int, language: str | None, time: datetime, title: str | None,
               description: str | None, body: str | None, cfg: StoryConfig,
               embedding: np.ndarray | None = None) -> Item:
    """An article as the matcher sees it: lexical features of title + lead, and the title and
    body term vectors (recomputed from the text: cheap, so never cached)."""
    f = features.article_features(title, description, body, cfg.feature_chars)
    return Item(article_id, source_id, language, time, title, description, body, f.terms, f.entities,
                f.numbers, embedding, features.term_vector(title), features.term_vector(body or description))
