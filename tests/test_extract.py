"""Extraction and its fallbacks, on pages served by nothing: pure functions."""

from etl.models import FeedEntry
from etl.parse.extract import MIN_TEXT_CHARS, extract_article, strip_title_suffix
from etl.parse.normalize import content_hash, normalize_text

PARAS = [
    "The ministers met on Thursday in Panama City to discuss the rising number of people crossing the Darién jungle.",
    "Officials from eleven countries signed a joint statement that commits them to share data on migrant flows.",
    "The agreement also creates a regional fund of 120 million dollars to support host communities along the route.",
    "Humanitarian groups welcomed the fund but warned that border closures push people towards more dangerous paths.",
]
PAGE = f"""<html lang="en"><head><title>Ministers meet on migration | Example News</title>
<meta name="author" content="Jane Doe"></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
<div class="cookie">We use cookies. <button>Accept</button></div>
<article><h1>Ministers meet on migration</h1>{''.join(f'<p>{p}</p>' for p in PARAS)}</article>
<aside><h3>Related</h3><ul><li><a href="/x">Other story one</a></li><li><a href="/y">Other story two</a></li></ul></aside>
<footer>© Example News. All rights reserved. <a href="/privacy">Privacy</a></footer></body></html>"""

ENTRY = FeedEntry(entry_key="g1", link="https://ex.com/a", canonical_url="https://ex.com/a",
                  title="Ministers meet", summary="<p>Short summary of the meeting in Panama.</p>",
                  content_html="<p>" + "</p><p>".join(PARAS) + "</p>")


def test_page_extraction_keeps_article_drops_clutter() -> None:
    out = extract_article(PAGE.encode(), "https://ex.com/a", ENTRY)
    assert out.status == "ok", out.error
    assert "Darién jungle" in out.text and "120 million dollars" in out.text
    assert "cookies" not in out.text and "Related" not in out.text and "Privacy" not in out.text
    assert out.title == "Ministers meet on migration"
    assert out.language == "en"


def test_short_page_falls_back_to_feed_content() -> None:
    stub = "<html><body><p>Subscribe to read.</p></body></html>"
    out = extract_article(stub.encode(), "https://ex.com/a", ENTRY)
    assert out.status == "feed_content"
    assert "Darién jungle" in out.text
    assert "too short" in out.error or "no main text" in out.error


def test_failed_fetch_falls_back_to_summary_and_says_why() -> None:
    entry = FeedEntry(entry_key="g1", link="https://ex.com/a", canonical_url="https://ex.com/a",
                      title="T", summary="<p>Short summary of the meeting.</p>")
    out = extract_article(None, "https://ex.com/a", entry, fetch_error="http: HTTP 404")
    assert out.status == "feed_summary"
    assert out.text == "Short summary of the meeting."
    assert "HTTP 404" in out.error


def test_nothing_at_all_is_failed_with_reason() -> None:
    entry = FeedEntry(entry_key="g1", link="https://ex.com/a", canonical_url="https://ex.com/a")
    out = extract_article(b"", "https://ex.com/a", entry)
    assert out.status == "failed" and out.error == "empty page"
    out = extract_article(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, "https://ex.com/a", entry)
    assert out.status == "failed" and out.error


def test_min_text_threshold_is_meaningful() -> None:
    assert sum(len(p) for p in PARAS) > MIN_TEXT_CHARS


def test_title_suffix() -> None:
    assert strip_title_suffix("Ministers meet on migration in Panama | France 24", "France 24") == \
        "Ministers meet on migration in Panama"
    assert strip_title_suffix("Ministers meet on migration in Panama - Voice of America") == \
        "Ministers meet on migration in Panama"
    assert strip_title_suffix("Short - title") == "Short - title"


def test_text_normalization_and_hash_are_stable() -> None:
    a = "Cafe\u0301 \u00a0 au\tlait\u200b\r\n\r\n\r\n  second  line \x07"
    b = "Café au lait\n\nsecond line"
    assert normalize_text(a) == b
    assert normalize_text(normalize_text(a)) == b
    assert content_hash(normalize_text(a)) == content_hash(b)
