"""Stage 4, stories (after load): near-duplicates (``dedup``), attribution cues
(``attribution``), article features and the sentence encoder (``features``), the join decision
(``profile``, ``index``, ``model``, ``window``, ``reach``, ``matcher``), the one engine that
places articles into stories (``engine``) over a repository (``repository``: ``postgres`` for
the pipeline, ``memory`` for the dev sets), and the stage as the pipeline runs it (``assign``).

Callers say ``stories.assign(engine, ids, settings.stories)``, or hold a
``stories.StoryStage`` for a run.
"""

from etl.stories.assign import StoryStage, assign, assign_pending, recluster

__all__ = ["StoryStage", "assign", "assign_pending", "recluster"]
