"""Extraction-stage throughput vs a bare ProcessPoolExecutor(2) loop, and peak RSS of the tree.

Same run, same in-memory HTML (the 181 Zyte pages repeated to ≥ 1,000 documents).

    python -m bench.bench_extraction [--docs 1086] [--rounds 3] [--rss-rounds 1] [--workers 2]

Two measurements:
- throughput rounds (``--rounds``): both pools are started, then the documents go through in
  chunks (``--chunk``, default 60), alternating baseline and ours chunk by chunk (order swapped every chunk), so
  that both see the same load on a shared machine; each side's time includes starting and
  stopping its pool. Ratio = ours docs/s ÷ baseline docs/s; the median over rounds is reported.
- RSS rounds (``--rss-rounds``): each side alone over all documents, peak RSS of the process tree.

- baseline: ``ProcessPoolExecutor(2).map(bare_extraction, ...)`` with the settings the issue
  names (metadata on, comments off, tables on, dedup off), nothing else.
- ours: ``etl.parse.pool.ExtractionPool`` (pebble, forkserver, per-page kill timeout, worker
  recycling, size cap) + the feed fallback step, fed the way the pipeline feeds it: batches of
  ``batch_size`` pages submitted from 4 task threads at once.
- peak RSS: the sum of RSS over this process and all its descendants, sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import psutil

# ../shared/data next to the project root; NEWSETL_SHARED_DATA overrides (e.g. from a worktree).
SHARED = Path(os.environ.get("NEWSETL_SHARED_DATA") or Path(__file__).resolve().parent.parent.parent / "shared" / "data")
DATA = SHARED / "extraction" / "zyte-aeb"


def load_pages(data: Path = DATA) -> list[tuple[bytes, str]]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    return [(gzip.decompress((data / "html" / f"{key}.html.gz").read_bytes()), v["url"])
            for key, v in sorted(truth.items())]


def _bare(html: bytes, url: str) -> object:
    import trafilatura

    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                      include_tables=True, include_images=False, include_links=False,
                                      deduplicate=False)
    return doc.text if doc is not None else None  # send back what a real caller would use


class PeakRSS:
    """Samples the RSS of this process and every descendant; ``peak`` is the largest sum seen."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_baseline(docs: list[tuple[bytes, str]], workers: int) -> tuple[float, int]:
    with PeakRSS() as rss:
        start = time.perf_counter()
        with ProcessPoolExecutor(workers) as pool:
            out = list(pool.map(_bare, [d[0] for d in docs], [d[1] for d in docs]))
        elapsed = time.perf_counter() - start
    assert len(out) == len(docs)
    return len(docs) / elapsed, rss.peak


def run_ours(docs: list[tuple[bytes, str]], workers: int, batch_size: int,
             max_tasks: int = 1000) -> tuple[float, int, dict[str, int]]:
    from etl.parse.extract import with_feed_fallback
    from etl.parse.pool import ExtractionPool, PageJob

    jobs = [PageJob(h, u) for h, u in docs]
    batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]
    statuses: dict[str, int] = {}
    with PeakRSS() as rss:
        start = time.perf_counter()
        with ExtractionPool(workers=workers, timeout=20.0, max_tasks=max_tasks,
                            max_bytes=3 * 1024 * 1024) as pool:
            def one(batch: list[PageJob]) -> list[str]:
                return [with_feed_fallback(page, None).status for page in pool.extract_pages(batch)]

            with ThreadPoolExecutor(4) as threads:
                for statuses_of_batch in threads.map(one, batches):
                    for s in statuses_of_batch:
                        statuses[s] = statuses.get(s, 0) + 1
        elapsed = time.perf_counter() - start
    return len(docs) / elapsed, rss.peak, statuses


