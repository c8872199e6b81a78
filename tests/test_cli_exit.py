"""The console script (``etl.cli:run``) leaves without the interpreter's teardown: what a
normal exit does must still happen — the command's exit code, its output flushed, exit
handlers run, non-daemon threads finished."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
from etl.cli import run
out = Path(sys.argv[1])
atexit.register(lambda: out.write_text(out.read_text() + "exit handler ran\\n"))
def late():
    time.sleep(0.3)
    out.write_text(out.read_text() + "thread finished\\n")
out.write_text("")
threading.Thread(target=late).start()
# an executor never shut down (as etl.fetch.http's resolver threads): its idle non-daemon
# workers stop at exit, they must not hang it
from concurrent.futures import ThreadPoolExecutor
ThreadPoolExecutor(2).submit(lambda: None).result()
sys.argv = ["newsetl", *sys.argv[2:]]
print("printed before main, buffered", end="")
run()
"""


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    log = tmp_path / "log.txt"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log), *args], capture_output=True, text=True,
                          timeout=120)
    return proc, log.read_text()


def test_success_runs_exit_handlers_and_flushes(tmp_path: Path) -> None:
    proc, log = _run(tmp_path, "--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith("printed before main, buffered") and "Usage" in proc.stdout
    assert log == "thread finished\nexit handler ran\n"  # the thread first, as at a normal exit


def test_usage_error_keeps_its_exit_code(tmp_path: Path) -> None:
    proc, log = _run(tmp_path, "no-such-command")
    assert proc.returncode == 2 and "No such command" in proc.stderr
    assert log.endswith("exit handler ran\n")


def test_python_m_runs_the_same_entry() -> None:
    proc = subprocess.run([sys.executable, "-m", "etl.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "ingest" in proc.stdout
