"""End to end: ``newsetl ingest --force`` vs a bare fetch + trafilatura + COPY script, same pages.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python bench/bench_e2e.py [--pages 1000] [--rounds 3] [--hosts 8]

Corpus: the 181 real pages of ``../shared/data/extraction/zyte-aeb`` (Zyte article-extraction
benchmark), each copied with one distinct paragraph until there are ``--pages`` pages (so no two
bodies are byte-identical, as on a real backfill). A separate process serves them from
``--hosts`` loopback addresses (127.0.21.1 …), one RSS feed per host listing its pages.

- bare: one process, ``httpx.Client`` in 8 threads fetching the feeds' pages,
  ``trafilatura.bare_extraction`` in ``ProcessPoolExecutor(2)`` fed as each page arrives, one
  COPY of every result into a plain table. No politeness, no dedup, no archive, no stories.
- newsetl: ``newsetl -v ingest --force`` in its own process against a fresh database, with a
  Prefect server the bench started once (as a deployment has one), archive on, stories on
  (the sentence encoder on when the ``crosslingual`` extra is installed), politeness interval 0
  (the bench's registry says ``min_request_interval = 0``; nothing else is changed).

Rounds alternate which side runs first. For each run: wall time of the whole process (start to
exit), CPU of its process tree and of the PostgreSQL backends serving its database (sampled
with psutil every 0.1 s: a process's last 0.1 s may be missed; both sides are measured the same
way), CPU of the Prefect server during the run, peak RSS of the process tree (sum over its
processes). Reported: medians, the paired ratio of rates per round and its median, and the
newsetl side's stage breakdown as its own cycle timers logged it (busy seconds summed over
threads: stages overlap, so they add up to more than the wall time).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "extraction" / "zyte-aeb"
if not DATA.exists():
    DATA = Path("/work/shared/data/extraction/zyte-aeb")

BARE_THREADS = 8
BARE_PROCESSES = 2


def host(h: int) -> str:
    return f"127.0.21.{h + 1}"


def page_url(i: int, hosts: int, port: int) -> str:
    return f"http://{host(i % hosts)}:{port}/a/{i}.html"


# -- corpus and server ------------------------------------------------------------------------

def load_corpus() -> list[tuple[str, bytes]]:
    """(title, html) of the 181 pages, in a stable order; a marker comment is put at the end of
    the first body paragraph the ground truth names, where each copy's own paragraph goes."""
    truth = json.loads((DATA / "ground-truth.json").read_text(encoding="utf-8"))
    out = []
    for path in sorted((DATA / "html").glob("*.html.gz")):
        html = gzip.decompress(path.read_bytes())
        html = _mark_body(html, truth.get(path.name.split(".")[0], {}).get("articleBody", ""))
        m = re.search(rb"<title[^>]*>(.*?)</title>", html, re.S | re.I)
        title = re.sub(r"\s+", " ", m.group(1).decode("utf-8", "replace")).strip() if m else path.stem[:12]
        out.append((title or path.stem[:12], html))
    return out


def page_copy(corpus: list[tuple[str, bytes]], i: int) -> tuple[str, bytes]:
    """Copy ``i``: page ``i % 181`` with one distinct paragraph after its first paragraph."""
    title, html = corpus[i % len(corpus)]
    extra = (f" (edition note {i}: reference {i * 7919 % 100003}, version {i // len(corpus)})").encode()
    # inside the article body, so that extraction keeps it and no two copies have the same text
    if MARK in html:
        return title, html.replace(MARK, extra)
    at = html.find(b"</p>")
    extra = b"<p>" + extra + b"</p>"
    return title, (html[:at + 4] + extra + html[at + 4:] if at >= 0
                   else html.replace(b"</body>", extra + b"</body>", 1))


MARK = b"<!--bench-copy-->"


def _mark_body(html: bytes, body: str) -> bytes:
    """Marks a place inside the article body: right after the first words of a body line (from
    the ground truth, else from trafilatura's own text) found in the HTML, so that each copy's
    note lands in the text extraction keeps."""
    import trafilatura

    lines = body.splitlines() + (trafilatura.extract(html) or "").splitlines()
    marked = 0
    for line in lines:
        words = line.split()
        for n in (8, 5):
            probe = " ".join(words[:n]).encode()
            if len(words) >= n and probe in html:
                html = html.replace(probe, probe + MARK)  # every copy of it (meta, JSON-LD, body)
                marked += 1
                break
        if marked == 6:
            break
    return html


