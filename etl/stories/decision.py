"""Join-or-new: the learned decision that puts an article into a story or opens a new one.

For each candidate story (picked by :class:`~etl.stories.scoring.CandidateIndex`, inside the
time window) a row of similarity features is computed — per-field TF-IDF cosines of the
article's title, lead and body against the story's centroids, how much better this story is
than the best other one on the body, entity and number overlap, the sentence-embedding cosine,
the time gap, whether the outlet already reports the story, the story's size — and a logistic
regression fitted on the dev sets (``bench/train_stories.py``; weights, command, data hashes
and cross-validated scores in ``join_model.json``) turns it into a probability. The most
probable story is joined when that probability reaches the model's threshold.

IDF is *story frequency* in the window: a word most open stories share ("shooting",
"police", "earthquake") says little about which one an article belongs to, and that is
exactly what separates incidents that look alike. It is computed from the profiles the
matcher holds (and kept up to date as stories open and grow), so it is deterministic for a
given processing order.

Two models ship: one with the embedding feature, one without it (the lexical fallback when
the ``crosslingual`` extra is absent). The dev sets are English, so the learned model is not
trusted across languages: a story with no member in the article's language is scored with
the hand-set cross-lingual rule of :func:`~etl.stories.scoring.score` (entities, numbers,
embedding), which the demo's en/es/fr stories were checked with.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

import numpy as np

from etl.config import StoryConfig
from etl.models import MatchMethod
from etl.stories import features
from etl.stories.scoring import CandidateIndex, Item, Profile, candidates, cosine, score

FEATURES = ("title_cos", "lead_cos", "body_cos", "body_gap", "entity_cos", "entity_shared",
            "number_cos", "embedding_cos", "time_gap", "same_outlet", "log_members")
MODEL_FILE = "join_model.json"


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
    if path is None:
        raw = resources.files("etl.stories").joinpath(MODEL_FILE).read_text(encoding="utf-8")
    else:
        raw = Path(path).read_text(encoding="utf-8")
    return parse_models(json.loads(raw))


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

    def update(self, p: Profile) -> None:
        new = set(p.title) | set(p.body) | set(p.terms)
        old = self.keys.get(p.story_id)
        if old is None:
            self.n += 1
            old = set()
        added = new - old
        if added:
            self.sf.update(added)
            self.keys[p.story_id] = old | added

    def idf(self, term: str) -> float:
        return math.log((1 + self.n) / (1 + self.sf.get(term, 0))) + 1.0


def _wcos(vec: Mapping[str, float], centroid: Mapping[str, float], idf: dict[str, float],
          freq: StoryFrequency) -> float:
    """IDF-weighted cosine of an article vector and a story centroid."""
    if not vec or not centroid:
        return 0.0
    num = 0.0
    na = 0.0
    for t, a in vec.items():
        w = idf.get(t)
        if w is None:
            w = idf[t] = freq.idf(t) ** 2
        na += a * a * w
        c = centroid.get(t)
        if c:
            num += a * c * w
    if num == 0.0:
        return 0.0
    nc = 0.0
    for t, c in centroid.items():
        w = idf.get(t)
        if w is None:
            w = idf[t] = freq.idf(t) ** 2
        nc += c * c * w
    return num / math.sqrt(na * nc)


class Matcher:
    """The stories of a window as the join decision sees them: profiles, the candidate index
    and story frequencies, kept current as articles are added. Pure computation; the database
    side (``etl.stories.assign``) loads the profiles and saves what changed."""

    def __init__(self, profiles: dict[int, Profile], cfg: StoryConfig, models: JoinModels | None = None) -> None:
        self.profiles = profiles
        self.cfg = cfg
        self.models = models if models is not None else load_models()
        self.index = CandidateIndex()
        for p in profiles.values():
            self.index.add(p)
        self.freq = StoryFrequency(profiles.values())
        self._idf: dict[str, float] = {}
        self._idf_n = self.freq.n

    # --- which stories -------------------------------------------------------------------

    def active(self, art: Item) -> list[Profile]:
        """Candidate stories in the window around the article, by id."""
        window = timedelta(hours=self.cfg.window_hours)
        out = []
        for sid in sorted(candidates(art, self.index)):
            p = self.profiles[sid]
            if p.last >= art.time - window and p.first <= art.time + window:
                out.append(p)
        return out

    def track(self, p: Profile) -> None:
        """A story that the caller loaded into ``profiles`` after construction."""
        self.profiles[p.story_id] = p
        self.index.add(p)
        self.freq.update(p)

    # --- how alike ----------------------------------------------------------------------

    def features(self, art: Item, profs: Sequence[Profile]) -> np.ndarray:
        """(len(profs), len(FEATURES)) similarity features of the article to each story."""
        if self.freq.n != self._idf_n:
            self._idf, self._idf_n = {}, self.freq.n
        idf = self._idf
        x = np.zeros((len(profs), len(FEATURES)), dtype=np.float64)
        lead = {t: 1.0 for t in art.terms}
        window_s = self.cfg.window_hours * 3600
        for i, p in enumerate(profs):
            x[i, 0] = _wcos(art.title_vec, p.title, idf, self.freq)
            x[i, 1] = _wcos(lead, p.terms, idf, self.freq)
            x[i, 2] = _wcos(art.body_vec, p.body, idf, self.freq)
            x[i, 4] = cosine(art.entities, p.entities)
            x[i, 5] = math.log1p(sum(1 for e in art.entities if e in p.entities))
            x[i, 6] = cosine(art.numbers, p.numbers)
            if art.embedding is not None and p.centroid is not None:
                norm = float(np.linalg.norm(p.centroid))
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
        return x

    @staticmethod
    def cross_lingual(art: Item, p: Profile) -> bool:
        return bool(art.language and p.languages and art.language not in p.languages)

    def decide(self, art: Item, profs: Sequence[Profile] | None = None) -> Decision:
        """The story to join (the most probable one, if it clears the model's threshold; else
        the best cross-lingual story by the hand-set rule, if it clears ``cfg.threshold``)."""
        profs = self.active(art) if profs is None else profs
        same = [p for p in profs if not self.cross_lingual(art, p)]
        if same:
            model = self.models.for_item(art)
            x = self.features(art, same)
            prob = model.probability(x)
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
        p = self.profiles[story_id]
        p.add(art, profile_too=profile_too)
        self.index.add(p, art)
        self.freq.update(p)


def cluster_stream(items: Sequence[Item], cfg: StoryConfig, models: JoinModels | None = None,
                   batch: int = 100) -> dict[int, int]:
    """Article id → story id for items in processing order, all in memory: the story-match
    step of ``etl.stories.assign`` without the database (no near-duplicate or attribution
    step). The benches and the dev-set evaluation run this; ``batch`` mirrors how the stage
    sees the stream (the window's profiles are loaded once per batch)."""
    window = timedelta(hours=cfg.window_hours)
    profiles: dict[int, Profile] = {}
    out: dict[int, int] = {}
    next_id = 1
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        lo, hi = chunk[0].time - window, chunk[-1].time + window
        m = Matcher({k: p for k, p in profiles.items() if p.last >= lo and p.first <= hi}, cfg, models)
        for art in chunk:
            d = m.decide(art)
            if d.story_id is None:
                m.open(next_id, art)
                out[art.id] = next_id
                next_id += 1
            else:
                m.add(d.story_id, art)
                out[art.id] = d.story_id
        profiles.update(m.profiles)
    return out


def build_item(article_id: int, source_id: int, language: str | None, time: datetime, title: str | None,
               description: str | None, body: str | None, cfg: StoryConfig,
               embedding: np.ndarray | None = None) -> Item:
    """An article as the matcher sees it: lexical features of title + lead, and the title and
    body term vectors (recomputed from the text: cheap, so never cached)."""
    f = features.article_features(title, description, body, cfg.feature_chars)
    return Item(article_id, source_id, language, time, title, description, body, f.terms, f.entities,
                f.numbers, embedding, features.term_vector(title), features.term_vector(body or description))
