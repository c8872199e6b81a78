"""Near-duplicate detection: MinHash over word shingles, LSH bands stored in PostgreSQL.

Exact duplicates never reach this stage (the load path in ``etl.store`` turns them into an
extra URL and feed reference). Here we catch the same text republished with edits, wire copy
on several sites, and truncated copies:

* two signatures per article, each cut into 25 bands of 5 rows (threshold ≈ (1/25)^(1/5) ≈ 0.5,
  which the design notes measured at ~99.8% recall for 5% word edits): one over the whole
  body, one over its first 60 words. A truncated copy shares the *lead* signature even when its
  Jaccard with the full text is far below 0.5 — truncation needs containment, not Jaccard;
* the bands are stored (``article_lsh``, indexed on (band, hash), in PostgreSQL): a candidate
  lookup is 50 index probes, whatever the size of the warehouse, and never loads other
  articles' text except the few candidates to confirm;
* candidates are confirmed on exact shingle sets: Jaccard ≥ 0.5, or containment of the shorter
  in the longer ≥ 0.8 (truncation, a paragraph added on update).
"""

from __future__ import annotations

import functools
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from datasketch import MinHash

from etl.stories.features import shingles, words

NUM_PERM = 128
BANDS = 25
ROWS = 5
SHINGLE = 4
LEAD_WORDS = 60
MIN_WORDS = 30            # shorter bodies (teasers) are not compared: too little text to call a copy
JACCARD_MIN = 0.5
CONTAINMENT_MIN = 0.8
MAX_CANDIDATES = 20       # by number of colliding bands; a real copy collides on many
SEED = 1                  # fixed: band hashes must mean the same thing in every process, forever


def _band_hashes(sig: np.ndarray, offset: int) -> list[tuple[int, int]]:
    out = []
    for b in range(BANDS):
        chunk = sig[b * ROWS:(b + 1) * ROWS].astype("<u4").tobytes()
        h = struct.unpack("<q", hashlib.blake2b(chunk, digest_size=8).digest())[0]
        out.append((offset + b, h))
    return out


@functools.cache
def _permutations() -> tuple[Any, Any]:
    """The seed's permutation parameters (and hashing scheme), drawn once per process (drawing
    them was a third of the cost of a signature): the same values MinHash(seed=SEED) draws."""
    m = MinHash(num_perm=NUM_PERM, seed=SEED)
    return m.permutations, m.scheme


def signature(shingle_set: set[str]) -> np.ndarray:
    perms, scheme = _permutations()
    m = MinHash(num_perm=NUM_PERM, seed=SEED, permutations=perms, scheme=scheme)
    m.update_batch([s.encode("utf-8") for s in sorted(shingle_set)])
    return m.hashvalues


def bands_for(body: str | None) -> list[tuple[int, int]]:
    """(band, hash) rows of an article: bands 0–24 over the whole body, 25–49 over its lead.
    Empty for bodies under MIN_WORDS."""
    toks = words(body or "")
    if len(toks) < MIN_WORDS:
        return []
    full = shingles(body, SHINGLE)
    lead = shingles(" ".join(toks[:LEAD_WORDS]), SHINGLE)
    return _band_hashes(signature(full), 0) + _band_hashes(signature(lead), BANDS)


def similarity(a: set[str], b: set[str]) -> tuple[float, float]:
    """(Jaccard, containment of the smaller set in the larger)."""
    if not a or not b:
        return 0.0, 0.0
    inter = len(a & b)
    return inter / len(a | b), inter / min(len(a), len(b))


@dataclass(frozen=True)
class NearDuplicate:
    original_id: int   # the earliest stored article of the family (never itself a copy)
    original_time: datetime
    matched_id: int    # the stored article that the text matched
    jaccard: float
    containment: float

    @property
    def score(self) -> float:
        return max(self.jaccard, self.containment)


@dataclass(frozen=True)
class Family:
    """Stored articles that collide with a new one on MinHash bands, grouped by the original
    they are copies of (the root: itself when it is no copy)."""

    root: int
    root_time: datetime
    ids: tuple[int, ...]       # the candidates of this family, by id
    first_body: str | None     # the body of ids[0]


class Copies(Protocol):
    """What :func:`confirm` reads: the stored candidates' families and bodies."""

    def families(self, ids: Sequence[int]) -> list[Family]: ...

    def bodies(self, ids: Sequence[int]) -> list[tuple[int, str | None]]: ...


def confirm(copies: Copies, body: str | None, candidate_ids: Sequence[int]) -> NearDuplicate | None:
    """The earliest original among the candidates (by colliding bands) that the body is a
    near-copy of, on exact shingle sets: of the earliest family with a confirming candidate,
    the first such candidate by id.

    Families are tried earliest first, each with its first candidate's body; the family's other
    candidates are read only when that one does not confirm. The answer is the one comparing
    every candidate would give, but a copy of a story many outlets carry reads and shingles one
    body rather than up to MAX_CANDIDATES of them (the e2e bench's 10,000 pages, ~55 copies of
    each text, made this the story stage's growing cost)."""
    if not candidate_ids:
        return None
    families = copies.families(candidate_ids)
    mine = shingles(body, SHINGLE)

    def copy_of(other_id: int, other_body: str | None, fam: Family) -> NearDuplicate | None:
        jac, cont = similarity(mine, shingles(other_body, SHINGLE))
        if jac >= JACCARD_MIN or cont >= CONTAINMENT_MIN:
            return NearDuplicate(fam.root, fam.root_time, other_id, jac, cont)
        return None

    for fam in families:
        found = copy_of(fam.ids[0], fam.first_body, fam)
        if found is None and len(fam.ids) > 1:
            for cid, cbody in copies.bodies(fam.ids[1:]):
                found = copy_of(cid, cbody, fam)
                if found is not None:
                    break
        if found is not None:
            return found
    return None


class BatchProbe:
    """The band collisions of a batch's articles, in processing order, with one statement for
    the stored articles (:meth:`load`) and the batch's own earlier articles in memory: the same
    candidates as probing and storing article by article, without a statement per article.
    The batch's bands (``bands``) are stored with the batch."""

    def __init__(self) -> None:
        self.stored: dict[int, list[tuple[int, int]]] = {}   # article -> [(stored article, hits)]
        self.seen: dict[tuple[int, int], list[int]] = {}     # (band, hash) -> earlier batch articles
        self.bands: list[tuple[int, list[tuple[int, int]]]] = []

    def load(self, stored: dict[int, list[tuple[int, int]]]) -> None:
        """The stored articles each of the batch's articles collides with (one lookup for the
        whole batch: ``StoryRepository.band_hits``)."""
        self.stored = stored

    def candidates(self, article_id: int, bands: Sequence[tuple[int, int]]) -> list[int]:
        """Up to MAX_CANDIDATES articles sharing bands with this one, most shared first (then by
        id), among the stored ones and the batch's articles probed before it; then the
        article's bands count for the articles after it."""
        hits: dict[int, int] = dict(self.stored.get(article_id, ()))
        for key in bands:
            for other in self.seen.get(key, ()):
                if other != article_id:
                    hits[other] = hits.get(other, 0) + 1
        for key in bands:
            self.seen.setdefault(key, []).append(article_id)
        if bands:
            self.bands.append((article_id, list(bands)))
        return [a for a, _ in sorted(hits.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]]
