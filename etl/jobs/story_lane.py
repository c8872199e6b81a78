"""Story assignment beside the batches, in load order.

Assignment is order-dependent (an article joins the stories that exist when it is assigned), so
it runs one unit at a time, in the order the batches were loaded. It used to run in the cycle's
own thread between batches, which held back the next batch's results and left the extraction
workers idle during the tail. Here one thread does it while later batches are still being
fetched, extracted and loaded.

Each batch is its own unit, even when assignment falls behind and several batches wait: the
story stage orders a unit's articles by event time, so assigning two batches together would give
other stories than assigning them one after the other — results would depend on thread timing.
One unit per batch keeps a run's stories a function of its batches alone (and task runs stay
bounded by the batch cap of the cycle).

The unit still goes through ``submit``, so in the ``ingest`` flow it is the ``assign-stories``
task. The thread runs each unit in a copy of the caller's context (taken when the lane opens),
so Prefect sees the flow run it belongs to.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import Engine

from etl.config import StoryConfig
from etl.jobs import batch
from etl.jobs.submit import Submit
from etl.models import AssignCounts
from etl.stories import StoryStage, features

log = logging.getLogger(__name__)


class StoryLane:
    """``add`` each loaded batch's new article ids in load order; ``finish`` waits for the
    last assignment and returns the totals. Never raises for a failed assignment (counted in
    ``errors``; the articles stay loaded and the next run's catch-up assigns them)."""

    def __init__(self, submit: Submit, engine: Engine, config: StoryConfig, run_id: int | None) -> None:
        self._submit = submit
        self._engine = engine
        self._config = config
        self._run_id = run_id
        self._stage = StoryStage(engine, config)  # the run's window state and profile cache
        self._context = contextvars.copy_context()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stories")
        self._units: list[Future[None]] = []
        self.counts = AssignCounts()
        self.errors = 0
        self.assignments = 0  # units run (one per batch added)
        self.seconds = 0.0    # busy time of the lane
        if config.use_embedding:
            # The lane is the run's critical path once the first batch is loaded; the encoder's
            # model (~2.7 s of CPU to load) is loaded now, while the first pages are fetched.
            self._thread.submit(features.encoder_available)

    def add(self, article_ids: Sequence[int]) -> None:
        if not article_ids:
            return
        # one thread: the units run one at a time, in the order they were added
        self._units.append(self._thread.submit(self._context.run, self._assign, list(article_ids)))

    def _assign(self, ids: list[int]) -> None:
        started = time.perf_counter()
        try:
            counts = self._submit(batch.assign_stories, self._engine, ids, self._config, self._run_id,
                                   self._stage).result()
        except Exception:  # the task machinery itself failed: same as a failed assignment
            log.exception("story assignment of %d article(s) failed", len(ids))
            counts = None
        self.assignments += 1
        self.seconds += time.perf_counter() - started
        if counts is None:
            self.errors += 1
        else:
            self.counts.add(counts)

    def finish(self) -> AssignCounts:
        """Waits until every added batch is assigned; idempotent."""
        self._thread.shutdown(wait=True)
        return self.counts

    def __enter__(self) -> "StoryLane":
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()
