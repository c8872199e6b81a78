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
from datetime import UTC, datetime, timedelta
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

    def __init__(self, profiles: Iterable[Profile] = ()) -> None:
        self.n = 0
        self.sf: Counter = Counter()
        self.keys: dict[int, set[str]] = {}
        # how many times each story was counted in n (once, but for the quirk in update)
        self.counted: Counter = Counter()
        for p in profiles:
            self.update(p)

    def remove(self, story_id: int) -> None:
        """A story merged away (a story without words stays counted in n: that quirk is
        kept, so that the decisions do not move; :meth:`forget` uncounts it)."""
        keys = self.keys.pop(story_id, None)
        if keys is not None:
            self.n -= 1
            self.sf.subtract(keys)
            self.counted[story_id] -= 1
            if self.counted[story_id] <= 0:
                del self.counted[story_id]

    def forget(self, story_id: int) -> None:
        """Takes a story out completely (it left the window, or changed and is counted again):
        afterwards the counts are those of a fresh count over the other stories."""
        keys = self.keys.pop(story_id, None)
        if keys is not None:
            self.sf.subtract(keys)
        self.n -= self.counted.pop(story_id, 0)

    def update(self, p: Profile) -> None:
        new = set(p.title)
        new.update(p.body, p.terms)
        old = self.keys.get(p.story_id)
        if old is None:  # a story not counted yet (every story of a freshly loaded window)
            self.n += 1
            self.counted[p.story_id] += 1
            if new:  # (a story without words stays uncounted in keys, as it always was)
                self.sf.update(new)
                self.keys[p.story_id] = new
            return
        added = new - old
        if added:
            self.sf.update(added)
            self.keys[p.story_id] = old | added

    def idf_of_count(self, count: int) -> float:
        """Smooth IDF of a word that ``count`` of the counted stories hold."""
        return math.log((1 + self.n) / (1 + count)) + 1.0


class Vocabulary:
    """Word → column number: the story centroids and article vectors as index arrays, so that
    the cosines are array operations. Grows only (columns must keep their meaning)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = []

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, keys: Iterable[str]) -> np.ndarray:
        ids, words = self.ids, self.words
        try:  # (every word known: the usual case, with the loop in C)
            return np.array(list(map(ids.__getitem__, keys)), dtype=np.intp)
        except KeyError:
            pass
        out = []
        for k in keys:
            i = ids.get(k)
            if i is None:
                i = ids[k] = len(words)
                words.append(k)
            out.append(i)
        return np.array(out, dtype=np.intp)


_EMPTY_IDX = np.zeros(0, dtype=np.intp)
_EMPTY_VAL = np.zeros(0, dtype=np.float64)


def _sparse(vocab: Vocabulary, vec: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of a word → weight mapping, in its own order."""
    if not vec:
        return _EMPTY_IDX, _EMPTY_VAL
    return vocab.lookup(vec), np.fromiter(vec.values(), dtype=np.float64, count=len(vec))


def _micros(t: datetime) -> int:
    """A time as integer microseconds: time differences then divide exactly as
    ``timedelta.total_seconds()`` does."""
    epoch = _EPOCH if t.tzinfo is not None else _EPOCH_NAIVE
    return (t - epoch) // _US


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)


def _owner(p: Profile) -> object:
    """What a profile's derived data (index keys, arrays) can be keyed on: the decoded row it
    was built from while unchanged (each batch builds new Profile objects from the same shared
    rows), else the profile object itself."""
    return p.origin if p.origin is not None and p.version == 0 else p


@dataclass
class _Rows:
    """A story profile as arrays, for one (owner, version) of it."""

    owner: object
    version: int
    title: tuple[np.ndarray, np.ndarray]
    terms: tuple[np.ndarray, np.ndarray]
    body: tuple[np.ndarray, np.ndarray]
    entities: tuple[np.ndarray, np.ndarray]
    numbers: tuple[np.ndarray, np.ndarray]
    entity_norm: float
    number_norm: float
    centroid: np.ndarray | None
    centroid_norm: float
    first_us: int
    last_us: int
    log_members: float


