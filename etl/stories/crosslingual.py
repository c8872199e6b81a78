"""The hand-set similarity of an article to a story, used where the learned model is not
trusted: entity coverage, term coverage and number coverage (cosine of the article's features
against the members' counts), plus the embedding cosine with the centroid, minus a small
time-distance penalty. Across languages (no shared words) the weights drop terms and lean on
entities, numbers and the embedding; with an attribution cue the bar is lower.
"""

from __future__ import annotations

import numpy as np

from etl.config import StoryConfig
from etl.models import MatchMethod
from etl.stories.profile import Item, Profile, cosine


def score(art: Item, prof: Profile, cfg: StoryConfig) -> tuple[float, MatchMethod]:
    """(similarity, method) of an article to a story profile."""
    ent = cosine(art.entities, prof.entities)
    num = cosine(art.numbers, prof.numbers)
    emb = None
    if art.embedding is not None and prof.centroid is not None and cfg.use_embedding:
        norm = float(np.linalg.norm(prof.centroid))
        emb = float(art.embedding @ prof.centroid) / norm if norm else 0.0
    cross = bool(art.language and prof.languages and art.language not in prof.languages)
    if cross:
        we, wn, wv = cfg.cross_weights
        if emb is None:  # no encoder: entities and numbers only, rescaled
            total = (we * ent + wn * num) / (we + wn) * cfg.threshold / cfg.lexical_threshold
            lexical, semantic = total, 0.0
        else:
            lexical, semantic = we * ent + wn * num, wv * emb
            total = lexical + semantic
    else:
        we, wt, wn, wv = cfg.weights
        term = cosine(art.terms, prof.terms)
        lexical = we * ent + wt * term + wn * num
        if emb is None:
            semantic, total = 0.0, lexical / (we + wt + wn) * cfg.threshold / cfg.lexical_threshold
        else:
            semantic, total = wv * emb, lexical + wv * emb
    dt = abs((art.time - prof.last).total_seconds()) if art.time > prof.last else \
        max(0.0, (prof.first - art.time).total_seconds())
    total -= cfg.time_penalty * min(1.0, dt / (cfg.window_hours * 3600))
    if art.entities and ent < cfg.min_entity:
        total = min(total, cfg.threshold - 1e-6)  # no shared names/places: never the same event
    return total, (MatchMethod.EMBEDDING if semantic > lexical else MatchMethod.LEXICAL)
