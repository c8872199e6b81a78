"""One polling cycle over 1,000 feeds vs a bare async httpx loop doing the same requests.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python bench/bench_polling.py [--feeds 1000] [--hosts 200] [--reps 5]

A separate process serves the feeds from many loopback addresses (127.0.10.1 … 127.0.10.N,
all on one port): 90 % answer 304 to the ETag they gave, 10 % change on every request and
answer 200 with 20 new entries. The database is a throwaway one created on the server of
TEST_DATABASE_URL (NEWSETL_DATABASE_URL also works) and dropped at the end.

- cycle: the real poll path of ``etl.jobs.polling`` — lease in PostgreSQL (FOR UPDATE SKIP LOCKED),
  conditional GET through the polite Fetcher, body hash, parse when changed, new-entry lookup,
  schedule, one batched write of the poll log and feed state per chunk; 4 lease loops side by
  side, as the ingest flow's 4 task threads do. Articles are not fetched (that is the batch
  stage, not the polling cycle).
- bare: ``httpx.AsyncClient`` + ``asyncio.gather`` sending the same 1,000 conditional GETs and
  reading the bodies; no DB, no parsing, no politeness.
- bare_threads (extra, tougher baseline): the same with a sync ``httpx.Client`` in 32 threads.

Each measurement runs in a fresh child process (so its peak RSS is its own), alternating
bare/bare_threads/cycle; medians of ``--reps`` runs are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FEEDS_PER_HOST = 5
CHANGED_EVERY = 10          # feed n changes on every request when n % 10 == 0
NEW_ENTRIES = 20
CONCURRENCY = 32            # global cap, the same for both sides
MIN_REQUEST_INTERVAL = 0.05  # per host, seconds (cycle only: the bare loop has no politeness)


def host_of_feed(n: int) -> str:
    return f"127.0.10.{n // FEEDS_PER_HOST + 1}"


def feed_url(n: int, port: int) -> str:
    return f"http://{host_of_feed(n)}:{port}/feed/{n}.xml"


# -- the server (its own process) -------------------------------------------------------------

def _body(n: int, version: int, port: int) -> bytes:
    now = datetime.now(UTC)
    host = host_of_feed(n)
    items = "".join(
        f"<item><title>Feed {n} story {version}-{i}: ministers meet on migration</title>"
        f"<link>http://{host}:{port}/a/{n}/{version}/{i}</link><guid isPermaLink=\"false\">urn:b:{n}:{version}:{i}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=3 * i), usegmt=True)}</pubDate>"
        f"<description>Summary of story {version}-{i} of feed {n}: officials from the region met to "
        f"discuss the crossing, the numbers and the money promised last year.</description></item>"
        for i in range(NEW_ENTRIES)
    )
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed {n}</title>'
            f"<link>http://{host}:{port}/</link>{items}</channel></rss>").encode()


def serve(port: int, hosts: int, ready: multiprocessing.Event) -> None:
    versions: dict[int, int] = {}
    static: dict[int, bytes] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                path = lines[0].split(b" ")[1].decode()
                inm = None
                for line in lines[1:]:
                    if line[:14].lower() == b"if-none-match:":
                        inm = line[14:].strip().decode()
                n = int(path.rsplit("/", 1)[1].split(".")[0])
                if n % CHANGED_EVERY == 0:
                    v = versions[n] = versions.get(n, 0) + 1
                    etag, status, body = f'"{n}-{v}"', 200, _body(n, v, port)
                else:
                    etag = f'"{n}-1"'
                    if inm == etag:
                        status, body = 304, b""
                    else:
                        status = 200
                        body = static.get(n) or static.setdefault(n, _body(n, 1, port))
                reason = b"OK" if status == 200 else b"Not Modified"
                head_out = (b"HTTP/1.1 %d %s\r\nETag: %s\r\nContent-Type: application/rss+xml; charset=utf-8\r\n"
                            b"Content-Length: %d\r\n\r\n" % (status, reason, etag.encode(), len(body)))
                writer.write(head_out + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(handle, f"127.0.10.{h + 1}", port, backlog=512) for h in range(hosts)]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.10.1", 0))
        return s.getsockname()[1]


# -- the two measured sides (child processes) -------------------------------------------------

def run_bare(port: int, feeds: int) -> dict:
    import httpx

    from etl.config import load_settings

    ua = load_settings().user_agent
    # Steady state: unchanged feeds send the ETag they were given; changed ones an old one.
    requests = [(feed_url(n, port), f'"{n}-1"' if n % CHANGED_EVERY else f'"{n}-0"') for n in range(feeds)]

    async def main() -> list[tuple[int, int]]:
        # The same pool as the Fetcher: as many connections as the concurrency cap.
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(limits=limits, timeout=30,
                                     headers={"User-Agent": ua, "Accept-Encoding": "gzip, deflate, br"}) as client:
            sem = asyncio.Semaphore(CONCURRENCY)

            async def one(url: str, etag: str) -> tuple[int, int]:
                async with sem:
                    r = await client.get(url, headers={"If-None-Match": etag})
                    return r.status_code, len(r.content)

            return await asyncio.gather(*(one(u, e) for u, e in requests))

    rss_before = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    out = asyncio.run(main())
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "cpu_s": time.process_time() - c0, "requests": len(out), "n304": sum(1 for s, _ in out if s == 304),
            "n200": sum(1 for s, _ in out if s == 200), "rss_before_mb": rss_before, "peak_rss_mb": _peak_mb()}


def run_bare_threads(port: int, feeds: int) -> dict:
    """A second, tougher baseline (not asked for by the target): the same requests with a
    sync httpx.Client shared by 32 threads, the transport the Fetcher itself uses."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from etl.config import load_settings

    ua = load_settings().user_agent
    requests = [(feed_url(n, port), f'"{n}-1"' if n % CHANGED_EVERY else f'"{n}-0"') for n in range(feeds)]
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    rss_before = _rss_mb()
    with httpx.Client(limits=limits, timeout=30,
                      headers={"User-Agent": ua, "Accept-Encoding": "gzip, deflate, br"}) as client:
        def one(req: tuple[str, str]) -> tuple[int, int]:
            r = client.get(req[0], headers={"If-None-Match": req[1]})
            return r.status_code, len(r.content)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            out = list(pool.map(one, requests))
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "requests": len(out), "n304": sum(1 for s, _ in out if s == 304),
            "n200": sum(1 for s, _ in out if s == 200), "rss_before_mb": rss_before, "peak_rss_mb": _peak_mb()}


