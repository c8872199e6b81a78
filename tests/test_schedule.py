"""The schedule: pure functions of what the server, the feed and its history say."""

from datetime import UTC, datetime, timedelta

import pytest

from etl.fetch import schedule as s

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_cache_control_and_expires_hints() -> None:
    assert s.cache_hint({"cache-control": "public, max-age=1800"}) == 1800
    assert s.cache_hint({"cache-control": "s-maxage=600, max-age=60"}) == 600
    assert s.cache_hint({"cache-control": "no-cache, max-age=600"}) is None
    assert s.cache_hint({"expires": "Fri, 20 Nov 2026 13:00:00 GMT",
                         "date": "Fri, 20 Nov 2026 12:00:00 GMT"}) == 3600
    assert s.cache_hint({"expires": "0"}) is None          # "already expired" in the wild
    assert s.cache_hint({"expires": "Thu, 01 Jan 1970 00:00:00 GMT"}) is None
    assert s.cache_hint({}) is None


def test_feed_hints_ttl_and_syndication_module() -> None:
    assert s.feed_hint(30, None, None) == 1800
    assert s.feed_hint(None, "hourly", 2) == 1800
    assert s.feed_hint(None, "daily", None) == 86400
    assert s.feed_hint(10, "hourly", 1) == 3600            # the larger request wins
    assert s.feed_hint(None, "fortnightly", 1) is None
    assert s.feed_hint(0, None, None) is None


def test_entry_interval_from_dates() -> None:
    dates = [NOW - timedelta(hours=h) for h in range(0, 10)]  # one entry an hour
    assert s.entry_interval(dates, NOW) == pytest.approx(3600)
    assert s.entry_interval([NOW, None], NOW) is None
    # a future-dated entry counts as now, not as a negative gap
    assert s.entry_interval([NOW + timedelta(days=3), NOW - timedelta(hours=2)], NOW) == pytest.approx(7200)
    # only the newest 20 count: an ancient entry at the end does not drag the rhythm
    many = [NOW - timedelta(minutes=10 * i) for i in range(20)] + [NOW - timedelta(days=300)]
    assert s.entry_interval(many, NOW) == pytest.approx(600)


def test_retry_after_seconds_date_and_cap() -> None:
    assert s.retry_after("120") == 120
    assert s.retry_after("Fri, 20 Nov 2026 12:30:00 GMT", NOW) == 1800
    assert s.retry_after("Fri, 20 Nov 2026 11:00:00 GMT", NOW) == 0     # in the past
    assert s.retry_after(str(7 * 86400)) == s.MAX_RETRY_AFTER            # capped at 24 h
    assert s.retry_after("soon") is None and s.retry_after(None) is None


def test_rhythm_hints_and_bounds() -> None:
    # busy feed: twice per gap, but never below the floor
    assert s.next_poll_in(failed=False, consecutive_failures=0, entry_gap=3600) == 1800
    assert s.next_poll_in(failed=False, consecutive_failures=0, entry_gap=60) == s.DEFAULT_MIN_INTERVAL
    # the server's max-age is a floor
    assert s.next_poll_in(failed=False, consecutive_failures=0, entry_gap=600, hint=7200) == 7200
    # a feed silent for 8 days slows down to the ceiling; a per-feed ceiling wins
    assert s.next_poll_in(failed=False, consecutive_failures=0, entry_gap=600,
                          silent_for=8 * 86400) == s.DEFAULT_MAX_INTERVAL
    assert s.next_poll_in(failed=False, consecutive_failures=0, entry_gap=600, silent_for=8 * 86400,
                          max_interval=3600) == 3600
    # per-feed floor
    assert s.next_poll_in(failed=False, consecutive_failures=0, entry_gap=600, min_interval=1200) == 1200
    # unknown rhythm
    assert s.next_poll_in(failed=False, consecutive_failures=0) == s.DEFAULT_INTERVAL


def test_failures_back_off_capped_and_never_stop() -> None:
    waits = [s.next_poll_in(failed=True, consecutive_failures=n) for n in range(12)]
    assert waits[0] == s.DEFAULT_INTERVAL and waits[1] == 2 * s.DEFAULT_INTERVAL
    assert waits == sorted(waits) and max(waits) == s.DEFAULT_MAX_INTERVAL
    assert s.next_poll_in(failed=True, consecutive_failures=1000) == s.DEFAULT_MAX_INTERVAL


def test_jitter_stays_within_bounds() -> None:
    import random

    rng = random.Random(1)
    values = {s.next_poll_in(failed=False, consecutive_failures=0, entry_gap=7200, jitter=0.1, rng=rng)
              for _ in range(50)}
    assert len(values) > 1 and all(3240 <= v <= 3960 for v in values)
    assert 100 <= s.with_jitter(100, rng=rng) <= 110


def test_stale_flag() -> None:
    assert s.is_stale(newest_entry_at=NOW - timedelta(days=3), entry_gap=3600, now=NOW)
    assert not s.is_stale(newest_entry_at=NOW - timedelta(hours=6), entry_gap=3600, now=NOW)
    assert not s.is_stale(newest_entry_at=NOW - timedelta(days=3), entry_gap=86400, now=NOW)
    assert not s.is_stale(newest_entry_at=None, entry_gap=3600, now=NOW)
