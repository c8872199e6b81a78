"""The raw archive as the jobs use it: write each response to the WARC files (``etl.fetch.archive``)
and index it in PostgreSQL, so that ``reextract`` finds a page's newest copy by offset.

Never raises: losing the archive copy of a response must not lose the poll or the article.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from etl import store
from etl.config import Settings
from etl.fetch.archive import archive_fetch
from etl.fetch.http import FEED_ACCEPT, PAGE_ACCEPT
from etl.models import ArchiveKind, ArchiveRef, ArticleRecord, FetchResult

log = logging.getLogger(__name__)


def write_feed_response(settings: Settings, response: FetchResult) -> ArchiveRef | None:
    """A feed response to WARC; indexed with the rest of its chunk by :func:`index_feeds`. A
    304 is skipped (no body; the copy archived when the feed last changed still stands)."""
    if response.not_modified:
        return None
    return archive_fetch(settings, response, ArchiveKind.FEED, FEED_ACCEPT)


def index_feeds(engine: Engine, refs: Sequence[tuple[ArchiveRef | None, int]]) -> None:
    """Indexes a chunk's feed responses, ``(ref, feed_id)`` each, in one statement."""
    try:
        store.index_archive(engine, [(ref, None, feed_id) for ref, feed_id in refs if ref is not None])
    except Exception:
        log.exception("could not index %d archived feed response(s)", len(refs))


def write_page(settings: Settings, page: FetchResult) -> ArchiveRef | None:
    """A page response to WARC, before extraction (the batch's fetch threads call it as each
    page arrives); indexed by :func:`index_pages` once its article is loaded (the index points
    at the article)."""
    return archive_fetch(settings, page, ArchiveKind.PAGE, PAGE_ACCEPT)


def index_pages(engine: Engine, refs: Sequence[ArchiveRef | None], records: Sequence[ArticleRecord]) -> None:
    try:
        store.index_archive(engine, [(ref, rec.canonical_url, None) for ref, rec in zip(refs, records, strict=True)])
    except Exception:
        log.exception("could not index %d archived page(s)", len(refs))
