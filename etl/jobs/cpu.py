"""CPU time per stage of a run: where a page's CPU goes, measured by the code's own clocks.

Wall time per stage (``batch.timed``) says what waits; on two shared cores what limits the rate
is CPU per page, so each stage's block also charges its *thread* CPU time
(``time.thread_time``: this thread only, in user and kernel mode, including C code that runs
without the GIL such as zlib) to a process-wide ledger. Stages nest: a stage entered inside
another (the feed's archive copy inside its poll) pauses the outer one, so every CPU second is
charged once. Work outside any stage (Prefect's task engine, logging, the run record) is what a
run's process CPU has beyond the ledger's sum.

The cycle logs the ledger's growth over the cycle (``stage cpu seconds:``) beside the wall
times; ``bench/bench_e2e.py`` turns it into the CPU budget table. Cost: two clock reads per
block (a few per page).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_seconds: dict[str, float] = {}
_local = threading.local()


def _stack() -> list[list]:
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def _charge(name: str, seconds: float) -> None:
    with _lock:
        _seconds[name] = _seconds.get(name, 0.0) + seconds


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Charges this thread's CPU time inside the block to ``name`` (an enclosing stage is
    paused meanwhile)."""
    stack = _stack()
    now = time.thread_time()
    if stack:
        outer = stack[-1]
        _charge(outer[0], now - outer[1])
    stack.append([name, now])
    try:
        yield
    finally:
        now = time.thread_time()
        inner = stack.pop()
        _charge(inner[0], now - inner[1])
        if stack:
            stack[-1][1] = now


def current() -> str | None:
    """The stage this thread is in (None outside every stage): lets a probe (the benchmark's
    PostgreSQL-backend accounting) charge work done on this thread's behalf elsewhere."""
    stack = getattr(_local, "stack", None)
    return stack[-1][0] if stack else None


def snapshot() -> dict[str, float]:
    """CPU seconds charged so far, per stage, since the process started."""
    with _lock:
        return dict(_seconds)


def since(before: dict[str, float]) -> dict[str, float]:
    """What each stage was charged since ``before`` (a :func:`snapshot`)."""
    return {k: v - before.get(k, 0.0) for k, v in snapshot().items() if v - before.get(k, 0.0) > 0}