class WindowState:
    """What the matcher derives from a window's profiles — the candidate index, the story
    frequencies, each story's arrays, the IDF weights — kept from one batch to the next in a
    process: consecutive batches share almost all their stories, and rebuilding it every batch
    was a tenth of the stage's CPU. :meth:`sync` brings it to exactly what a fresh build over
    the new window would be (stories that left or changed are taken out, new ones counted);
    any change made through a :class:`Matcher` marks the story to be recounted at the next
    sync, so a batch that rolled back leaves nothing behind."""

    VOCAB_LIMIT = 500_000  # words (~75 MB with the arrays); beyond it the state starts over

    def __init__(self) -> None:
        self.index = CandidateIndex()
        self.freq = StoryFrequency()
        self.lex = Vocabulary()      # title, lead and body words (one IDF over the three fields)
        self.ent = Vocabulary()
        self.num = Vocabulary()
        # story id -> (owner, version) its index keys and frequencies were counted from;
        # None: changed since (by the matcher), to be recounted
        self.synced: dict[int, tuple[object, int] | None] = {}
        self.rows: dict[int, _Rows] = {}
        self.idf2 = np.full(1024, np.nan)   # IDF² by word column; NaN: not weighted yet
        self.dense = np.zeros(1024)         # scratch: one article field, scattered by column
        self.mark = np.zeros(1024)          # scratch: an article's entities / numbers

    def too_big(self) -> bool:
        return len(self.lex) + len(self.ent) + len(self.num) > self.VOCAB_LIMIT

    def sync(self, profiles: Mapping[int, Profile]) -> None:
        for sid, rec in list(self.synced.items()):
            p = profiles.get(sid)
            if p is None or rec is None or rec[0] is not _owner(p) or rec[1] != p.version:
                self.forget(sid)
        for sid, p in profiles.items():
            if sid not in self.synced:
                self.index.add(p)
                self.freq.update(p)
                self.synced[sid] = (_owner(p), p.version)
        for sid in [s for s in self.rows if s not in profiles]:
            del self.rows[sid]

    def forget(self, story_id: int) -> None:
        self.index.remove(story_id)
        self.freq.forget(story_id)
        self.synced.pop(story_id, None)

    def changed(self, story_id: int) -> None:
        self.synced[story_id] = None

    def reset_weights(self) -> None:
        """The IDF weights are recomputed (lazily, from the frequencies at first use) from here."""
        self.idf2.fill(np.nan)

    def rows_of(self, p: Profile) -> _Rows:
        owner = _owner(p)
        r = self.rows.get(p.story_id)
        if r is not None and r.owner is owner and r.version == p.version:
            return r
        ent = _sparse(self.ent, p.entities)
        num = _sparse(self.num, p.numbers)
        cnorm = float(np.linalg.norm(p.centroid)) if p.centroid is not None else 0.0
        r = _Rows(owner, p.version, _sparse(self.lex, p.title), _sparse(self.lex, p.terms),
                  _sparse(self.lex, p.body), ent, num,
                  math.sqrt(sum(v * v for v in p.entities.values())),
                  math.sqrt(sum(v * v for v in p.numbers.values())),
                  p.centroid, cnorm, _micros(p.first), _micros(p.last), math.log1p(p.member_count))
        self.rows[p.story_id] = r
        self._fit()
        return r

    def _fit(self) -> None:
        """Scratch arrays at least as long as the vocabularies."""
        n = max(len(self.lex), len(self.ent), len(self.num))
        if n > len(self.idf2):
            size = max(n, 2 * len(self.idf2))
            idf2 = np.full(size, np.nan)
            idf2[:len(self.idf2)] = self.idf2
            self.idf2 = idf2
            self.dense = np.zeros(size)
            self.mark = np.zeros(size)

    def weights(self, idx: np.ndarray) -> np.ndarray:
        """IDF² of the word columns ``idx``; the ones not weighted since the last reset get the
        current frequencies' weight (:meth:`StoryFrequency.idf_of_count`, squared)."""
        self._fit()
        w = self.idf2[idx]
        miss = np.isnan(w)
        if miss.any():
            freq, words = self.freq, self.lex.words
            cols = np.unique(idx[miss])
            sf = [freq.sf.get(words[i], 0) for i in cols.tolist()]
            table = {v: freq.idf_of_count(v) ** 2 for v in set(sf)}
            self.idf2[cols] = [table[v] for v in sf]
            w = self.idf2[idx]
        return w


