"""Runs the real ``newsetl`` command line with two probes, for bench/bench_e2e.py.

    PYTHONPATH=<tree> BENCH_PROBE_OUT=probe.json python bench/e2e_probe.py -v ingest --force ...

The command is the one the console script runs (``etl.cli:run``), from whichever tree
``PYTHONPATH`` names (this file puts nothing of its own on the path). The probes only observe:

- PostgreSQL backend CPU per stage: on every pool checkout the backend's CPU time is read from
  ``/proc/<backend pid>/stat`` (the server is local in the bench), and on checkin the difference
  is charged to the stage (``etl.jobs.cpu.current()``) of the thread that held the connection:
  the story stage's SQL apart from the load path's. Connections outside every stage are
  charged to ``other``.
- The sentence encoder's load (~2.7 s, a start-up cost the story lane pays in its own thread):
  ``etl.stories.features.encoder_available`` is wrapped in a ledger stage ``encoder_load``.

At exit, ``{"pg_cpu_by_stage": {...}, "process_cpu_at_exit": ...}`` is written to ``$BENCH_PROBE_OUT``. A tree without
``etl.jobs.cpu`` (before the ledger existed) runs unprobed.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time

TICK = os.sysconf("SC_CLK_TCK")
_pg: dict[str, float] = {}
_lock = threading.Lock()


def _backend_cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


def _dump() -> None:
    out = os.environ.get("BENCH_PROBE_OUT")
    if out:
        with open(out, "w") as fh:
            # the process's CPU when the last exit handler runs: what follows is the
            # interpreter's own teardown (freeing every object)
            json.dump({"pg_cpu_by_stage": _pg, "process_cpu_at_exit": time.process_time()}, fh)


def install() -> None:
    try:
        from etl.jobs import cpu
    except ImportError:
        return
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    def checkout(dbapi_conn, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        pid = dbapi_conn.info.backend_pid
        record.info["probe"] = (pid, _backend_cpu(pid), cpu.current() or "other")

    def checkin(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
        probe = record.info.pop("probe", None) if record is not None else None
        if not probe or probe[1] is None:
            return
        now = _backend_cpu(probe[0])
        if now is not None:
            with _lock:
                _pg[probe[2]] = _pg.get(probe[2], 0.0) + now - probe[1]

    event.listen(Pool, "checkout", checkout)
    event.listen(Pool, "checkin", checkin)

    from etl.stories import features

    inner = features.encoder_available

    def encoder_available() -> bool:
        with cpu.stage("encoder_load"):
            return inner()

    features.encoder_available = encoder_available  # type: ignore[assignment]


def main() -> None:
    atexit.register(_dump)  # registered first: runs last, after the pools are closed
    install()
    import etl.cli

    sys.argv = ["newsetl", *sys.argv[1:]]
    # the console script's function (etl.cli:run; a tree before it: etl.cli:app)
    getattr(etl.cli, "run", etl.cli.app)()


if __name__ == "__main__":
    main()
