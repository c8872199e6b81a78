"""Re-run extraction from the raw archive, with no network (e.g. after a trafilatura upgrade).

For each selected article, the newest archived page response is read back by its index entry
(one gzip member, no file scan), extracted in the worker pool exactly as the pipeline does, and
loaded through the same upsert: unchanged text writes nothing, changed text keeps the previous
version in ``article_revisions`` (reason 'reextract'), and a failed re-extraction never
replaces a good row. Running it twice changes nothing the second time.

A plain function: the CLI, the backfill (reextract mode) and the maintenance flow call it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from etl import store
from etl.config import Settings
from etl.fetch.archive import read_response
from etl.models import Extraction, ExtractionStatus, FeedEntry
from etl.parse.extract import with_feed_fallback
from etl.parse.normalize import build_record
from etl.parse.pool import ExtractionPool, PageJob, shared_pool

log = logging.getLogger(__name__)


@dataclass
class ReextractResult:
    selected: int = 0       # articles with an archived page in the selection
    updated: int = 0        # text changed: row updated, previous version kept
    unchanged: int = 0      # same text (or a failed re-extraction that keeps the good row)
    failed: int = 0         # re-extraction produced no text
    missing: int = 0        # archive record unreadable (file gone, truncated)
    unarchived: int = 0     # articles in the window with no archived page at all (not selected)


def reextract(engine: Engine, settings: Settings, since: datetime | None = None,
              until: datetime | None = None, sources: Sequence[str] = (),
              pool: ExtractionPool | None = None, batch_size: int | None = None,
              only_failed: bool = False) -> ReextractResult:
    """Re-extracts archived articles published (else first seen) in [since, until) of the given
    source slugs (all when empty), in batches through the extraction pool. ``only_failed``
    limits it to rows whose page gave no text ('failed' or a feed fallback), as the
    maintenance flow's retry step asks."""
    pool = pool or shared_pool(settings)
    batch_size = batch_size or settings.batch_size
    rows = store.archived_articles(engine, since, until, sources, only_failed)
    result = ReextractResult(selected=len(rows),
                             unarchived=store.unarchived_count(engine, since, until, sources, only_failed))
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        jobs: list[PageJob] = []
        statuses: list[int | None] = []
        for row in batch:
            try:
                resp = read_response(settings.archive_path, row["warc_file"], row["warc_offset"],
                                     row["warc_length"])
                jobs.append(PageJob(resp.body if resp.status and 200 <= resp.status < 300 else None,
                                    resp.url))
                statuses.append(resp.status)
            except (OSError, ValueError, EOFError) as exc:
                log.warning("archive record of article %s unreadable: %s", row["id"], exc)
                jobs.append(PageJob(None, row["final_url"]))
                statuses.append(None)
        pages = pool.extract_pages(jobs)
        records = []
        for row, job, status, page in zip(batch, jobs, statuses, pages, strict=True):
            if status is None:
                result.missing += 1
                continue
            extraction: Extraction = with_feed_fallback(
                page, None, None if job.html is not None else f"archived response HTTP {status}")
            if extraction.status == ExtractionStatus.FAILED:
                result.failed += 1
            # The feed's contribution (title, dates, language) is what the row already holds.
            entry = FeedEntry(entry_key=row["url"], link=row["url"], canonical_url=row["canonical_url"],
                              guid=row["guid"], title=row["title"], published_at=row["published_at"])
            records.append(build_record(
                source_id=row["source_id"], feed_id=None, feed_language=row["feed_language"],
                entry=entry, extraction=extraction, final_url=row["final_url"], http_status=status,
                fetched_at=row["fetched_at"],  # when the archived copy was fetched
            ))
        loaded = store.upsert_articles(engine, records, revision_reason="reextract")
        result.updated += loaded.updated
        result.unchanged += loaded.unchanged
    return result
