"""Imported once by the extraction fork server (see ``etl.parse.pool``): loads trafilatura and
runs one tiny extraction, so that its lazy first-call set-up (~0.2 s) is paid once, before
forking, and not by every new or recycled worker against its per-page timeout."""

from etl.parse.extract import extract_page

_WARM_UP = ("<html lang='en'><head><title>Warm-up</title>"
            "<meta property='article:published_time' content='2026-01-01T10:00:00+00:00'></head>"
            "<body><article>" + "<p>Warm-up paragraph with enough words to count as text.</p>" * 8
            + "<table><tr><td>cell</td></tr></table></article></body></html>")

try:
    extract_page(_WARM_UP.encode(), "https://example.com/warm-up")
except Exception:  # never let a warm-up problem stop the workers from starting
    pass
