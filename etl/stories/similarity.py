"""How alike an article is to each of its candidate stories: the similarity features the join
decision's model reads (``etl.stories.model.FEATURES``), over every candidate at once.

Per-field TF-IDF cosines of the article's title, lead words and body against the story's
centroids (weighted by the window's story frequencies and the words' rarity in their language),
how much better this story is than the best other one, name and number overlap, the
sentence-embedding cosine, the time gap, whether the outlet already reports the story, the
story's size, and whether the story has no member in the article's language. Pure computation
over the window's arrays (:class:`~etl.stories.window.WindowState`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from etl.config import StoryConfig
from etl.stories.model import FEATURES
from etl.stories.profile import Item, Profile
from etl.stories.window import IDF_REFRESH, CandidateArrays, WindowState, micros, sparse

_LOG1P = [math.log1p(k) for k in range(256)]


def _log1p_counts(counts: np.ndarray) -> np.ndarray:
    """math.log1p of small integer counts (the same floats as the scalar code gave)."""
    return np.array([_LOG1P[k] if k < 256 else math.log1p(k) for k in counts.astype(np.int64).tolist()])


def cross_lingual(art: Item, p: Profile) -> bool:
    """Whether the story has no member in the article's language."""
    return bool(art.language and p.languages and art.language not in p.languages)


class Similarity:
    """The feature rows of an article against candidate stories, on the window state of the
    matcher that owns it (its weights follow the state's story frequencies)."""

    def __init__(self, state: WindowState, cfg: StoryConfig) -> None:
        self.state = state
        self.cfg = cfg
        self._idf_n = state.freq.n

    def features(self, art: Item, profs: Sequence[Profile]) -> np.ndarray:
        """(len(profs), len(FEATURES)) similarity features of the article to each story.

        One function per group of columns (:data:`FEATURE_GROUPS`), each over every candidate
        at once; the "gap" and count columns are derived from the others."""
        freq = self.state.freq
        if abs(freq.n - self._idf_n) > IDF_REFRESH * self._idf_n + 4:
            # the weights follow the story frequencies once the number of stories moved by
            # 10%: often while a stream starts, rarely in a full window
            self.state.reset_weights()
            self._idf_n = freq.n
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
                "cross": np.array([1.0 if cross_lingual(art, p) else 0.0 for p in cands.profs])}


FeatureGroup = Callable[[Similarity, Item, CandidateArrays], dict[str, np.ndarray]]
# every column of FEATURES but the derived ones (gaps, candidate count) comes from one of these
FEATURE_GROUPS: tuple[FeatureGroup, ...] = (
    Similarity.lexical_columns, Similarity.entity_columns, Similarity.number_columns,
    Similarity.embedding_columns, Similarity.story_columns)
_COLUMN = {name: k for k, name in enumerate(FEATURES)}
