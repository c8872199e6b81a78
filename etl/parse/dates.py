"""Dates as sources write them (ISO 8601, RFC 822, naive or not) → aware UTC datetimes. Shared
by sitemaps and normalization, so that a sitemap's ``<lastmod>`` and a page's date are read the
same way."""

from __future__ import annotations

from datetime import UTC, datetime

from dateutil import parser as dateparser


def to_utc(value: str | datetime | None) -> datetime | None:
    """Parses a date or datetime; naive values are taken as UTC (the convention of feeds)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = dateparser.isoparse(value)
        except (ValueError, OverflowError):
            try:
                dt = dateparser.parse(value)
            except (ValueError, OverflowError):
                return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def date_has_time(value: str | None) -> bool:
    """htmldate renders a date-only page as midnight with no offset; anything else has a time."""
    if not value:
        return False
    return not (len(value) <= 10 or (value[10:] in ("T00:00:00", " 00:00:00")))
