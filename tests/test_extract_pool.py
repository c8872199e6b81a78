"""The extraction worker pool against hostile pages: every page ends with a recorded status,
a page that hangs its worker is killed at the timeout, and the rest of the batch comes back."""

from __future__ import annotations

import os
import time

import pytest

from etl.models import Extraction, ExtractionStatus, FeedEntry
from etl.parse.extract import extract_page, with_feed_fallback
from etl.parse.pool import ExtractionPool, PageJob
from tests.test_extract import PAGE

URL = "https://ex.com/a"


def hang_on_marker(html: bytes | str, url: str | None, max_bytes: int | None):
    """Worker function for tests: loops forever on a page that says HANG, dies on one that
    says DIE, and is the real extraction otherwise (module-level so that it pickles)."""
    data = html if isinstance(html, bytes) else html.encode()
    if b"HANG" in data:
        while True:  # a parser stuck in C code looks like this from outside: busy, no return
            time.sleep(0.01)
    if b"DIE" in data:
        os._exit(3)
    return extract_page(html, url, max_bytes)


def must_not_parse(html: bytes | str, url: str | None, max_bytes: int | None):
    raise RuntimeError("this page was handed to the parser")


@pytest.fixture(scope="module")
def hang_pool():
    with ExtractionPool(workers=2, timeout=1.0, max_tasks=3, page_fn=hang_on_marker) as pool:
        yield pool


def test_hanging_page_is_killed_and_the_batch_completes(hang_pool: ExtractionPool) -> None:
    good = PAGE.encode()
    jobs = [PageJob(good, URL), PageJob(b"<html><body>HANG</body></html>", URL), PageJob(good, URL),
            PageJob(b"<html><body>DIE</body></html>", URL), PageJob(good, URL), PageJob(good, URL)]
    out = hang_pool.extract_pages(jobs)
    assert [r.status for r in out] == ["ok", "failed", "ok", "failed", "ok", "ok"]
    assert out[1].error == "extraction timed out after 1s (worker killed)"
    assert out[3].error == "extraction worker died (exit code 3)"
    assert "Darién jungle" in out[5].text
    # The pool replaced the killed workers (and recycled them every 3 tasks): it still works.
    again = hang_pool.extract_pages([PageJob(good, URL)] * 4)
    assert [r.status for r in again] == ["ok"] * 4


def test_hang_then_feed_fallback_says_why(hang_pool: ExtractionPool) -> None:
    entry = FeedEntry(entry_key="k", link=URL, canonical_url=URL, summary="<p>The feed's summary.</p>")
    [page] = hang_pool.extract_pages([PageJob(b"<html>HANG</html>", URL)])
    final = with_feed_fallback(page, entry)
    assert final.status == "feed_summary" and final.text == "The feed's summary."
    assert "timed out" in final.error


def test_size_cap_is_checked_before_parsing() -> None:
    with ExtractionPool(workers=1, timeout=5, max_bytes=100_000, page_fn=must_not_parse) as pool:
        big = b"<html><body>" + b"<p>word word word</p>" * 10_000 + b"</body></html>"
        binary = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 100
        out = pool.extract_pages([PageJob(big, URL), PageJob(binary, URL), PageJob(b"", URL),
                                  PageJob(None, URL)])
    assert out[0].status == "failed" and out[0].error.startswith("page too large to extract (")
    assert "cap of 100000" in out[0].error
    assert out[1].status == "failed" and "binary" in out[1].error
    assert out[2].status == "failed" and out[2].error == "empty page"
    assert out[3] is None  # no page at all (failed fetch): the feed fallback decides


def test_bad_input_each_gets_a_status_in_real_workers() -> None:
    """Real trafilatura in real workers on the kinds of bad input the issue names."""
    deep = b"<html><body>" + b"<div>" * 10_000 + b"<p>deep text</p>" + b"</div>" * 10_000 + b"</body></html>"
    bad_utf8 = (b'<html><head><meta charset="utf-8"><title>Bad bytes</title></head><body><article>'
                + b"<p>" + (b"Valid words then invalid \xff\xfe\xc3\x28 bytes here. " * 20) + b"</p>"
                + b"</article></body></html>")
    mislabeled = PAGE.encode("utf-16")  # UTF-16 with BOM, served as HTML
    twenty_mb = b"<html><body>" + b"<p>" + b"x" * (20 * 1024 * 1024) + b"</p></body></html>"
    with ExtractionPool(workers=2, timeout=20, max_bytes=3 * 1024 * 1024) as pool:
        out = pool.extract_pages([PageJob(deep, URL), PageJob(bad_utf8, URL), PageJob(mislabeled, URL),
                                  PageJob(twenty_mb, URL), PageJob(PAGE.encode(), URL)])
    statuses = [r.status for r in out]
    assert statuses[0] == "failed" and out[0].error  # nothing article-like in it, but it ended
    assert statuses[1] == "ok" and "invalid" in out[1].text
    assert statuses[2] in ("ok", "failed") and (out[2].text or out[2].error)
    assert statuses[3] == "failed" and "too large" in out[3].error
    assert statuses[4] == "ok"


