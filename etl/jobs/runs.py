"""Per-source counts of one run, shaped for the run's report (a Prefect table artifact).

Plain data, no Prefect: the flows fill a :class:`SourceTally` as poll and batch results come
back, then hand ``rows()`` to Prefect. The artifact's key is stored on the ``ingestion_runs``
row, and the key contains the run id, so each one leads to the other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, text

from etl import store

# The columns of the report, in order; every flow fills the same ones so runs compare.
COLUMNS = ("source", "feeds_polled", "feeds_failed", "items", "new", "updated", "duplicates", "failed")


@dataclass
class SourceCounts:
    feeds_polled: int = 0
    feeds_failed: int = 0
    items: int = 0        # entries listed by the feeds (ingest) or candidate URLs (backfill)
    new: int = 0          # articles inserted
    updated: int = 0      # articles whose content changed
    duplicates: int = 0   # already stored: known entries / URLs skipped before fetching, unchanged rows
    failed: int = 0       # articles whose extraction failed

    def add(self, other: "SourceCounts") -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


class SourceTally:
    """slug → :class:`SourceCounts`, filled from the pipeline's results."""

    def __init__(self) -> None:
        self.by_source: dict[str, SourceCounts] = {}

    def of(self, slug: str) -> SourceCounts:
        return self.by_source.setdefault(slug, SourceCounts())

    def add_poll(self, slug: str, outcome: store.PollOutcome) -> None:
        c = self.of(slug)
        c.feeds_polled += 1
        c.feeds_failed += int(outcome.failed)
        c.items += outcome.entries_seen
        # Entries the feed listed that needed no fetch: this feed or another brought them before.
        c.duplicates += max(0, outcome.entries_seen - outcome.entries_new)

    def add_batch(self, slug: str, inserted: int, updated: int, unchanged: int, failed: int,
                  duplicates: int = 0) -> None:
        """``duplicates``: exact duplicates the load recognised (no row added), if it reports them."""
        c = self.of(slug)
        c.new += inserted
        c.updated += updated
        c.duplicates += unchanged + duplicates
        c.failed += failed

    def add_counts(self, slug: str, counts: SourceCounts) -> None:
        self.of(slug).add(counts)

    def total(self) -> SourceCounts:
        total = SourceCounts()
        for c in self.by_source.values():
            total.add(c)
        return total

    def rows(self) -> list[dict[str, Any]]:
        """One row per source, sorted by slug, then a 'total' row."""
        rows = [{"source": slug, **asdict(c)} for slug, c in sorted(self.by_source.items())]
        rows.append({"source": "total", **asdict(self.total())})
        return rows


def feed_slugs(engine: Engine, feed_ids: list[int]) -> dict[int, str]:
    """feed id → source slug, for flows whose poll results carry only the feed id."""
    if not feed_ids:
        return {}
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT f.id, s.slug FROM feeds f JOIN sources s ON s.id = f.source_id WHERE f.id = ANY(:ids)"),
            {"ids": sorted(set(feed_ids))}).all())


def artifact_key(run_id: int, kind: str = "run") -> str:
    """Prefect keys allow lowercase letters, digits and dashes only."""
    return f"newsetl-{kind}-run-{run_id}".lower().replace("_", "-")


def link_artifact(engine: Engine, run_id: int, key: str, artifact_id: UUID | str | None) -> None:
    with engine.begin() as conn:
        conn.execute(store.query("link_run_artifact"), {
            "run_id": run_id, "key": key, "artifact_id": str(artifact_id) if artifact_id else None,
        })
