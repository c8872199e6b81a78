"""Stage 3, store: PostgreSQL — the engine and the embedded server (``db``), migrations, and
every load and lookup the other stages make, each binding a statement of ``sql/queries``.

The functions are grouped by what they keep (``sources``, ``feeds``, ``articles``, ``runs``,
``claims``) and re-exported here, so that callers say ``store.upsert_articles(...)``.
"""

from etl.store.articles import (
    EXACT_HASH_MIN_WORDS,
    archived_articles,
    article_count,
    index_archive,
    latest_articles,
    stored_urls,
    upsert_articles,
)
from etl.store.claims import HostSlots, claim_pages, host_slot_reserver, release_pages
from etl.store.feeds import (
    active_host_backoffs,
    commit_validators,
    db_now,
    due_feeds,
    feed_status,
    held_feeds,
    count_leasable_feeds,
    lease_feeds,
    new_entries,
    prune_feed_polls,
    record_poll,
    record_polls,
    release_leases,
    save_host_backoffs,
)
from etl.store.queries import query
from etl.store.runs import (
    RunningRun,
    abandon_runs,
    add_run_note,
    add_story_counts,
    finish_run,
    heartbeat,
    prune_ingest_errors,
    record_ingest_errors,
    running_runs,
    unstoried_articles,
    link_artifact,
    prune_runs,
    start_run,
)
from etl.store.sources import sync_sources
from etl.store.unarchived import unarchived_articles, unarchived_count

__all__ = [
    "RunningRun", "abandon_runs", "add_run_note", "heartbeat", "unarchived_articles", "unarchived_count", "held_feeds", "prune_ingest_errors", "record_ingest_errors",
    "running_runs",
    "unstoried_articles",
    "EXACT_HASH_MIN_WORDS", "active_host_backoffs", "add_story_counts", "archived_articles", "article_count",
    "claim_pages", "commit_validators", "db_now", "due_feeds", "feed_status", "finish_run",
    "HostSlots", "host_slot_reserver", "index_archive", "prune_feed_polls", "prune_runs", "latest_articles", "count_leasable_feeds", "lease_feeds", "link_artifact", "new_entries",
    "query", "record_poll", "record_polls", "release_leases", "release_pages", "save_host_backoffs",
    "start_run", "stored_urls", "sync_sources", "upsert_articles",
]
