"""The CPU ledger (etl.jobs.cpu): every CPU second of a staged block is charged once, to the
innermost stage, whatever thread runs it — the CPU budget table of bench/bench_e2e.py adds
the stages up and reads the rest as unattributed, so a double count would hide a cost."""

from __future__ import annotations

import threading
import time

from etl.jobs import cpu


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_nested_stages_charge_each_second_once() -> None:
    before = cpu.snapshot()
    start = time.thread_time()
    with cpu.stage("t-outer"):
        _burn(0.05)
        with cpu.stage("t-inner"):
            assert cpu.current() == "t-inner"
            _burn(0.05)
        assert cpu.current() == "t-outer"
        _burn(0.05)
    total = time.thread_time() - start
    spent = cpu.since(before)
    assert cpu.current() is None
    assert 0.05 <= spent["t-inner"] < 0.08
    assert 0.10 <= spent["t-outer"] < 0.14
    # nothing charged twice, nothing lost beyond the clock reads
    assert abs(spent["t-inner"] + spent["t-outer"] - total) < 0.005


def test_threads_add_up_and_keep_their_own_stage() -> None:
    before = cpu.snapshot()
    seen: list[str | None] = []

    def work() -> None:
        with cpu.stage("t-threads"):
            _burn(0.03)
            seen.append(cpu.current())

    threads = [threading.Thread(target=work) for _ in range(3)]
    with cpu.stage("t-caller"):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    spent = cpu.since(before)
    assert seen == ["t-threads"] * 3
    assert spent["t-threads"] >= 0.09
    assert spent.get("t-caller", 0.0) < 0.03  # waiting for the threads costs the caller nothing


def test_a_failing_block_is_still_charged_and_unwinds() -> None:
    before = cpu.snapshot()
    try:
        with cpu.stage("t-outer2"), cpu.stage("t-fails"):
            _burn(0.02)
            raise ValueError("boom")
    except ValueError:
        pass
    assert cpu.current() is None
    assert cpu.since(before)["t-fails"] >= 0.02
