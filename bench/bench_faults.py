"""Hostile-input costs, before and after the caps of issue 13, in child processes of their own.

    python -m bench.bench_faults [--entries 20000] [--rounds 3]

1. Parsing a feed that lists ``--entries`` entries with the per-poll cap of 500: feedparser over
   the whole document (what ``parse_feed`` did before; the baseline) vs ``parse_feed`` now (cut
   after the 500th entry). CPU seconds of this process, median of ``--rounds``, interleaved.
2. Decompression bombs (300 MB of zeros as br, gzip, deflate) fetched with a 10 MB cap: peak
   RSS (VmHWM since exec) of a child that first fetches a clean 1 MB page, then the bomb.
   The baseline is the same fetch with httpx's own decoding (``resp.iter_bytes()``, cap checked
   after each decoded chunk), which is what ``Fetcher`` did before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_BASELINE_CHILD = """
import json, sys, httpx
clean, bomb, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
def peak():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
with httpx.Client() as c:
    c.get(clean)
    before = peak()
    size = 0
    with c.stream("GET", bomb) as r:
        for chunk in r.iter_bytes():
            size += len(chunk)
            if size > cap:
                break
print(json.dumps({"clean_rss": before, "bomb_rss": peak()}))
"""


def _feed(n: int) -> bytes:
    items = "".join(f"<item><title>T{i}</title><link>http://h.example/{i}</link><guid>g{i}</guid></item>"
                    for i in range(n))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


def bench_parse(entries: int, rounds: int) -> dict[str, object]:
    import feedparser

    from etl.parse.feeds import parse_feed

    doc = _feed(entries)
    base, ours = [], []
    for r in range(rounds):
        for side in (("base", "ours") if r % 2 == 0 else ("ours", "base")):
            t = time.process_time()
            if side == "base":
                feedparser.parse(doc, resolve_relative_uris=True, sanitize_html=True)
                base.append(time.process_time() - t)
            else:
                parsed = parse_feed(doc, "application/rss+xml", "http://h.example/", 500)
                assert len(parsed.entries) == 500
                ours.append(time.process_time() - t)
    return {"entries": entries, "baseline_cpu_s": base, "ours_cpu_s": ours,
            "baseline_median": statistics.median(base), "ours_median": statistics.median(ours)}


def bench_bombs() -> list[dict[str, object]]:
    import brotli

    sys.path.insert(0, str(REPO))
    from tests.test_faults_http import _CHILD
    from tests.webserver import TestWeb, static

    zeros = b"\0" * 300_000_000
    gz, df = zlib.compressobj(9, zlib.DEFLATED, 31), zlib.compressobj(9, zlib.DEFLATED, 15)
    bombs = {"br": brotli.compress(zeros, quality=1), "gzip": gz.compress(zeros) + gz.flush(),
             "deflate": df.compress(zeros) + df.flush()}
    del zeros
    out = []
    env = {**os.environ, "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1"}
    with TestWeb() as web:
        web.route("/clean", static(b"<p>" + b"x" * 1_000_000 + b"</p>"))
        for enc, body in bombs.items():
            web.route(f"/{enc}", static(body, headers={"Content-Encoding": enc}))
        for enc in bombs:
            row: dict[str, object] = {"encoding": enc, "compressed_bytes": len(bombs[enc])}
            for side, code in (("baseline", _BASELINE_CHILD), ("ours", _CHILD)):
                res = subprocess.run([sys.executable, "-c", code, web.url("/clean"), web.url(f"/{enc}"), "10000000"],
                                     capture_output=True, text=True, env=env, cwd=REPO, timeout=600, check=True)
                r = json.loads(res.stdout.strip().splitlines()[-1])
                row[f"{side}_growth_mb"] = round((r["bomb_rss"] - r["clean_rss"]) / 1e6, 1)
            out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps({"parse": bench_parse(args.entries, args.rounds), "bombs": bench_bombs()}, indent=1))


if __name__ == "__main__":
    main()
