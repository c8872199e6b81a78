"""Stage 4, stories (after load): near-duplicates, attribution cues and cross-outlet,
cross-language story clustering."""

from etl.stories.assign import (
    AssignCounts,
    Item,
    Profile,
    StoryConfig,
    assign,
    assign_pending,
    recluster,
    record_run_counts,
    score,
)

__all__ = ["AssignCounts", "Item", "Profile", "StoryConfig", "assign", "assign_pending", "recluster",
           "record_run_counts", "score"]
