"""Backfills: load a past date range from sitemaps, a URL list or WARC files. ``plan`` decides
what to load in which window; ``run`` loads the windows with checkpoints."""

from etl.jobs.backfill.plan import (
    MODES,
    UNDATED,
    BackfillError,
    BackfillSpec,
    Candidate,
    Plan,
    SourceInfo,
    SourceMatcher,
    Window,
    make_windows,
    plan_backfill,
    plan_urls,
    resolve_sources,
)
from etl.jobs.backfill.run import (
    BackfillResult,
    Progress,
    WindowResult,
    pending_windows,
    prepare,
    run_backfill,
    run_window,
)

__all__ = [
    "MODES", "UNDATED", "BackfillError", "BackfillResult", "BackfillSpec", "Candidate", "Plan", "Progress",
    "SourceInfo", "SourceMatcher", "Window", "WindowResult", "make_windows", "pending_windows",
    "plan_backfill", "plan_urls", "prepare", "resolve_sources", "run_backfill", "run_window",
]