def feed_body(h: int, hosts: int, pages: int, port: int, titles: list[str]) -> bytes:
    now = datetime.now(UTC)
    from xml.sax.saxutils import escape

    items = "".join(
        f"<item><title>{escape(titles[i])}</title><link>{page_url(i, hosts, port)}</link>"
        f"<guid isPermaLink=\"true\">{page_url(i, hosts, port)}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=i), usegmt=True)}</pubDate></item>"
        for i in range(h, pages, hosts))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Bench {h}</title>'
            f"<link>http://{host(h)}:{port}/</link>{items}</channel></rss>").encode()


def serve(port: int, hosts: int, pages: int, ready: multiprocessing.Event) -> None:
    corpus = load_corpus()
    copies = [page_copy(corpus, i) for i in range(pages)]
    titles = [t for t, _ in copies]
    feeds = {h: feed_body(h, hosts, pages, port, titles) for h in range(hosts)}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode()
                local = writer.get_extra_info("sockname")[0]
                h = int(local.rsplit(".", 1)[1]) - 1
                status, ctype, body = 404, "text/plain", b"not found"
                if path == "/feed.xml":
                    status, ctype, body = 200, "application/rss+xml; charset=utf-8", feeds[h]
                elif path.startswith("/a/"):
                    i = int(path[3:].split(".")[0])
                    if 0 <= i < pages:
                        status, ctype, body = 200, "text/html; charset=utf-8", copies[i][1]
                reason = b"OK" if status == 200 else b"Not Found"
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                             % (status, reason, ctype.encode(), len(body)) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, IndexError, ValueError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(handle, host(h), port, backlog=512) for h in range(hosts)]
        ready.set()
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


def free_port(addr: str) -> int:
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


# -- the bare side (its own process) ----------------------------------------------------------

_IMPORTED_AT: list[float] = []


def _bare_extract(html: bytes, url: str) -> tuple[tuple[str, str | None, str | None, str | None], float]:
    """The row, and on a worker's first page the CPU its start and imports took (start-up)."""
    import trafilatura

    startup = 0.0
    if not _IMPORTED_AT:
        _IMPORTED_AT.append(time.process_time())
        startup = _IMPORTED_AT[0]
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True)
    if doc is None:
        return (url, None, None, None), startup
    d = doc if isinstance(doc, dict) else doc.as_dict()
    return (url, d.get("title"), d.get("date"), d.get("text")), startup


