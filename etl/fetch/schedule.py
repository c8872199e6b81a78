"""When a feed is due again. Pure functions of the poll outcome and the feed's history.

Never deactivates a feed for transient errors: it only spaces polls further apart, up to the
ceiling, and the first success resets the pace (the complaint users have about Miniflux).

A healthy feed is polled about twice per usual gap between its entries (so a new entry waits
at most about half a gap), slower when it has been silent for long, never more often than the
server or the feed asked (Cache-Control max-age, Expires, RSS <ttl>, sy:updatePeriod), and
always within the feed's [min, max] interval (defaults 5 min and 24 h).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_MIN_INTERVAL = 5 * 60.0
DEFAULT_INTERVAL = 15 * 60.0      # a feed whose rhythm we do not know yet
DEFAULT_MAX_INTERVAL = 24 * 3600.0
FLOOR_INTERVAL = 60.0             # no per-feed override goes below this
MAX_RETRY_AFTER = 24 * 3600.0     # a server cannot park a host for longer than a day
DEFAULT_RATE_LIMIT_WAIT = 10 * 60.0  # a 429 without Retry-After
ENTRY_SAMPLE = 20                 # newest dated entries used to measure a feed's rhythm

_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)
_PERIODS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0,
            "monthly": 30 * 86400.0, "yearly": 365 * 86400.0}


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def cache_hint(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds the server says the response stays fresh: Cache-Control max-age (s-maxage), else
    Expires minus the response's Date. ``no-cache``/``no-store`` mean "ask every time", which
    gives no floor at all (the feed's own rhythm decides)."""
    cc = headers.get("cache-control") or ""
    lowered = cc.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return None
    m = _MAX_AGE.search(cc)
    if m:
        return float(m.group(1))
    expires = _http_date(headers.get("expires"))
    if expires is None:
        return None
    base = _http_date(headers.get("date")) or now or datetime.now(UTC)
    secs = (expires - base).total_seconds()
    return secs if secs > 0 else None


def feed_hint(ttl_minutes: int | None, update_period: str | None,
              update_frequency: int | None) -> float | None:
    """Seconds between updates the feed itself announces: RSS <ttl> (minutes) or the
    syndication module's sy:updatePeriod / sy:updateFrequency (updates per period)."""
    hints = []
    if ttl_minutes and ttl_minutes > 0:
        hints.append(ttl_minutes * 60.0)
    period = _PERIODS.get((update_period or "").strip().lower())
    if period:
        hints.append(period / max(update_frequency or 1, 1))
    return max(hints) if hints else None


def entry_interval(dates: Iterable[datetime | None], now: datetime | None = None,
                   sample: int = ENTRY_SAMPLE) -> float | None:
    """Usual gap in seconds between a feed's entries, from the newest ``sample`` dates it lists
    (dates in the future are taken as now). None with fewer than two distinct dates."""
    now = now or datetime.now(UTC)
    known = sorted({min(d, now) for d in dates if d is not None}, reverse=True)[:sample]
    if len(known) < 2:
        return None
    span = (known[0] - known[-1]).total_seconds()
    return span / (len(known) - 1) if span > 0 else None


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now (it may be delta-seconds or an HTTP date), capped at
    24 h; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        secs = float(value)
    else:
        when = _http_date(value)
        if when is None:
            return None
        secs = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(secs, 0.0), MAX_RETRY_AFTER)


def with_jitter(seconds: float, fraction: float = 0.1, rng: random.Random | None = None) -> float:
    """Adds 0–``fraction`` of ``seconds`` (at least up to 5 s) so that feeds and workers that
    were told the same thing do not all come back in the same second."""
    spread = max(seconds * fraction, 5.0)
    return seconds + (rng or random).uniform(0.0, spread)


def bounds(min_interval: float | None, max_interval: float | None) -> tuple[float, float]:
    low = max(min_interval or DEFAULT_MIN_INTERVAL, FLOOR_INTERVAL)
    high = max(max_interval or DEFAULT_MAX_INTERVAL, low)
    return low, high


def next_poll_in(
    *,
    failed: bool,
    consecutive_failures: int,
    min_interval: float | None = None,
    max_interval: float | None = None,
    hint: float | None = None,
    entry_gap: float | None = None,
    silent_for: float | None = None,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next poll.

    ``consecutive_failures`` counts failures *before* this poll; ``hint`` is the largest of
    what the server or feed asked for (Cache-Control, Expires, <ttl>, ...), honoured within the
    bounds; ``entry_gap`` is the feed's usual gap between entries and ``silent_for`` how long
    ago its newest entry was published; ``jitter`` a fraction of random spread.
    """
    low, high = bounds(min_interval, max_interval)
    if failed:
        # 15 min, 30 min, 1 h, ... up to the ceiling; never a deactivation.
        interval = DEFAULT_INTERVAL * (2 ** min(consecutive_failures, 10))
    else:
        interval = entry_gap / 2 if entry_gap else DEFAULT_INTERVAL
        if silent_for and silent_for > 0:
            # A feed that went quiet slows down gradually instead of being polled at its old pace.
            interval = max(interval, silent_for / 4)
        interval = max(interval, hint or 0.0)
    if jitter:
        interval *= 1.0 + (rng or random).uniform(-jitter, jitter)
    return min(max(interval, low), high)


def is_stale(*, newest_entry_at: datetime | None, entry_gap: float | None,
             now: datetime | None = None, factor: float = 5.0, minimum: float = 12 * 3600.0) -> bool:
    """Nothing new for much longer than usual: silence longer than ``factor`` usual gaps (and
    never less than ``minimum``, so a busy feed's quiet night is not flagged)."""
    if newest_entry_at is None or not entry_gap:
        return False
    silent = ((now or datetime.now(UTC)) - newest_entry_at).total_seconds()
    return silent > max(factor * entry_gap, minimum)
