"""The WARC archive's disk fills up: a real 1 MB tmpfs mounted under ``NEWSETL_ARCHIVE_DIR``.

Every article still loads; the pages that could not be archived are counted in the run's
summary, its row, ``newsetl status --json`` and the metrics, each recorded in ``ingest_errors``
(which page, why); the full disk is logged once per run; the archive stays readable by warcio
after the episode; when space returns, archiving resumes in the same process; ``reextract``
works on what was archived and says which articles have no archived page.

Mounting needs root (``mount -t tmpfs``); without it the tests skip and say so.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text
from warcio.archiveiterator import ArchiveIterator

from etl import store
from etl.config import FeedSpec, Source, load_settings
from etl.fetch.archive import ArchiveWriteError, WarcArchive, read_response
from etl.jobs.cycle import run_cycle
from etl.models import ArchiveKind
from etl.parse.pool import close_shared_pool
from tests.webserver import TestWeb, static

REPO = Path(__file__).resolve().parent.parent
DISK = "1m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MB filesystem (tmpfs), unmounted at the end."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mnt)],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("mount(8) is not installed: the full-disk tests need a small real filesystem")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {DISK} tmpfs here (root and mount(8) needed): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, timeout=30)


def _fill(disk: Path, leave: int) -> Path:
    """A file taking all but about ``leave`` bytes of the disk (what fills it is someone else)."""
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    filler = disk / "filler.bin"
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


_WORDS = ["".join(random.Random(i).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3 + i % 8))
          for i in range(4000)]


def _prose(seed: int, words: int) -> list[str]:
    """Paragraphs of words that compress poorly."""
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(_WORDS) for _ in range(60)).capitalize() + "." for _ in range(words // 60)]


def _article(i: int) -> str:
    """A page of ~64 KB, ~14 KB in the archive: a 1 MB disk holds about 70."""
    paras = "".join(f"<p>{p}</p>" for p in _prose(i, 8400))
    return (f"<html lang='en'><head><title>Story {i}</title></head><body><nav>Home</nav><article>"
            f"<h1>Story {i} of the day</h1>{paras}</article></body></html>")


def _site(web: TestWeb, n: int, start: int = 0) -> None:
    """Pages ``start`` … ``n - 1`` and a feed listing articles 0 … ``n - 1``."""
    for i in range(start, n):
        web.route(f"/news/{i}", static(_article(i)))
    items = "".join(f"<item><title>Story {i}</title><link>{web.url(f'/news/{i}')}</link><guid>s{i}</guid>"
                    f"<pubDate>Mon, 07 Dec 2026 {i // 60:02d}:{i % 60:02d}:00 GMT</pubDate></item>"
                    for i in range(n))
    web.route("/feed.xml", static(f'<?xml version="1.0"?><rss version="2.0"><channel><title>Local</title>'
                                  f"{items}</channel></rss>", content_type="application/rss+xml"))


def _sources(tmp_path: Path, web: TestWeb) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(f'[[sources]]\nslug = "local"\nname = "Local"\nmin_request_interval = 0.0\n'
                    f'  [[sources.feeds]]\n  url = "{web.url("/feed.xml")}"\n  language = "en"\n')
    return path


def _responses(directory: Path) -> int:
    """Response records in every WARC file, read start to end as any WARC tool does (raises on
    a damaged file)."""
    n = 0
    for path in sorted(directory.rglob("*.warc.gz")):
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                n += record.rec_type == "response"
                record.content_stream().read()
    return n


def _scalar(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_a_full_disk_leaves_the_warc_readable_and_the_same_writer_resumes(small_disk: Path) -> None:
    archive_dir = small_disk / "archive"
    filler = _fill(small_disk, leave=200_000)
    written, refused = [], []
    with WarcArchive(archive_dir) as archive:
        for i in range(30):
            body = _article(i).encode()
            try:
                written.append(archive.write(kind=ArchiveKind.PAGE, url=f"http://x.test/{i}", status=200,
                                             headers={"Content-Type": "text/html"}, body=body, request_headers={}))
            except ArchiveWriteError as exc:
                refused.append(exc)
        assert written and refused, (len(written), len(refused))
        assert {e.kind for e in refused} == {"ENOSPC"} and str(refused[0]) == "ENOSPC: No space left on device"
        # The partial record of each failed write was cut off: the file reads to its end.
        assert _responses(archive_dir) == len(written)
        filler.unlink()  # space returns: the same writer, no restart
        more = [archive.write(kind=ArchiveKind.PAGE, url=f"http://x.test/more/{i}", status=200,
                              headers={}, body=_article(100 + i).encode(), request_headers={}) for i in range(5)]
    assert _responses(archive_dir) == len(written) + len(more)
    for ref in written + more:
        resp = read_response(archive_dir, ref.warc_file, ref.offset, ref.length)
        assert resp.status == 200 and resp.body.startswith(b"<html")


def test_cycles_on_a_full_disk_load_everything_and_archiving_resumes_when_space_returns(
        engine: Engine, small_disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The job, in one process (a worker's): the first cycle meets the full disk, the second,
    after space returns, archives again — the writer recovered without a restart."""
    monkeypatch.setenv("NEWSETL_ARCHIVE_DIR", str(small_disk / "archive"))
    monkeypatch.setenv("NEWSETL_STORY_EMBEDDING", "0")
    settings = load_settings()
    filler = _fill(small_disk, leave=250_000)
    try:
        with TestWeb() as web:
            _site(web, 30)
            registry = [Source(slug="local", name="Local", min_request_interval=0.0,
                               feeds=(FeedSpec(url=web.url("/feed.xml"), language="en"),))]
            first_id = store.start_run(engine, "manual", {})
            with caplog.at_level("WARNING", logger="etl"):
                first = run_cycle(engine, settings, run_id=first_id, registry=registry, force=True)
            unarchived = first.report.counts.pages_unarchived
            assert first.inserted == 30 and 0 < unarchived < 30
            assert _scalar(engine, "SELECT count(*) FROM ingest_errors WHERE kind = 'archive_failed'") == unarchived
            full = [r for r in caplog.records if "could not be written" in r.getMessage()]
            assert len(full) == 1 and "ENOSPC" in full[0].getMessage()  # once per run, not per page
            assert first.report.notes() == [
                f"{unarchived} page(s) loaded without their archive copy (ENOSPC ×{unarchived}): they cannot "
                "be re-extracted; ingest_errors kind archive_failed lists them"]
            filler.unlink()
            _site(web, 40, start=30)
            second = run_cycle(engine, settings, run_id=store.start_run(engine, "manual", {}), registry=registry,
                               force=True)
        assert second.inserted == 10 and second.report.counts.pages_unarchived == 0
        assert _scalar(engine, "SELECT count(*) FROM archive_records WHERE kind = 'page'") == 40 - unarchived
        assert _responses(small_disk / "archive") == _scalar(engine, "SELECT count(*) FROM archive_records")
    finally:
        close_shared_pool()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "etl.cli", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def _metric(exposition: str, name: str) -> float:
    return sum(s.value for fam in text_string_to_metric_families(exposition) for s in fam.samples
               if s.name == name)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ingest_on_a_full_disk_exits_0_and_says_how_many_pages_were_not_archived(
        engine: Engine, prefect_harness: None, small_disk: Path, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "NEWSETL_ALLOW_PRIVATE_NETWORKS": "1",
           "NEWSETL_STORY_EMBEDDING": "0", "NEWSETL_ARCHIVE_DIR": str(small_disk / "archive"), "COLUMNS": "200"}
    filler = _fill(small_disk, leave=300_000)
    with TestWeb() as web:
        _site(web, 60)
        sources = _sources(tmp_path, web)
        out = _cli("ingest", "--sources", str(sources), "--force", env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        assert _scalar(engine, "SELECT count(*) FROM articles") == 60
        with engine.connect() as conn:
            run = conn.execute(text("SELECT id, status, pages_unarchived, notes FROM ingestion_runs")).one()
        unarchived = run.pages_unarchived
        assert run.status == "completed" and 0 < unarchived < 60
        assert f"60 new article(s), 0 updated, 0 error(s), {unarchived} page(s) not archived" in out.stdout
        assert f"{unarchived} page(s) loaded without their archive copy (ENOSPC ×{unarchived})" in run.notes
        assert "Traceback" not in out.stdout + out.stderr
        # the full disk, said once for the run (not once per page)
        assert out.stderr.count("could not be written") == 1 and "ENOSPC" in out.stderr, out.stderr
        assert _scalar(engine, "SELECT count(*) FROM ingest_errors WHERE kind = 'archive_failed' "
                               "AND detail = 'ENOSPC: No space left on device'") == unarchived

        status = _cli("status", "--json", env=env)
        archive = json.loads(status.stdout)["archive"]
        assert archive["pages_unarchived"] == unarchived and "ENOSPC" in archive["last_reason"]
        table = _cli("status", env=env)
        assert f"ARCHIVE {unarchived} page(s) loaded without their archive copy" in table.stdout
        metrics = _cli("metrics", env=env)
        assert _metric(metrics.stdout, "newsetl_pages_unarchived_total") == unarchived
        print("ingest exit", out.returncode, "\nstdout:", out.stdout, "stderr:", out.stderr, "run row notes:", run.notes,
              "\nstatus --json archive:", archive, "\nmetrics:",
              [line for line in metrics.stdout.splitlines() if "pages_unarchived" in line], sep="\n")

        # The archive reads to its end, and what it holds is what the index says.
        assert _responses(small_disk / "archive") == _scalar(engine, "SELECT count(*) FROM archive_records")

        # Space returns: the next run archives every page it fetches.
        filler.unlink()
        _site(web, 70, start=60)
        again = _cli("ingest", "--sources", str(sources), "--force", env=env)
        assert again.returncode == 0 and "not archived" not in again.stdout, again.stdout + again.stderr
        assert _scalar(engine, "SELECT count(*) FROM archive_records WHERE kind = 'page'") == 70 - unarchived
        assert _scalar(engine, "SELECT pages_unarchived FROM ingestion_runs ORDER BY id DESC LIMIT 1") == 0

    # reextract works on what was archived, and says what it could not redo.
    redo = _cli("reextract", env=env)
    assert redo.returncode == 0, redo.stdout + redo.stderr
    assert f"{70 - unarchived} archived article(s): 0 updated, {70 - unarchived} unchanged" in redo.stdout
    assert (f"{unarchived} article(s) of the selection have no archived page and were not re-extracted; "
            "list them: newsetl reextract --list-unarchived") in redo.stdout
    print("reextract:", redo.stdout, sep="\n")
    listed = _cli("reextract", "--list-unarchived", env=env).stdout.splitlines()
    assert len(listed) == unarchived
    assert all(line.endswith("\tENOSPC: No space left on device") for line in listed)