def run_bare(hosts: int, port: int, db_url: str) -> dict:
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed

    import httpx
    import psycopg

    startup_cpu = time.process_time()
    t0 = time.perf_counter()
    cpu: dict[str, float] = {"fetch": 0.0}
    lock = threading.Lock()
    limits = httpx.Limits(max_connections=BARE_THREADS, max_keepalive_connections=BARE_THREADS)
    with httpx.Client(limits=limits, timeout=30) as client, \
            ThreadPoolExecutor(BARE_THREADS) as threads, ProcessPoolExecutor(BARE_PROCESSES) as procs:
        c0 = time.thread_time()
        feeds = [client.get(f"http://{host(h)}:{port}/feed.xml").text for h in range(hosts)]
        urls = [u for f in feeds for u in re.findall(r"<link>(http[^<]+/a/\d+\.html)</link>", f)]
        cpu["poll"] = time.thread_time() - c0

        def fetch(url: str) -> tuple[str, bytes]:
            c = time.thread_time()
            body = client.get(url).content
            with lock:
                cpu["fetch"] += time.thread_time() - c
            return url, body

        c0 = time.thread_time()
        extractions = []
        for fut in as_completed([threads.submit(fetch, u) for u in urls]):
            url, body = fut.result()
            extractions.append(procs.submit(_bare_extract, body, url))
        done = [f.result() for f in extractions]
        rows = [row for row, _ in done]
        cpu["extract_startup"] = sum(startup for _, startup in done)
        cpu["extract_submit"] = time.thread_time() - c0
    c0 = time.thread_time()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bare_pages")
        conn.execute("CREATE TABLE bare_pages (url text PRIMARY KEY, title text, published text, body text)")
        with conn.cursor() as cur, cur.copy("COPY bare_pages (url, title, published, body) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        loaded = conn.execute("SELECT count(*) FROM bare_pages WHERE body IS NOT NULL").fetchone()[0]
    cpu["load"] = time.thread_time() - c0
    cpu["process_at_start"] = startup_cpu
    return {"seconds_inside": time.perf_counter() - t0, "pages": len(urls), "loaded": loaded, "stage_cpu": cpu}


# -- measuring a child process ----------------------------------------------------------------

class Sampler(threading.Thread):
    """Samples CPU and RSS of a process tree and of the PostgreSQL backends on one database."""

    def __init__(self, root_pid: int, db_url: str | None, dbname: str | None, prefect_pids: list[int]) -> None:
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(root_pid)
        self.tree_cpu: dict[int, float] = {}
        self.pg_cpu: dict[int, float] = {}
        self.peak_rss = 0
        self.peak_pss = 0    # RSS summed over a forked tree counts shared pages once per process
        self.proc_peak: dict[int, tuple[str, int]] = {}  # pid -> (role, peak RSS)
        self.roles: dict[int, str] = {}  # pid -> main / forkserver / extract_worker / other
        self.timeline: list[tuple[float, int, int]] = []  # (seconds, main RSS MB, tree RSS MB) every 5 s
        self.started = time.monotonic()
        self.samples = 0
        self.stop = threading.Event()
        self.dbname = dbname
        self.conn = None
        if db_url:
            import psycopg

            self.conn = psycopg.connect(db_url, autocommit=True)
        self.prefect = [psutil.Process(p) for p in prefect_pids]
        self.prefect_start = self._prefect_cpu()

    def _prefect_cpu(self) -> float:
        total = 0.0
        for p in self.prefect:
            try:
                for q in [p, *p.children(recursive=True)]:
                    t = q.cpu_times()
                    total += t.user + t.system
            except self.psutil.Error:
                pass
        return total

    def sample(self) -> None:
        ps = self.psutil
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except ps.Error:
            procs = []
        rss = pss = 0
        full = self.samples % 10 == 0  # PSS reads smaps: once a second is enough
        self.samples += 1
        for p in procs:
            try:
                t = p.cpu_times()
                self.tree_cpu[p.pid] = t.user + t.system
                if p.pid not in self.roles:
                    self.roles[p.pid] = self._role(p)
                r = p.memory_info().rss
                rss += r
                if full:
                    pss += p.memory_full_info().pss
                if r > self.proc_peak.get(p.pid, ("", 0))[1]:
                    role = "main" if p.pid == self.root.pid else " ".join(p.cmdline()[1:3])[-60:]
                    self.proc_peak[p.pid] = (role, r)
            except ps.Error:
                pass
        self.peak_rss = max(self.peak_rss, rss)
        if self.samples % 50 == 1:
            try:
                main_rss = self.root.memory_info().rss
            except ps.Error:
                main_rss = 0
            self.timeline.append((round(time.monotonic() - self.started), main_rss >> 20, rss >> 20))
        self.peak_pss = max(self.peak_pss, pss)
        if self.conn is not None:
            pids = [r[0] for r in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.dbname,))]
            for pid in pids:
                try:
                    t = ps.Process(pid).cpu_times()
                    self.pg_cpu[pid] = t.user + t.system
                except ps.Error:
                    pass

    def _role(self, p) -> str:  # type: ignore[no-untyped-def]
        """What a process of the tree is: the extraction workers are forked by the fork server
        (newsetl) or by the main process (the bare script's ProcessPoolExecutor)."""
        if p.pid == self.root.pid:
            return "main"
        cmd = " ".join(p.cmdline())
        parent = p.ppid()
        if parent != self.root.pid and parent not in self.roles:
            self.roles[parent] = self._role(self.psutil.Process(parent))
        if self.roles.get(parent) == "forkserver":  # forked by it: its command line too
            return "extract_worker"
        if "forkserver" in cmd:
            return "forkserver"
        if "resource_tracker" in cmd:
            return "other"
        return "extract_worker" if parent == self.root.pid else "other"

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(0.1)

    def finish(self) -> dict:
        self.stop.set()
        self.join()
        if self.conn is not None:
            self.conn.close()
        by_role: dict[str, float] = {}
        for pid, secs in self.tree_cpu.items():
            role = self.roles.get(pid, "other")
            by_role[role] = by_role.get(role, 0.0) + secs
        return {"tree_cpu_s": sum(self.tree_cpu.values()), "main_cpu_s": self.tree_cpu.get(self.root.pid, 0.0),
                "cpu_s_by_role": by_role,
                "pg_cpu_s": sum(self.pg_cpu.values()),
                "prefect_cpu_s": self._prefect_cpu() - self.prefect_start, "peak_rss_mb": self.peak_rss / 2**20,
                "peak_pss_mb": self.peak_pss / 2**20, "rss_timeline": self.timeline,
                "peak_rss_mb_by_process": sorted(((role, round(r / 2**20)) for role, r in self.proc_peak.values()),
                                                 key=lambda x: -x[1])[:6]}


