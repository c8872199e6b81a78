"""The one ingest cycle, as the flow runs it but with a plain thread pool for ``submit``: how
many units it keeps in flight (NEWSETL_TASK_WORKERS), the order of story assignment, the report."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from etl.config import load_settings, load_sources
from etl.jobs.cycle import run_cycle
from etl.jobs.runs import RunReport


class RecordingSubmit:
    """A ``submit`` over a thread pool that records, per unit function, how many were submitted
    and not yet collected (``result()`` not called) — the cycle's own bound, whatever the pool."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.lock = threading.Lock()
        self.submitted: Counter[str] = Counter()
        self.outstanding: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.args: dict[str, list[tuple[Any, ...]]] = {}

    def __call__(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "_Collected":
        name = fn.__name__
        with self.lock:
            self.submitted[name] += 1
            self.outstanding[name] += 1
            self.peak[name] = max(self.peak[name], self.outstanding[name])
            self.args.setdefault(name, []).append(args)
        return _Collected(self, name, self.pool.submit(fn, *args, **kwargs))


class _Collected:
    def __init__(self, rec: RecordingSubmit, name: str, fut: Future[Any]) -> None:
        self.rec, self.name, self.fut, self.done = rec, name, fut, False

    def result(self) -> Any:
        try:
            return self.fut.result()
        finally:
            if not self.done:
                self.done = True
                with self.rec.lock:
                    self.rec.outstanding[self.name] -= 1


def test_the_cycle_keeps_task_workers_units_in_flight_and_assigns_stories_in_order(
        engine: Engine, demo_sites, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sources.toml"
    path.write_text(demo_sites.sources_toml(min_request_interval=0.0), encoding="utf-8")
    settings = replace(load_settings(path), task_workers=3, batch_size=4, allow_private_networks=True,
                       poll_chunk_size=1)
    report = RunReport()
    with ThreadPoolExecutor(max_workers=16) as pool:
        submit = RecordingSubmit(pool)
        result = run_cycle(engine, settings, registry=load_sources(path), force=True, submit=submit,
                           report=report)

    feeds = sum(len(s.feeds) for s in load_sources(path))
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM articles")).scalar_one()
        unassigned = conn.execute(text(
            "SELECT count(*) FROM articles a WHERE NOT EXISTS "
            "(SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id)")).scalar_one()
    assert stored == result.inserted > 30 and unassigned == 0
    batches = len(result.batches)
    assert batches > settings.task_workers  # enough batches for the bound to matter
    # Polling: rounds of at most task_workers units of one chunk each, as many as the feeds
    # left fill (a unit is a task run: none is started to find nothing).
    assert feeds > settings.task_workers
    assert submit.submitted["lease_and_poll"] == feeds
    assert submit.peak["lease_and_poll"] == settings.task_workers
    # Batches: exactly task_workers submitted ahead, never more; every one collected.
    assert submit.submitted["process_batch"] == batches
    assert submit.peak["process_batch"] == settings.task_workers
    assert submit.outstanding == Counter({name: 0 for name in submit.submitted})
    # Stories: one assignment at a time, one per batch that inserted rows, in batch order (never
    # two batches together, however far assignment falls behind: the stories must not depend on
    # thread timing).
    assert submit.submitted["assign_stories"] == sum(1 for b in result.batches if b.new_ids)
    assert submit.peak["assign_stories"] == 1
    assigned_in_order = [i for args in submit.args["assign_stories"] for i in args[1]]
    assert assigned_in_order == [i for b in result.batches for i in b.new_ids]
    assert submit.submitted["sync_sources"] == 1
    # The report the run row gets.
    assert report.counts.feeds_polled == feeds and report.counts.articles_new == stored
    assert report.tally.total().new == stored and report.counts.errors == 0
    assert result.stories.processed == stored
    # The CPU ledger saw every stage of the pages' path, inside the process's own CPU time.
    staged = {k: v for k, v in result.stage_cpu.items() if not k.startswith("process_")}
    assert {"poll", "fetch", "archive", "normalize", "load", "stories"} <= staged.keys()
    assert sum(staged.values()) <= result.stage_cpu["process_in_cycle"] + 0.05


def test_one_worker_runs_everything_one_at_a_time(engine: Engine, demo_sites,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(demo_sites.sources_toml(min_request_interval=0.0), encoding="utf-8")
    settings = replace(load_settings(path), task_workers=1, batch_size=10, allow_private_networks=True)
    with ThreadPoolExecutor(max_workers=16) as pool:
        submit = RecordingSubmit(pool)
        result = run_cycle(engine, settings, registry=load_sources(path), force=True, submit=submit)
    assert result.inserted > 30
    assert submit.peak == Counter({name: 1 for name in submit.submitted})
    assert submit.submitted["lease_and_poll"] == 1  # every feed fits one chunk: one unit


def test_batches_per_run_are_capped_whatever_the_size() -> None:
    from etl.jobs.batch import make_batches
    from etl.models import FeedEntry, WorkItem

    def items(n: int, slug: str) -> list[WorkItem]:
        return [WorkItem(feed_id=1, source_id=1, slug=slug, language="en", min_request_interval=0.0,
                         entry=FeedEntry(entry_key=f"{slug}{i}", link=f"http://x/{slug}/{i}",
                                         canonical_url=f"http://x/{slug}/{i}")) for i in range(n)]

    backfill = items(7000, "voa") + items(3000, "france24")
    uncapped = make_batches(backfill, 100)
    capped = make_batches(backfill, 100, max_batches=64)
    assert len(uncapped) == 100 and len(capped) <= 64
    for chunks in (uncapped, capped):  # every item once, in its source's order, one source per batch
        assert [i.entry.entry_key for b in chunks for i in b] == [
            i.entry.entry_key for i in sorted(backfill, key=lambda i: i.slug)]
        assert all(len({i.slug for i in b}) == 1 for b in chunks)
    # Few items: the cap changes nothing; more sources than the cap: one batch per source.
    assert make_batches(items(250, "voa"), 100, max_batches=64) == make_batches(items(250, "voa"), 100)
    many = [i for s in range(80) for i in items(3, f"s{s:02d}")]
    assert len(make_batches(many, 1, max_batches=64)) == 80


def test_page_claims_outlast_a_large_batchs_politeness() -> None:
    """A batch grown past 100 pages (the batch cap) on a slow host must keep its claims until
    its politeness alone lets it fetch them all."""
    from etl.config import load_settings
    from etl.jobs.batch import claim_seconds
    from etl.models import FeedEntry, WorkItem

    settings = load_settings(environ={})

    def item(host: str, n: int, interval: float) -> WorkItem:
        url = f"https://{host}/a/{n}"
        return WorkItem(1, 1, "s", "en", interval, FeedEntry(entry_key=url, link=url, canonical_url=url))

    slow = [item("slow.example", n, 2.0) for n in range(400)] + [item("fast.example", n, 0.0) for n in range(50)]
    assert claim_seconds(settings, slow) == settings.page_claim_seconds + 400 * 2.0 / settings.per_host_concurrency
    assert claim_seconds(settings, slow[-50:]) == settings.page_claim_seconds
