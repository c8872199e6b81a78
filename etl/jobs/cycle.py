"""One whole ingest cycle without Prefect: poll what is due, load the new entries, then commit
the feeds' validators. The flow in ``flows/ingest.py`` runs the same steps as Prefect tasks;
this is the plain-function form for scripts, evaluations and tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine

from etl import store, stories
from etl.config import Settings
from etl.fetch.http import Fetcher
from etl.jobs import batch, polling


@dataclass
class CycleResult:
    polls: list[batch.PollResult] = field(default_factory=list)
    batches: list[batch.BatchResult] = field(default_factory=list)
    stories: stories.AssignCounts = field(default_factory=stories.AssignCounts)

    @property
    def inserted(self) -> int:
        return sum(b.inserted for b in self.batches)

    @property
    def failed_polls(self) -> list[batch.PollResult]:
        return [p for p in self.polls if p.outcome.failed]


def run_cycle(engine: Engine, fetcher: Fetcher, settings: Settings, *, run_id: int | None = None,
              slugs: Sequence[str] = (), force: bool = False,
              story_config: stories.StoryConfig | None = None) -> CycleResult:
    result = CycleResult(polls=polling.poll_due(engine, fetcher, settings, run_id, slugs=list(slugs),
                                                force=force))
    items = [item for p in result.polls for item in p.items]
    deferred: set[int] = set()
    for chunk in batch.make_batches(items, settings.batch_size):
        out = batch.process_batch(engine, fetcher, settings, chunk, only_new=True)
        deferred.update(out.deferred_feeds)
        result.batches.append(out)
        if out.new_ids:  # after each batch, in batch order, as the flow does
            result.stories.add(stories.assign(engine, out.new_ids, story_config))
    store.commit_validators(engine, [p.pending_validators for p in result.polls if p.pending_validators
                                     and p.pending_validators.feed_id not in deferred])
    return result
