"""The ``newsetl`` command line."""

from __future__ import annotations

import atexit
import os
import sys
import threading

from etl.cli.main import app

__all__ = ["app", "run"]


def run() -> None:
    """The console script: runs the command, then everything a normal exit runs — non-daemon
    threads joined, ``atexit`` handlers (logging flushed, the extraction pool and Prefect's
    workers stopped), standard streams flushed — and leaves without the interpreter's own
    teardown, which frees every object of Prefect, SQLAlchemy, numpy and the story stage one by
    one: 0.5-0.9 s of CPU per run measured (bench/bench_e2e.py), for nothing the OS does not
    reclaim anyway. The exit code is the command's."""
    try:
        app()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    status = _exit_status(code)
    # What the interpreter's exit does first: the thread-exit hooks (concurrent.futures tells
    # its idle workers to stop) and the join of every non-daemon thread.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to write to
            pass
    os._exit(status)


def _exit_status(code: object) -> int:
    """``sys.exit``'s rules: None is 0, an int is itself, anything else is printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
