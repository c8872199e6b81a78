"""Peak memory of a whole ingest run under hostile input, against a clean run: each run in a
child process of its own (peak RSS = VmHWM since exec), through the real cycle and database.
Target: every hostile run ≤ the clean run's peak + 100 MB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import brotli
import pytest
from sqlalchemy import Engine

from tests.test_faults import page, rss, sources_file
from tests.webserver import TestWeb, static

# slow: each run in a child process of its own, to read its peak RSS
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent

_CHILD = """
import json, sys
from etl.config import load_settings, load_sources
from etl.jobs.cycle import run_cycle
from etl.jobs.runs import run_record
from etl.models import RunKind
from etl.store import db
settings = load_settings(sys.argv[1])
engine = db.get_engine(db.connect(settings))
with run_record(engine, RunKind.MANUAL, {}, report_kind="ingest") as run:
    run_cycle(engine, settings, run_id=run.id, registry=load_sources(settings.sources_file), force=True,
              report=run.report)
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"peak": peak, "new": run.counts.articles_new, "errors": run.counts.errors,
                  "feeds_failed": run.counts.feeds_failed}))
"""


def _run(sources: Path) -> dict[str, int]:
    started = time.monotonic()
    env = {**os.environ, "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1", "NEWSETL_STORY_EMBEDDING": "0",
           "NEWSETL_MAX_ENTRIES_PER_POLL": "10"}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(sources)], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    print(f"{sources.parent.name} run: {time.monotonic() - started:.1f}s")
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_peak_rss_under_hostile_input_stays_within_the_clean_runs_plus_100_mb(
        engine: Engine, tmp_path: Path) -> None:
    zeros = b"\0" * 300_000_000
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    gzip_bomb = gz.compress(zeros) + gz.flush()
    br_bomb = brotli.compress(zeros, quality=1)
    del zeros
    with TestWeb() as web:
        clean_items = [{"title": f"Clean {i}", "link": web.url(f"/c/{i}"), "guid": f"c{i}"} for i in range(5)]
        web.route("/clean.xml", static(rss(clean_items), content_type="application/rss+xml"))
        for i in range(5):
            web.route(f"/c/{i}", static(page(f"Clean {i}")))
        hostile = [
            {"title": "T" * 1_000_000, "link": web.url("/h/bigtitle"), "guid": "bigtitle"},
            {"title": "Nul\x00", "link": web.url("/h/br"), "guid": "nul\x00guid"},       # page: br bomb
            {"title": "Gz", "link": web.url("/h/gz"), "guid": "g" * 8192},              # page: gzip bomb
            {"title": "Long link", "link": web.url("/h/" + "l" * 8192), "guid": "longlink"},
        ]
        web.route("/hostile.xml", static(rss(hostile), content_type="application/rss+xml"))
        web.route("/h/bigtitle", static(page("big title")))
        web.route("/h/br", static(br_bomb, headers={"Content-Encoding": "br"}))
        web.route("/h/gz", static(gzip_bomb, headers={"Content-Encoding": "gzip"}))
        web.route("/brfeed.xml", static(br_bomb, headers={"Content-Encoding": "br"}))
        huge = rss([{"title": f"E{i}", "link": web.url(f"/e/{i}"), "guid": f"e{i}"} for i in range(100_000)])
        web.route("/huge.xml", static(huge, content_type="application/rss+xml"))
        for i in range(10):
            web.route(f"/e/{i}", static(page(f"entry {i}")))

        (tmp_path / "clean").mkdir()
        (tmp_path / "hostile").mkdir()
        clean = _run(sources_file(tmp_path / "clean", {"clean": [web.url("/clean.xml")]}))
        bad = _run(sources_file(tmp_path / "hostile", {
            "hostile": [web.url("/hostile.xml"), web.url("/brfeed.xml"), web.url("/huge.xml")]}))
    print(f"peak RSS: clean run {clean['peak'] / 1e6:.0f} MB, hostile run {bad['peak'] / 1e6:.0f} MB")
    assert clean["new"] == 5 and clean["errors"] == 0
    # the hostile run completed: 3 hostile pages + 10 capped entries loaded, the bomb feed and
    # the long link recorded as errors
    assert bad["new"] == 13 and bad["feeds_failed"] == 1, bad
    assert bad["peak"] <= clean["peak"] + 100_000_000, (clean, bad)
