"""Which stories are worth scoring for an article: an inverted index from names, numbers and
content words to the stories of the loaded window (an embedding alone never makes a story a
candidate: the design notes found it must be combined with overlap). Pure computation.
"""

from __future__ import annotations

from collections import Counter

from etl.stories.profile import Item, Profile


class CandidateIndex:
    """Feature → stories of the loaded window, so that an article is scored only against
    stories that share a named entity, a number or two content words with it (an embedding
    alone never makes a story: the design notes found it must be combined with overlap)."""

    def __init__(self) -> None:
        self.entities: dict[str, set[int]] = {}
        self.terms: dict[str, set[int]] = {}
        # the keys each story was listed under, so that it can be taken out again
        self.keys: dict[int, tuple[set[str], set[str]]] = {}

    def add(self, p: Profile, art: Item | None = None) -> None:
        ents = list(art.entities) + list(art.numbers) if art else list(p.entities) + list(p.numbers)
        terms = art.terms if art else list(p.terms)
        sid = p.story_id
        mine = self.keys.get(sid)
        if mine is None:
            mine = self.keys[sid] = (set(), set())
        mine[0].update(ents)
        mine[1].update(terms)
        for index, keys in ((self.entities, ents), (self.terms, terms)):
            for k in keys:  # (no throwaway set per key, as setdefault(k, set()) makes)
                held = index.get(k)
                if held is None:
                    index[k] = {sid}
                else:
                    held.add(sid)

    def remove(self, story_id: int) -> None:
        """Takes a story out of the index (it left the window, or changed and is listed again)."""
        mine = self.keys.pop(story_id, None)
        if mine is None:
            return
        for index, keys in ((self.entities, mine[0]), (self.terms, mine[1])):
            for k in keys:
                held = index.get(k)
                if held is not None:
                    held.discard(story_id)
                    if not held:
                        del index[k]


def candidate_hits(art: Item, inv: CandidateIndex) -> dict[int, int]:
    """Stories sharing an entity or number, or two content words, with the article, each with
    how much it shares: names and numbers count twice, content words once (a story merged
    away may still be listed: callers skip ids they no longer hold)."""
    hits: Counter = Counter()
    for e in set(art.entities) | set(art.numbers):
        hits.update(inv.entities.get(e, ()))
    named = set(hits)
    for sid in named:
        hits[sid] *= 2
    words: Counter = Counter()
    for t in art.terms:
        words.update(inv.terms.get(t, ()))
    for sid, n in words.items():
        if n >= 2 or sid in named:
            hits[sid] += n
    return dict(hits)