def measured(cmd: list[str], env: dict, db_url: str | None, dbname: str | None,
             prefect_pids: list[int]) -> tuple[dict, str, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid, db_url, dbname, prefect_pids)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    stats = sampler.finish()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}):\n{err[-4000:]}")
    return {"seconds": seconds, **stats}, out, err


# -- databases, Prefect -------------------------------------------------------------------------

def admin_url(base: str) -> str:
    from sqlalchemy.engine import make_url

    from etl.store import db

    return make_url(db.to_sqlalchemy_url(base)).set(drivername="postgresql").render_as_string(hide_password=False)


def create_db(base: str, migrate: bool, tree: Path = ROOT) -> tuple[str, str]:
    """A fresh database; ``migrate``: with the migrations of ``tree`` (each side its own schema)."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"newsetl_e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url(base)).set(database=name).render_as_string(hide_password=False)
    if migrate:
        subprocess.run([sys.executable, "-c", "import sys; from etl.store import migrations; "
                        "migrations.upgrade(sys.argv[1])", url],
                       env={**os.environ, "PYTHONPATH": str(tree)}, cwd=tree, check=True)
    return url, name


def drop_db(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prefect_idle_rate(pid: int, seconds: float = 15.0) -> float:
    """CPU seconds per second the Prefect server spends with no run (its background services):
    what a deployment's server costs anyway, reported beside its CPU during a run."""
    import psutil

    def cpu() -> float:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        return sum(t.user + t.system for t in (p.cpu_times() for p in procs))

    time.sleep(5)  # past its start-up
    before = cpu()
    time.sleep(seconds)
    return (cpu() - before) / seconds


