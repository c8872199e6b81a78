"""The learned join decision's model: a standardized logistic regression over named similarity
features, fitted on the dev sets (``bench/train_stories.py``; weights, command, data hashes and
cross-validated scores in ``join_model.json``), scored with numpy at run time (scikit-learn is a
development dependency only).

Two models ship: one with the embedding feature, one without it (the lexical fallback for
articles without an embedding: the encoder turned off with ``NEWSETL_STORY_EMBEDDING=0``, or not
importable).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from etl.stories.profile import Item

FEATURES = ("title_cos", "lead_cos", "body_cos", "body_gap", "entity_cos", "entity_shared",
            "number_cos", "embedding_cos", "time_gap", "same_outlet", "log_members", "title_gap",
            "entity_gap", "candidates", "cross", "embedding_gap")
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
    """The models of a decision: ``embedding`` (the usual one), ``lexical`` (for an article
    without an embedding), and ``sparse`` (when the window holds nothing but the one candidate
    story: a quiet stream's start, two articles alone). There the window's own statistics say
    nothing — every word has the same story frequency, no other story competes — so the
    decision leans on what needs no window: the embedding, the words' rarity in their
    language, names and numbers; it is fitted on pairs of articles rated by people."""

    embedding: JoinModel
    lexical: JoinModel
    version: str
    sparse: JoinModel | None = None

    def for_item(self, art: Item, alone: bool = False) -> JoinModel:
        if art.embedding is None:
            return self.lexical
        return self.sparse if alone and self.sparse is not None else self.embedding


def parse_models(doc: Mapping) -> JoinModels:
    ms = doc["models"]
    return JoinModels(JoinModel.from_dict(ms["embedding"]), JoinModel.from_dict(ms["lexical"]), str(doc["version"]),
                      JoinModel.from_dict(ms["sparse"]) if ms.get("sparse") else None)


@functools.cache
def load_models(path: str | None = None) -> JoinModels:
    """The shipped weights (``etl/stories/join_model.json``), or the file at ``path``."""
    file = Path(__file__).with_name(MODEL_FILE) if path is None else Path(path)
    return parse_models(json.loads(file.read_text(encoding="utf-8")))
