"""When a feed is due again. Pure functions of the poll outcome and the feed's history.

Never deactivates a feed for transient errors: it only spaces polls further apart, up to the
ceiling, and the first success resets the pace (the complaint users have about Miniflux).
"""

from __future__ import annotations

DEFAULT_MIN_INTERVAL = 5 * 60.0
DEFAULT_INTERVAL = 15 * 60.0
DEFAULT_MAX_INTERVAL = 24 * 3600.0


def next_poll_in(
    *,
    failed: bool,
    consecutive_failures: int,
    min_interval: float | None = None,
    max_interval: float | None = None,
    hint: float | None = None,
) -> float:
    """Seconds until the next poll.

    ``consecutive_failures`` counts failures *before* this poll; ``hint`` is what the server or
    feed asked for (Cache-Control, <ttl>, ...), honoured within the bounds.
    """
    low = min_interval or DEFAULT_MIN_INTERVAL
    high = max(max_interval or DEFAULT_MAX_INTERVAL, low)
    if failed:
        interval = DEFAULT_INTERVAL * (2 ** min(consecutive_failures, 10))
    else:
        interval = max(DEFAULT_INTERVAL, hint or 0.0)
    return min(max(interval, low), high)
