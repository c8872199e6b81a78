"""What the matcher derives from a window's story profiles, kept from batch to batch: the
candidate index, the story frequencies (IDF), the stories as arrays over word columns.

A word's weight is its *story frequency* IDF in the window times its rarity in the window's
languages at large. A word most open stories share ("shooting", "police", "earthquake") says
little about which one an article belongs to, and that is exactly what separates incidents that
look alike; a word common in the language ("the", "und", "ve") says nothing even when the window
holds one story, as when a pair of articles is compared alone. The story frequencies are kept up
to date as stories open and grow; the weights derived from them are refreshed when the number of
stories has moved by 10% (so that the stories' weighted norms can be cached in between).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from etl.stories import lexicon
from etl.stories.index import CandidateIndex
from etl.stories.profile import Profile

IDF_REFRESH = 0.1  # relative change in the number of stories that refreshes the IDF weights
LEX_C = 8.0        # Zipf at which a word's background weight reaches 0 (the commonest function words)


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


EMPTY_IDX = np.zeros(0, dtype=np.intp)
EMPTY_VAL = np.zeros(0, dtype=np.float64)


def sparse(vocab: Vocabulary, vec: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(columns, values) of a word → weight mapping, in its own order."""
    if not vec:
        return EMPTY_IDX, EMPTY_VAL
    return vocab.lookup(vec), np.fromiter(vec.values(), dtype=np.float64, count=len(vec))


def micros(t: datetime) -> int:
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
class StoryArrays:
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
        self.rows: dict[int, StoryArrays] = {}
        self.idf2 = np.full(1024, np.nan)   # squared weight by word column; NaN: not weighted yet
        self.langs: tuple[str, ...] = ()    # the languages the background weights are for
        self.bg = np.full(1024, np.nan)     # squared background weight by word column
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

    def rows_of(self, p: Profile) -> StoryArrays:
        owner = _owner(p)
        r = self.rows.get(p.story_id)
        if r is not None and r.owner is owner and r.version == p.version:
            return r
        ent = sparse(self.ent, p.entities)
        num = sparse(self.num, p.numbers)
        cnorm = float(np.linalg.norm(p.centroid)) if p.centroid is not None else 0.0
        r = StoryArrays(owner, p.version, sparse(self.lex, p.title), sparse(self.lex, p.terms),
                  sparse(self.lex, p.body), ent, num,
                  math.sqrt(sum(v * v for v in p.entities.values())),
                  math.sqrt(sum(v * v for v in p.numbers.values())),
                  p.centroid, cnorm, micros(p.first), micros(p.last), math.log1p(p.member_count))
        self.rows[p.story_id] = r
        self._fit()
        return r

    def _fit(self) -> None:
        """Scratch arrays at least as long as the vocabularies."""
        n = max(len(self.lex), len(self.ent), len(self.num))
        if n > len(self.idf2):
            size = max(n, 2 * len(self.idf2))
            for name in ("idf2", "bg"):
                old = getattr(self, name)
                grown = np.full(size, np.nan)
                grown[:len(old)] = old
                setattr(self, name, grown)
            self.dense = np.zeros(size)
            self.mark = np.zeros(size)

    def use_languages(self, langs: Iterable[str]) -> None:
        """The languages of the batch and its window: a word's background weight is its
        rarity in the commonest of them (recomputed when they change)."""
        langs = tuple(sorted(set(langs)))
        if langs != self.langs:
            self.langs = langs
            self.idf2.fill(np.nan)
            self.bg.fill(np.nan)

    def background(self, word: str) -> float:
        """How much a word may count (0–1) by its frequency in the window's languages at
        large: ``max(0, LEX_C − Zipf) / LEX_C`` — "the", "und", "ve" weigh nothing in any of
        them; 1 when none of the languages has a frequency list (the stream's IDF alone)."""
        z = lexicon.stem_zipf(word, self.langs)
        return 1.0 if z is None else max(0.0, LEX_C - z) / LEX_C

    def weights(self, idx: np.ndarray) -> np.ndarray:
        """Squared weights of the word columns ``idx``: the story-frequency IDF of the window
        (:meth:`StoryFrequency.idf_of_count`) times the word's background weight
        (:meth:`background`); the columns not weighted since the last reset are weighted with
        the current frequencies."""
        self._fit()
        w = self.idf2[idx]
        miss = np.isnan(w)
        if miss.any():
            freq, words = self.freq, self.lex.words
            cols = np.unique(idx[miss])
            sf = [freq.sf.get(words[i], 0) for i in cols.tolist()]
            table = {v: freq.idf_of_count(v) ** 2 for v in set(sf)}
            bg = self.bg[cols]
            unknown = np.isnan(bg)
            if unknown.any():  # (the background weights last until the languages change)
                fresh = cols[unknown]
                self.bg[fresh] = [self.background(words[i]) ** 2 for i in fresh.tolist()]
                bg = self.bg[cols]
            self.idf2[cols] = np.array([table[v] for v in sf]) * bg
            w = self.idf2[idx]
        return w


class CandidateArrays:
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
                idx, val = EMPTY_IDX, EMPTY_VAL
            hit = self._fields[name] = (idx, val, np.repeat(np.arange(self.n), lens))
        return hit