class _Candidates:
    """The candidate stories of one comparison as concatenated arrays, field by field."""

    def __init__(self, state: WindowState, profs: Sequence[Profile]) -> None:
        self.profs = profs
        self.rows = [state.rows_of(p) for p in profs]
        self.n = len(profs)
        self._fields: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def field(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(columns, values, row of each entry) of one field over every candidate."""
        hit = self._fields.get(name)
        if hit is None:
            parts = [getattr(r, name) for r in self.rows]
            lens = np.fromiter((len(i) for i, _ in parts), dtype=np.intp, count=self.n)
            if self.n and lens.any():
                idx = np.concatenate([i for i, _ in parts])
                val = np.concatenate([v for _, v in parts])
            else:
                idx, val = _EMPTY_IDX, _EMPTY_VAL
            hit = self._fields[name] = (idx, val, np.repeat(np.arange(self.n), lens))
        return hit


_LOG1P = [math.log1p(k) for k in range(256)]


def _log1p_counts(counts: np.ndarray) -> np.ndarray:
    """math.log1p of small integer counts (the same floats as the scalar code gave)."""
    return np.array([_LOG1P[k] if k < 256 else math.log1p(k) for k in counts.astype(np.int64).tolist()])


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


class Matcher:
    """The stories of a window as the join decision sees them: profiles, the candidate index
    and story frequencies, kept current as articles are added. Pure computation; the database
    side (``etl.stories.assign``) loads the profiles and saves what changed.

    ``state`` carries the index, the frequencies and the stories' arrays over from the
    previous batch's matcher (see :class:`WindowState`); a matcher without one builds them.
    ``reach``: the batch's long reach (:class:`Reach`), if any."""

    def __init__(self, profiles: dict[int, Profile], cfg: StoryConfig, models: JoinModels | None = None,
                 reach: Reach | None = None, state: WindowState | None = None) -> None:
        self.profiles = profiles
        self.reach = reach
        self.cfg = cfg
        self.models = models if models is not None else load_models()
        if state is None:
            state = WindowState()
        elif state.too_big():
            state.__init__()  # type: ignore[misc]  # start over, in place (the caller keeps it)
        state.sync(profiles)
        state.reset_weights()  # each batch weighs with its own window's frequencies
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
        cands = _Candidates(self.state, profs)
        for group in FEATURE_GROUPS:
            for name, column in group(self, art, cands).items():
                x[:, _COLUMN[name]] = column
        x[:, _COLUMN["body_gap"]] = x[:, _COLUMN["body_cos"]] - x[:, _COLUMN["body_cos"]].max()
        x[:, _COLUMN["title_gap"]] = x[:, _COLUMN["title_cos"]] - x[:, _COLUMN["title_cos"]].max()
        x[:, _COLUMN["entity_gap"]] = x[:, _COLUMN["entity_cos"]] - x[:, _COLUMN["entity_cos"]].max()
        x[:, _COLUMN["candidates"]] = math.log1p(len(profs))
        return x

    def _weighted_cos(self, vec: Mapping[str, float], cands: _Candidates, field: str) -> np.ndarray:
        """IDF²-weighted cosine of an article vector with one centroid field of every candidate:
        Σ a·c·w / √(Σ a²w · Σ c²w). A centroid's words are weighted when it first shares a
        word with an article (as the scalar code did, so the same weights)."""
        out = np.zeros(cands.n)
        if not vec:
            return out
        st = self.state
        a_idx, a_val = _sparse(st.lex, vec)
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

    def _count_cos(self, feats: Sequence[str], cands: _Candidates, field: str) -> tuple[np.ndarray, np.ndarray]:
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

    def lexical_columns(self, art: Item, cands: _Candidates) -> dict[str, np.ndarray]:
        return {"title_cos": self._weighted_cos(art.title_vec, cands, "title"),
                "lead_cos": self._weighted_cos(dict.fromkeys(art.terms, 1.0), cands, "terms"),
                "body_cos": self._weighted_cos(art.body_vec, cands, "body")}

    def entity_columns(self, art: Item, cands: _Candidates) -> dict[str, np.ndarray]:
        cos, shared = self._count_cos(art.entities, cands, "entities")
        return {"entity_cos": cos, "entity_shared": _log1p_counts(shared)}

    def number_columns(self, art: Item, cands: _Candidates) -> dict[str, np.ndarray]:
        return {"number_cos": self._count_cos(art.numbers, cands, "numbers")[0]}

    def embedding_columns(self, art: Item, cands: _Candidates) -> dict[str, np.ndarray]:
        out = np.zeros(cands.n)
        if art.embedding is not None:
            have = [i for i, r in enumerate(cands.rows) if r.centroid is not None and r.centroid_norm]
            if have:
                rows = [cands.rows[i] for i in have]
                dots = np.stack([r.centroid for r in rows]) @ art.embedding  # type: ignore[misc]
                out[have] = dots.astype(np.float64) / np.array([r.centroid_norm for r in rows])
        return {"embedding_cos": out}

    def story_columns(self, art: Item, cands: _Candidates) -> dict[str, np.ndarray]:
        """Time gap (fraction of the window, capped at 1.5), same outlet, log members."""
        t = _micros(art.time)
        first = np.array([r.first_us for r in cands.rows], dtype=np.int64)
        last = np.array([r.last_us for r in cands.rows], dtype=np.int64)
        gap = np.where(t > last, t - last, np.maximum(first - t, 0)) / 1e6
        window_s = self.cfg.window_hours * 3600
        return {"time_gap": np.minimum(gap / window_s, 1.5),
                "same_outlet": np.array([1.0 if art.source_id in p.source_ids else 0.0 for p in cands.profs]),
                "log_members": np.array([r.log_members for r in cands.rows])}

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
        self.state.changed(gone)
        self.state.changed(into)
        return gone, into

FeatureGroup = Callable[[Matcher, Item, _Candidates], dict[str, np.ndarray]]
# every column of FEATURES but the derived ones (gaps, candidate count) comes from one of these
FEATURE_GROUPS: tuple[FeatureGroup, ...] = (
    Matcher.lexical_columns, Matcher.entity_columns, Matcher.number_columns, Matcher.embedding_columns,
    Matcher.story_columns)
_COLUMN = {name: k for k, name in enumerate(FEATURES)}


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
    state = WindowState()  # carried from batch to batch, as etl.stories.assign does
    for start in range(0, len(items), batch):
        chunk = items[start:start + batch]
        lo, hi = chunk[0].time - window, chunk[-1].time + window
        held = {k: p for k, p in profiles.items() if p.last >= lo and p.first <= hi}
        m = Matcher(held, cfg, models, reach=reach_pool(profiles, lo, held, cfg), state=state)
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