def start_prefect(home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port("127.0.0.1")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_LOGGING_LEVEL": "WARNING"}
    exe = str(Path(sys.executable).with_name("prefect"))
    proc = subprocess.Popen([exe, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return proc, api
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the Prefect server did not start in 120 s")


STAGES_RE = re.compile(r"stage seconds: (\{.*\})")
CPU_RE = re.compile(r"stage cpu seconds: (\{.*\})")


# -- the CPU budget table ---------------------------------------------------------------------

LINES = ("start-up", "poll and parse", "fetch", "archive", "extraction", "normalize and load",
         "PostgreSQL (outside stories)", "Prefect client + rest of main", "Prefect server", "story stage",
         "other processes")
STORY_LINES = ("story stage",)


def cpu_lines(stats: dict, side: str) -> dict[str, float | None]:
    """One run's CPU in seconds per line of the budget (None: not measured for this side).
    How each line is measured: docs/benchmarks.md, "The CPU budget table"."""
    roles = stats.get("cpu_s_by_role", {})
    main, workers = roles.get("main", 0.0), roles.get("extract_worker", 0.0)
    led = stats.get("stage_cpu", {})
    pg = stats.get("pg_cpu_s", 0.0)
    out: dict[str, float | None] = dict.fromkeys(LINES)
    out["other processes"] = roles.get("other", 0.0)
    if side == "bare":
        startup = led.get("process_at_start", 0.0) + led.get("extract_startup", 0.0)
        staged = sum(led.get(k, 0.0) for k in ("poll", "fetch", "extract_submit", "load"))
        out.update({"start-up": startup, "poll and parse": led.get("poll"), "fetch": led.get("fetch"),
                    "archive": 0.0, "extraction": workers - led.get("extract_startup", 0.0) + led.get("extract_submit", 0.0),
                    "normalize and load": led.get("load"), "PostgreSQL (outside stories)": pg,
                    "Prefect client + rest of main": main - led.get("process_at_start", 0.0) - staged,
                    "Prefect server": 0.0, "story stage": 0.0})
        return out
    if not led:  # a tree without the ledger: only what the processes tell
        out.update({"extraction": workers, "PostgreSQL (outside stories)": pg,
                    "Prefect server": stats.get("prefect_cpu_s", 0.0),
                    "Prefect client + rest of main": main, "start-up": roles.get("forkserver", 0.0)})
        return out
    pg_stories = stats.get("pg_cpu_by_stage", {}).get("stories", 0.0)
    staged = sum(v for k, v in led.items() if not k.startswith("process_"))

    def g(*keys: str) -> float:
        return sum(led.get(k, 0.0) for k in keys)

    out.update({
        "start-up": g("process_at_start", "encoder_load") + roles.get("forkserver", 0.0),
        "poll and parse": g("poll"), "fetch": g("fetch"), "archive": g("archive", "archive_index"),
        "extraction": workers + g("extract_submit"),
        "normalize and load": g("normalize", "load", "claims", "cycle"),
        "PostgreSQL (outside stories)": pg - pg_stories,
        "Prefect client + rest of main": main - g("process_at_start") - staged,
        "Prefect server": stats.get("prefect_cpu_s", 0.0),
        "story stage": g("stories") + pg_stories,
    })
    return out


def budget_table(runs: dict[str, list[dict]], pages: int) -> tuple[str, dict]:
    """Markdown table of the median CPU ms per page of each line, per side, and the medians."""
    sides = [s for s in ("bare", "before", "newsetl") if runs.get(s)]
    med: dict[str, dict[str, float | None]] = {}
    for side in sides:
        per_run = [cpu_lines(r, side) for r in runs[side]]
        med[side] = {}
        for line in LINES:
            vals = [r[line] for r in per_run if r[line] is not None]
            med[side][line] = round(1000 * statistics.median(vals) / pages, 2) if vals else None
        totals = [sum(v for v in r.values() if v is not None) for r in per_run]
        outside = [sum(v for k, v in r.items() if v is not None and k not in STORY_LINES) for r in per_run]
        med[side]["total"] = round(1000 * statistics.median(totals) / pages, 2)
        med[side]["total outside stories"] = round(1000 * statistics.median(outside) / pages, 2)
    head = "| CPU ms per page | " + " | ".join(sides) + (" | newsetl ÷ bare |" if "bare" in sides and "newsetl" in sides else " |")
    rows = [head, "|" + "---|" * (len(sides) + 1 + ("bare" in sides and "newsetl" in sides))]
    for line in (*LINES, "total", "total outside stories"):
        cells = ["–" if med[s][line] is None else f"{med[s][line]:.2f}" for s in sides]
        ratio = ""
        if "bare" in sides and "newsetl" in sides:
            b, n = med["bare"][line], med["newsetl"][line]
            ratio = f" {n / b:.2f} |" if b and n is not None and b >= 0.05 else " |"
        rows.append(f"| {line} | " + " | ".join(cells) + " |" + ratio)
    return "\n".join(rows), med


MAX_ENTRIES_PER_FEED = 500  # etl.config: NEWSETL_MAX_ENTRIES_PER_POLL's default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--only", choices=["bare", "newsetl"], help="run one side only (no ratio)")
    ap.add_argument("--baseline-tree", type=Path,
                    help="another checkout of newsetl (e.g. `git archive main`) run as a third side, "
                         "'before', in the same rounds: before/after in one run")
    ap.add_argument("--logs", type=Path, help="keep each newsetl run's log (stderr) in this directory")
    ap.add_argument("--mode", choices=["bare"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode == "bare":
        print(json.dumps(run_bare(args.hosts, args.port, args.db)))
        return
    base = os.environ.get("TEST_DATABASE_URL") or os.environ.get("NEWSETL_DATABASE_URL")
    if not base:
        sys.exit("set TEST_DATABASE_URL (a PostgreSQL server where throwaway databases may be created)")
    if not DATA.exists():
        sys.exit(f"{DATA} is missing: the bench needs the shared Zyte pages")
    # A poll takes at most NEWSETL_MAX_ENTRIES_PER_POLL (500) entries of a feed: more pages per
    # feed would be cut, not fetched. Spread them over enough hosts that every page is listed.
    needed = -(-args.pages // MAX_ENTRIES_PER_FEED)
    if args.hosts < needed:
        print(f"--hosts {args.hosts} raised to {needed}: a feed lists at most {MAX_ENTRIES_PER_FEED} "
              f"of the {args.pages} pages a poll takes", file=sys.stderr)
        args.hosts = needed

    port = free_port(host(0))
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=serve, args=(port, args.hosts, args.pages, ready), daemon=True)
    server.start()
    if not ready.wait(60):
        sys.exit("page server did not start")
    work = Path(tempfile.mkdtemp(prefix="newsetl-e2e-"))
    sources = work / "sources.toml"
    sources.write_text("".join(
        f'[[sources]]\nslug = "bench{h}"\nname = "Bench {h}"\nhomepage = "http://{host(h)}:{port}/"\n'
        f'min_request_interval = 0\n  [[sources.feeds]]\n  url = "http://{host(h)}:{port}/feed.xml"\n'
        f'  language = "en"\n' for h in range(args.hosts)))
    prefect, api = (None, "") if args.only == "bare" else start_prefect(work / "prefect")
    prefect_pids = [prefect.pid] if prefect else []
    idle_rate = prefect_idle_rate(prefect.pid) if prefect else 0.0
    runs: dict[str, list[dict]] = {"bare": [], "newsetl": []}
    sides = [args.only] if args.only else ["bare", "newsetl"]
    if args.baseline_tree:
        sides.append("before")
        runs["before"] = []
    bare_db, bare_name = create_db(base, migrate=False) if "bare" in sides else ("", "")
    try:
        for rnd in range(args.rounds):
            for side in (sides if rnd % 2 == 0 else sides[::-1]):
                if side == "bare":
                    cmd = [sys.executable, __file__, "--mode", "bare", "--hosts", str(args.hosts),
                           "--port", str(port), "--db", bare_db]
                    stats, out, _ = measured(cmd, {**os.environ, "PYTHONPATH": str(ROOT)}, bare_db, bare_name, [])
                    stats.update(json.loads(out))
                else:
                    tree = args.baseline_tree.resolve() if side == "before" else ROOT
                    url, name = create_db(base, migrate=True, tree=tree)
                    home = work / f"home-{rnd}"
                    env = {**os.environ, "PYTHONPATH": str(tree), "NEWSETL_DATABASE_URL": url,
                           "NEWSETL_HOME": str(home), "NEWSETL_ARCHIVE_DIR": str(home / "archive"),
                           "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1", "PREFECT_API_URL": api,
                           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
                    probe_out = work / f"probe-{side}-{rnd}.json"
                    env["BENCH_PROBE_OUT"] = str(probe_out)
                    # `newsetl -v ingest ...` as the console script runs it, with the probes of
                    # bench/e2e_probe.py (PostgreSQL CPU per stage, the encoder's load)
                    cmd = [sys.executable, os.environ.get("BENCH_PROBE_SCRIPT", str(ROOT / "bench" / "e2e_probe.py")), "-v", "ingest", "--force",
                           "--sources", str(sources)]
                    try:
                        stats, out, err = measured(cmd, env, url, name, prefect_pids)
                        if args.logs:
                            args.logs.mkdir(parents=True, exist_ok=True)
                            (args.logs / f"{side}-{rnd}.log").write_text(err)
                        probe = json.loads(probe_out.read_text()) if probe_out.exists() else {}
                        stats["pg_cpu_by_stage"] = probe.get("pg_cpu_by_stage", {})
                        stats["cpu_at_exit_s"] = probe.get("process_cpu_at_exit")
                        m = CPU_RE.findall(err)
                        stats["stage_cpu"] = json.loads(m[-1]) if m else {}
                        import psycopg

                        with psycopg.connect(url) as conn:
                            stats["loaded"] = conn.execute(
                                "SELECT count(*) FROM articles WHERE extraction_status <> 'failed'").fetchone()[0]
                            stats["rows"] = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
                            stats["statuses"] = dict(conn.execute(
                                "SELECT extraction_status, count(*) FROM articles GROUP BY 1").fetchall())
                            stats["failures"] = [r[0] for r in conn.execute(
                                "SELECT left(extraction_error, 120) FROM articles"
                                " WHERE extraction_status = 'failed' LIMIT 3")]
                        m = STAGES_RE.findall(err)
                        stats["stages"] = json.loads(m[-1]) if m else {}
                    finally:
                        drop_db(base, name)
                        shutil.rmtree(home, ignore_errors=True)
                stats["pages_per_s"] = args.pages / stats["seconds"]
                stats["cpu_ms_per_page"] = 1000 * stats["tree_cpu_s"] / args.pages
                stats["pg_cpu_ms_per_page"] = 1000 * stats["pg_cpu_s"] / args.pages
                stats["prefect_cpu_ms_per_page"] = 1000 * stats["prefect_cpu_s"] / args.pages
                runs[side].append(stats)
                print(f"round {rnd} {side}: " + json.dumps({k: round(v, 2) if isinstance(v, float) else v
                                                            for k, v in stats.items()}), file=sys.stderr, flush=True)
    finally:
        if bare_name:
            drop_db(base, bare_name)
        if prefect:
            os.killpg(prefect.pid, 15)
            prefect.wait(30)
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)

    def med(side: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[side]), 2)

    keys = ("pages_per_s", "seconds", "cpu_ms_per_page", "pg_cpu_ms_per_page", "prefect_cpu_ms_per_page",
            "peak_rss_mb", "peak_pss_mb", "loaded", "main_cpu_s")
    summary: dict = {"pages": args.pages, "hosts": args.hosts, "rounds": args.rounds,
                     "prefect_server_idle_cpu_per_s": round(idle_rate, 4),
                     "cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()}
    for side in sides:
        summary[side] = {k: med(side, k) for k in keys}
        summary[side]["peak_rss_mb_by_process_last_round"] = runs[side][-1]["peak_rss_mb_by_process"]
    if "before" in sides:
        summary["after_vs_before_rate_paired"] = [round(n["pages_per_s"] / b["pages_per_s"], 3)
                                                  for b, n in zip(runs["before"], runs["newsetl"], strict=True)]
    if "bare" in sides and "newsetl" in sides:
        ratios = [n["pages_per_s"] / b["pages_per_s"] for b, n in zip(runs["bare"], runs["newsetl"], strict=True)]
        cpu_ratios = [n["cpu_ms_per_page"] + n["pg_cpu_ms_per_page"] + n["prefect_cpu_ms_per_page"]
                      for n in runs["newsetl"]]
        bare_cpu = [b["cpu_ms_per_page"] + b["pg_cpu_ms_per_page"] for b in runs["bare"]]
        summary["rate_ratio_paired"] = [round(r, 3) for r in ratios]
        summary["rate_ratio_median"] = round(statistics.median(ratios), 3)
        summary["cpu_per_page_ratio_median"] = round(statistics.median(
            n / b for n, b in zip(cpu_ratios, bare_cpu, strict=True)), 3)
    if "before" in sides and "bare" in sides:
        summary["before_rate_ratio_paired"] = [round(n["pages_per_s"] / b["pages_per_s"], 3)
                                               for b, n in zip(runs["bare"], runs["before"], strict=True)]
        summary["before_rate_ratio_median"] = round(statistics.median(summary["before_rate_ratio_paired"]), 3)
    table, summary["cpu_budget_ms_per_page"] = budget_table(runs, args.pages)
    if "bare" in sides and "newsetl" in sides:
        outside = [sum(v for k, v in cpu_lines(n, "newsetl").items() if v is not None and k not in STORY_LINES)
                   / sum(v for v in cpu_lines(b, "bare").values() if v is not None)
                   for b, n in zip(runs["bare"], runs["newsetl"], strict=True)]
        summary["cpu_outside_stories_ratio_paired"] = [round(r, 3) for r in outside]
        summary["cpu_outside_stories_ratio_median"] = round(statistics.median(outside), 3)
    if "newsetl" in sides:
        stage_keys = sorted({k for r in runs["newsetl"] for k in r.get("stages", {})})
        summary["newsetl_stage_seconds_median"] = {
            k: round(statistics.median(r["stages"].get(k, 0.0) for r in runs["newsetl"]), 2) for k in stage_keys}
    print(json.dumps(summary, indent=2))
    print(f"\nCPU budget, ms per page (medians of {args.rounds} round(s), {args.pages} pages):\n{table}")
    for side in sides:
        if side != "bare":
            idle = statistics.median(1000 * idle_rate * r["seconds"] / args.pages for r in runs[side])
            print(f"{side}: of the Prefect server's CPU, {idle:.2f} ms per page is its idle rate "
                  f"({idle_rate * 1000:.1f} ms/s) over the run's wall time")


if __name__ == "__main__":
    main()