def test_pages_of_an_earlier_batch_are_extracted_first() -> None:
    """Only 2 × workers pages go to the workers at a time; the rest wait, lowest priority
    (earliest batch) first, whatever order they arrived in."""
    from concurrent.futures import wait

    with ExtractionPool(workers=1, timeout=20, page_fn=_slow_then_record) as pool:
        html = b"<html><body><p>" + b"word " * 50 + b"</p></body></html>"
        first = [pool.submit(PageJob(html, f"http://x/early-{i}"), priority=1.0) for i in range(2)]
        later = [pool.submit(PageJob(html, f"http://x/late-{i}"), priority=5.0) for i in range(3)]
        earlier = [pool.submit(PageJob(html, f"http://x/older-{i}"), priority=2.0) for i in range(3)]
        tickets = first + later + earlier
        wait([t.future for t in tickets])  # type: ignore[misc]
        order = [pool.result(t).title for t in tickets]  # type: ignore[union-attr]
    finished = sorted(range(len(tickets)), key=lambda i: float(order[i] or 0))
    urls = [tickets[i].url for i in finished]
    # the first two went straight to the worker; then the priority-2 batch before the priority-5 one
    assert urls[2:5] == [f"http://x/older-{i}" for i in range(3)]
    assert urls[5:] == [f"http://x/late-{i}" for i in range(3)]


def _slow_then_record(html: bytes | str, url: str | None, max_bytes: int | None) -> Extraction:
    import time as _time

    _time.sleep(0.05)
    return Extraction(status=ExtractionStatus.OK, text="x" * 300, title=repr(_time.monotonic()))


def test_waiting_pages_are_bounded_and_an_older_batch_is_never_held_back() -> None:
    """Fetching outruns extraction: a submitter waits while ``max_waiting`` pages of its
    priority or older wait for a worker (memory stays flat whatever the batch size); pages of
    an older batch still get in while a newer batch's fetch threads are held."""
    import threading

    with ExtractionPool(workers=1, timeout=20, page_fn=_slow_then_record) as pool:
        pool.max_waiting = 3
        html = b"<html><body><p>" + b"word " * 50 + b"</p></body></html>"
        seen: list[tuple[int, int]] = []
        stop = threading.Event()

        def watch() -> None:  # pages of the newer batch waiting, and all pages waiting
            while not stop.is_set():
                with pool._feed_lock:
                    seen.append((sum(1 for w in pool._waiting if w[0] == 5.0), len(pool._waiting)))
                time.sleep(0.002)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        newer: list = []
        feeder = threading.Thread(target=lambda: newer.extend(
            pool.submit(PageJob(html, f"http://x/new-{i}"), priority=5.0) for i in range(12)), daemon=True)
        try:
            feeder.start()
            time.sleep(0.2)
            held = feeder.is_alive()  # 2 at the worker, 3 waiting, the rest not taken yet
            started = time.monotonic()
            older = [pool.submit(PageJob(html, f"http://x/old-{i}"), priority=1.0) for i in range(3)]
            admitted_in = time.monotonic() - started
            feeder.join(30)
        finally:
            stop.set()
            watcher.join()
        results = [pool.result(t) for t in older + newer]
    assert held and admitted_in < 0.1  # the older batch got in at once
    assert all(r is not None and r.status == ExtractionStatus.OK for r in results)
    assert len(newer) == 12
    assert max(n for n, _ in seen) == 3 and max(t for _, t in seen) <= 6  # older ones may add theirs
    # the older pages went to the worker before the newer pages that were waiting
    order = sorted(range(15), key=lambda i: float(results[i].title or 0))  # type: ignore[union-attr]
    assert max(order.index(i) for i in range(3)) < 8