def run_cycle(db_url: str, feeds: int, tasks: int) -> dict:
    from dataclasses import replace

    from sqlalchemy import text

    from etl import store
    from etl.config import load_settings
    from etl.fetch.http import Fetcher
    from etl.jobs import polling
    from etl.store import db

    settings = replace(load_settings(), allow_private_networks=True, fetch_concurrency=CONCURRENCY,
                       per_host_concurrency=2, poll_chunk_size=100)
    engine = db.get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE feeds SET next_poll_at = now()"))  # the whole registry is due
        conn.execute(text("SELECT 1"))
    # As the flows run it: per-host spacing shared through PostgreSQL (one reservation per request).
    # BENCH_SHARED_SLOTS=0 measures the per-process pacing alone, for comparison.
    shared = os.environ.get("BENCH_SHARED_SLOTS", "1") != "0"
    slots = store.HostSlots(engine) if shared else None
    with Fetcher(settings, host_slots=slots) as fetcher:
        rss_before = _rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(max_workers=tasks) as pool:  # the flow's task threads
            results = polling.poll_due(engine, fetcher, settings, None, loops=tasks, submit=pool.submit)
        # The flow commits the held-back validators once the new entries are loaded (page
        # fetching is not part of this benchmark); counted in the cycle's time.
        store.commit_validators(engine, [r.pending_validators for r in results if r.pending_validators])
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
    outs = [r.outcome for r in results]
    return {"seconds": seconds, "cpu_s": cpu, "slot_statements": None if slots is None else [slots.statements, slots.requests],
            "requests": len(outs), "n304": sum(1 for o in outs if o.http_status == 304),
            "n200": sum(1 for o in outs if o.http_status == 200), "failed": sum(1 for o in outs if o.failed),
            "entries_new": sum(o.entries_new for o in outs), "rss_before_mb": rss_before, "peak_rss_mb": _peak_mb(),
            "errors": [f"{o.url}: {o.error_kind}: {o.error}" for o in outs if o.failed][:5]}


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_mb() -> float:
    """Peak RSS of this process. VmHWM, not ru_maxrss: ru_maxrss survives execve, so a child
    started by a 94 MB parent would report at least 94 MB whatever it used."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- driver -----------------------------------------------------------------------------------

def child(args: argparse.Namespace) -> None:
    if args.mode == "bare":
        out = run_bare(args.port, args.feeds)
    elif args.mode == "bare_threads":
        out = run_bare_threads(args.port, args.feeds)
    else:
        out = run_cycle(args.db, args.feeds, args.tasks)
    print(json.dumps(out))


def setup_db(base: str) -> tuple[str, str]:
    import psycopg
    from sqlalchemy.engine import make_url

    from etl.store import db, migrations

    name = f"newsetl_bench_{uuid.uuid4().hex[:8]}"
    admin = make_url(db.to_sqlalchemy_url(base)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(db.to_sqlalchemy_url(base)).set(database=name).render_as_string(hide_password=False)
    migrations.upgrade(url)
    return url, name


def drop_db(base: str, name: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    from etl.store import db

    admin = make_url(db.to_sqlalchemy_url(base)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--mode", choices=["bare", "bare_threads", "cycle"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--db")
    args = ap.parse_args()
    if args.mode:
        child(args)
        return

    base = os.environ.get("TEST_DATABASE_URL") or os.environ.get("NEWSETL_DATABASE_URL")
    if not base:
        sys.exit("set TEST_DATABASE_URL (a PostgreSQL server where a throwaway database may be created)")
    hosts = (args.feeds + FEEDS_PER_HOST - 1) // FEEDS_PER_HOST
    if hosts > 254:
        sys.exit("at most 1,270 feeds (one /24 of loopback addresses)")
    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=serve, args=(port, hosts, ready), daemon=True)
    server.start()
    ready.wait(30)
    url, name = setup_db(base)
    try:
        from etl import store
        from etl.config import parse_sources
        from etl.store import db

        registry = "\n".join(
            f'[[sources]]\nslug = "h{h}"\nmin_request_interval = {MIN_REQUEST_INTERVAL}\n'
            + "\n".join(f'  [[sources.feeds]]\n  url = "{feed_url(n, port)}"\n  language = "en"'
                        for n in range(h * FEEDS_PER_HOST, min((h + 1) * FEEDS_PER_HOST, args.feeds)))
            for h in range(hosts))
        engine = db.get_engine(url)
        store.sync_sources(engine, parse_sources(registry))
        # Warm-up cycle (not measured): every feed answers 200 once and its validators are stored.
        env = {**os.environ, "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1", "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, __file__, "--feeds", str(args.feeds), "--port", str(port), "--db", url,
               "--tasks", str(args.tasks)]
        warm = json.loads(subprocess.run(cmd + ["--mode", "cycle"], env=env, check=True,
                                         capture_output=True, text=True).stdout)
        print(f"warm-up cycle: {warm}", file=sys.stderr)
        runs: dict[str, list[dict]] = {"bare": [], "bare_threads": [], "cycle": []}
        for rep in range(args.reps):
            for mode in ("bare", "bare_threads", "cycle"):
                out = json.loads(subprocess.run(cmd + ["--mode", mode], env=env, check=True,
                                                capture_output=True, text=True).stdout)
                runs[mode].append(out)
                print(f"rep {rep} {mode}: {out}", file=sys.stderr)
        med = {m: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "peak_rss_mb", "rss_before_mb")}
               for m, rs in runs.items()}
        ratio = med["bare"]["seconds"] / med["cycle"]["seconds"]
        summary = {
            "feeds": args.feeds, "hosts": hosts, "reps": args.reps, "tasks": args.tasks,
            "concurrency": CONCURRENCY, "min_request_interval": MIN_REQUEST_INTERVAL,
            "cycle_seconds_median": round(med["cycle"]["seconds"], 3),
            "cycle_seconds_all": [round(r["seconds"], 3) for r in runs["cycle"]],
            "bare_seconds_median": round(med["bare"]["seconds"], 3),
            "bare_seconds_all": [round(r["seconds"], 3) for r in runs["bare"]],
            "bare_threads_seconds_median": round(med["bare_threads"]["seconds"], 3),
            "bare_threads_seconds_all": [round(r["seconds"], 3) for r in runs["bare_threads"]],
            "rate_ratio_cycle_vs_bare_threads": round(med["bare_threads"]["seconds"] / med["cycle"]["seconds"], 3),
            "cycle_feeds_per_s": round(args.feeds / med["cycle"]["seconds"], 1),
            "bare_requests_per_s": round(args.feeds / med["bare"]["seconds"], 1),
            "rate_ratio_cycle_vs_bare": round(ratio, 3),
            "cycle_peak_rss_mb": round(med["cycle"]["peak_rss_mb"], 1),
            "cycle_rss_growth_mb": round(med["cycle"]["peak_rss_mb"] - med["cycle"]["rss_before_mb"], 1),
            "bare_peak_rss_mb": round(med["bare"]["peak_rss_mb"], 1),
            "bare_rss_growth_mb": round(med["bare"]["peak_rss_mb"] - med["bare"]["rss_before_mb"], 1),
            "cycle_cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs["cycle"]), 3),
            "bare_cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs["bare"]), 3),
            "cycle_checks": {k: runs["cycle"][-1][k] for k in ("n304", "n200", "failed", "entries_new")},
            "bare_checks": {k: runs["bare"][-1][k] for k in ("n304", "n200")},
            "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg(),
        }
        print(json.dumps(summary, indent=2))
    finally:
        db.get_engine(url).dispose()
        drop_db(base, name)
        server.terminate()


if __name__ == "__main__":
    main()
