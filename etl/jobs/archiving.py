"""The raw archive as the jobs use it: write each response to the WARC files (``etl.fetch.archive``)
and index it in PostgreSQL, so that ``reextract`` finds a page's newest copy by offset.

Never raises: losing the archive copy of a response must not lose the poll or the article. A
page that could not be written (full disk, I/O error, permissions) comes back as an
``archive_failed`` :class:`IngestError` — which page, and why — that the run records and counts
(``ingestion_runs.pages_unarchived``); the run's report logs each cause once per run
(:class:`etl.jobs.runs.ArchiveTrouble`), not once per page. The writer leaves its file readable after a failed
write and tries again on the next one, so archiving resumes by itself when space returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import Engine

from etl import store
from etl.config import Settings
from etl.fetch.archive import ArchiveWriteError, archive_fetch
from etl.fetch.http import FEED_ACCEPT, PAGE_ACCEPT
from etl.models import ArchiveKind, ArchiveRef, ArticleRecord, FetchResult, IngestError, IngestErrorKind, WorkItem

log = logging.getLogger(__name__)


def write_feed_response(settings: Settings, response: FetchResult) -> tuple[ArchiveRef | None, str | None]:
    """A feed response to WARC; indexed with the rest of its chunk by :func:`index_feeds`. A
    304 is skipped (no body; the copy archived when the feed last changed still stands).
    Returns (where it is, None) or (None, why it could not be written)."""
    if response.not_modified:
        return None, None
    try:
        return archive_fetch(settings, response, ArchiveKind.FEED, FEED_ACCEPT), None
    except ArchiveWriteError as exc:
        log.debug("feed response %s not archived: %s", response.final_url, exc)
        return None, str(exc)


def index_feeds(engine: Engine, refs: Sequence[tuple[ArchiveRef | None, int]]) -> None:
    """Indexes a chunk's feed responses, ``(ref, feed_id)`` each, in one statement."""
    try:
        store.index_archive(engine, [(ref, None, feed_id) for ref, feed_id in refs if ref is not None])
    except Exception:
        log.exception("could not index %d archived feed response(s)", len(refs))


def write_page(settings: Settings, page: FetchResult, item: WorkItem) -> tuple[ArchiveRef | None, IngestError | None]:
    """A page response to WARC, before extraction (the batch's fetch threads call it as each
    page arrives); indexed by :func:`index_pages` once its article is loaded (the index points
    at the article). Returns (where it is, None), or (None, the ``archive_failed`` error to
    record) when it could not be written."""
    try:
        return archive_fetch(settings, page, ArchiveKind.PAGE, PAGE_ACCEPT), None
    except ArchiveWriteError as exc:
        log.debug("page %s not archived: %s", page.final_url, exc)
        return None, IngestError(IngestErrorKind.ARCHIVE_FAILED, str(exc),
                                 item.entry.link, item.feed_id, item.source_id)


def index_pages(engine: Engine, refs: Sequence[ArchiveRef | None], records: Sequence[ArticleRecord]) -> None:
    try:
        store.index_archive(engine, [(ref, rec.canonical_url, None) for ref, rec in zip(refs, records, strict=True)])
    except Exception:
        log.exception("could not index %d archived page(s)", len(refs))