def round_interleaved(docs: list[tuple[bytes, str]], workers: int, batch_size: int,
                      chunk: int = 181, max_tasks: int = 1000) -> tuple[float, float]:
    """One throughput round; returns (baseline docs/s, ours docs/s)."""
    from etl.parse.extract import with_feed_fallback
    from etl.parse.pool import ExtractionPool, PageJob

    t_base = t_ours = 0.0
    start = time.perf_counter()
    base_pool = ProcessPoolExecutor(workers)
    t_base += time.perf_counter() - start
    start = time.perf_counter()
    ours = ExtractionPool(workers=workers, timeout=20.0, max_tasks=max_tasks, max_bytes=3 * 1024 * 1024)
    threads = ThreadPoolExecutor(4)
    t_ours += time.perf_counter() - start

    def run_base(part: list[tuple[bytes, str]]) -> None:
        out = list(base_pool.map(_bare, [d[0] for d in part], [d[1] for d in part]))
        assert len(out) == len(part)

    def run_ours_part(part: list[tuple[bytes, str]]) -> None:
        jobs = [PageJob(h, u) for h, u in part]
        batches = [jobs[i:i + batch_size] for i in range(0, len(jobs), batch_size)]

        def one(batch: list[PageJob]) -> int:
            return sum(with_feed_fallback(p, None).status != "failed" for p in ours.extract_pages(batch))

        assert sum(threads.map(one, batches)) == len(part)

    for i in range(0, len(docs), chunk):
        part = docs[i:i + chunk]
        order = [("base", run_base), ("ours", run_ours_part)]
        if (i // chunk) % 2:
            order.reverse()
        for name, fn in order:
            start = time.perf_counter()
            fn(part)
            if name == "base":
                t_base += time.perf_counter() - start
            else:
                t_ours += time.perf_counter() - start
    start = time.perf_counter()
    base_pool.shutdown()
    t_base += time.perf_counter() - start
    start = time.perf_counter()
    threads.shutdown()
    ours.close()
    t_ours += time.perf_counter() - start
    return len(docs) / t_base, len(docs) / t_ours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=1086)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rss-rounds", type=int, default=1)
    ap.add_argument("--max-tasks", type=int, default=1000, help="pages per worker before recycling (ours)")
    ap.add_argument("--chunk", type=int, default=60,
                    help="documents per alternation in throughput rounds (smaller = finer interleaving)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=100)
    args = ap.parse_args()
    pages = load_pages()
    docs = (pages * (args.docs // len(pages) + 1))[: args.docs]
    print(f"{len(docs)} documents ({len(pages)} distinct pages, "
          f"{sum(len(d[0]) for d in docs) / 1e6:.0f} MB of HTML), {args.workers} workers, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    base_rates, our_rates, ratios = [], [], []
    for r in range(args.rounds):
        b, o = round_interleaved(docs, args.workers, args.batch_size, args.chunk, args.max_tasks)
        base_rates.append(b), our_rates.append(o), ratios.append(o / b)
        print(f"throughput round {r + 1}: baseline {b:6.1f} docs/s | ours {o:6.1f} docs/s | ratio {o / b:.3f}",
              flush=True)
    base_rss, our_rss = [], []
    for r in range(args.rss_rounds):
        b, b_rss = run_baseline(docs, args.workers)
        o, o_rss, statuses = run_ours(docs, args.workers, args.batch_size, args.max_tasks)
        base_rss.append(b_rss), our_rss.append(o_rss)
        print(f"RSS round {r + 1}: baseline {b:6.1f} docs/s, peak RSS {b_rss / 2**20:4.0f} MB | "
              f"ours {o:6.1f} docs/s, peak RSS {o_rss / 2**20:4.0f} MB | {statuses}", flush=True)
    if ratios:
        print(f"median over {len(ratios)} throughput round(s): baseline {statistics.median(base_rates):.1f} docs/s, "
              f"ours {statistics.median(our_rates):.1f} docs/s, ratio {statistics.median(ratios):.3f}")
    if base_rss:
        print(f"peak RSS of the process tree (max over rounds): baseline {max(base_rss) / 2**20:.0f} MB, "
              f"ours {max(our_rss) / 2**20:.0f} MB")


if __name__ == "__main__":
    main()
