"""The type check is part of the suite: our modules import each other directly and pass typed
results, so a signature change must fail here rather than in a run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # mypy in a subprocess: ~15 s without its cache
def test_mypy_finds_no_errors_in_etl_and_flows() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
