"""Stage 4, stories (after load): near-duplicates (``dedup``), attribution cues
(``attribution``), article features and the sentence encoder (``features``), the similarity of
an article to a story (``scoring``) and the assignment itself (``assign``).

Callers say ``stories.assign(engine, ids, settings.stories)``.
"""

from etl.stories.assign import assign, assign_pending, recluster

__all__ = ["assign", "assign_pending", "recluster"]
