"""The sources registry in PostgreSQL: outlets and their feeds, kept in line with the file."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from etl.config import Source
from etl.store.queries import query


def sync_sources(engine: Engine, sources: Sequence[Source], deactivate_missing: bool = True) -> dict[str, int]:
    """Brings sources/feeds in line with the registry; returns slug → source id.

    Running it twice changes nothing the second time; a feed that left the file is deactivated.
    """
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        for src in sources:
            row = conn.execute(query("upsert_source"), {
                "slug": src.slug, "name": src.name, "homepage": src.homepage,
                "min_request_interval": src.min_request_interval,
            }).first()
            source_id = row[0] if row else conn.execute(
                query("source_id"), {"slug": src.slug}).scalar_one()
            ids[src.slug] = source_id
            for feed in src.feeds:
                # A feed that moved (301/308) and is now listed under its new URL keeps its row.
                conn.execute(query("adopt_moved_feed"), {"url": feed.url})
                conn.execute(query("upsert_feed"), {
                    "source_id": source_id, "url": feed.url, "language": feed.language,
                    "section": feed.section, "min_interval": feed.min_interval,
                    "max_interval": feed.max_interval,
                })
        if deactivate_missing:
            conn.execute(query("deactivate_removed_feeds"),
                         {"urls": [f.url for s in sources for f in s.feeds]})
    return ids
