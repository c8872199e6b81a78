"""Article extraction: page bytes (+ what the feed said) in, text and metadata out.

trafilatura does the work. Settings follow what scored best on real pages here: metadata on,
comments off (they are not the article), tables on, links/images off, and trafilatura's own
dedup off — its cache is process-global and starts returning None for pages seen before.
When the page yields too little we fall back, in order, to favor_recall, the feed's full
content (content:encoded) and the feed's summary, and say which one produced the row.

The work is split in two so that the expensive, risky half can run in a worker process that
may be killed (``etl.parse.pool``): :func:`extract_page` parses the page (trafilatura), and
:func:`with_feed_fallback` — cheap, never touches the page — decides the final row from it and
the feed entry. :func:`extract_article` is both in one call.
"""

from __future__ import annotations

import re
from typing import Any

import lxml.html
from courlan import extract_domain

from etl.models import Extraction, ExtractionStatus, FeedEntry

# A page whose main text is shorter than this is treated as a failed extraction: it is almost
# always a teaser, a paywall stub or navigation text.
MIN_TEXT_CHARS = 250

# trafilatura hands these to htmldate and they *replace* its defaults (not merge), so every key
# we rely on is spelled out: original (published, not modified) date, the extensive text search,
# and an output format that keeps the time of day and UTC offset when the page has them.
# A date-only page comes back as "YYYY-MM-DDT00:00:00" with no offset.
DATE_PARAMS: dict[str, Any] = {
    "extensive_search": True,
    "original_date": True,
    "outputformat": "%Y-%m-%dT%H:%M:%S%z",
}

# On the 181 Zyte pages (bench/eval_extraction.py, docs/benchmarks.md) favor_precision raises
# body F1 from 0.961 to 0.965 (precision 0.942 → 0.957, recall 0.981 → 0.974); a page it cuts
# too short still gets the favor_recall retry below.
FAVOR_PRECISION = True

_TITLE_SUFFIX = re.compile(r"\s+[|\-–—:•·]\s+[^|\-–—:•·]{2,60}$")


def strip_title_suffix(title: str | None, sitename: str | None = None) -> str | None:
    """Removes a trailing " | Site" / " - Site" that pages append to their <title>."""
    if not title:
        return title
    title = title.strip()
    if sitename and title.lower().endswith(sitename.lower()) and len(title) > len(sitename) + 5:
        stripped = title[: -len(sitename)].rstrip(" |-–—:•·")
        if stripped:
            return stripped
    m = _TITLE_SUFFIX.search(title)
    if m and m.start() > 20:
        return title[: m.start()]
    return title


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (a feed's content or summary), paragraphs kept apart."""
    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except Exception:
        return re.sub(r"<[^>]+>", " ", fragment)
    for br in root.iter("br"):
        br.tail = "\n" + (br.tail or "")
    for block in root.iter("p", "div", "li", "h1", "h2", "h3", "h4", "blockquote"):
        block.tail = "\n\n" + (block.tail or "")
    return root.text_content()


def _list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = re.split(r"[;,]", value)
    return [v.strip() for v in value if v and v.strip()]


_HTML_LANG = re.compile(rb"<html\b[^>]*?\blang\s*=\s*[\"']?([A-Za-z]{2,3})", re.IGNORECASE)


def _html_lang(html: bytes | str) -> str | None:
    # trafilatura leaves language empty unless asked; the page's own declaration is the
    # most reliable signal we have before detection.
    head = html[:20000] if isinstance(html, bytes) else html[:20000].encode("utf-8", "ignore")
    m = _HTML_LANG.search(head)
    return m.group(1).decode().lower() if m else None


def same_site(url: str | None, candidate: str | None) -> bool:
    """True when ``candidate`` is on the same registered domain as ``url`` (www/amp/m hosts of
    one outlet count as one site; an og:url pointing at another outlet does not)."""
    if not url or not candidate or not candidate.startswith(("http://", "https://")):
        return False
    a, b = extract_domain(url), extract_domain(candidate)
    if a and b:
        return a == b
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") == (urlsplit(candidate).hostname or "")


def check_page(html: bytes | str | None, max_bytes: int | None) -> str | None:
    """Why a page must not be handed to the parser at all, or None. Checked before parsing:
    trafilatura's own size limit is not enforced on uncompressed input, and a 12 MB page costs
    it ~35 s and ~900 MB."""
    if not html:
        return "empty page"
    size = len(html) if isinstance(html, bytes) else len(html.encode("utf-8", "ignore"))
    if max_bytes and size > max_bytes:
        return f"page too large to extract ({size} bytes > cap of {max_bytes})"
    if isinstance(html, bytes) and not html.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" in html[:4096]:
        return "not HTML: binary content (NUL bytes)"
    return None


_MODIFIED = (
    re.compile(rb"<meta\b[^>]*?(?:property|name|itemprop)\s*=\s*[\"'](?:article:modified_time|og:updated_time|"
               rb"dateModified|last-modified)[\"'][^>]*?content\s*=\s*[\"']([^\"']{8,40})", re.IGNORECASE),
    re.compile(rb"<meta\b[^>]*?content\s*=\s*[\"']([^\"']{8,40})[\"'][^>]*?(?:property|name|itemprop)\s*=\s*"
               rb"[\"'](?:article:modified_time|og:updated_time|dateModified|last-modified)[\"']", re.IGNORECASE),
    re.compile(rb"\"dateModified\"\s*:\s*\"([^\"]{8,40})\""),
)


def _page_modified(html: bytes | str) -> str | None:
    # htmldate gives one date (the original one, as asked); the modified date, when a page
    # states it, sits in a meta tag or JSON-LD, which a bounded regex over the head finds.
    head = html[:300000] if isinstance(html, bytes) else html[:300000].encode("utf-8", "ignore")
    for pattern in _MODIFIED:
        m = pattern.search(head)
        if m:
            return m.group(1).decode("utf-8", "ignore").strip()
    return None


def _run(html: bytes | str, url: str | None, favor_recall: bool) -> dict[str, Any] | None:
    # Imported here: pages are parsed in the extraction workers, whose fork server imports it
    # once (etl.parse.warmup); the main process only needs this module's cheap half, and its
    # start-up is spared trafilatura's import (~0.1-0.2 s of CPU per run).
    import trafilatura

    doc = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        deduplicate=False,
        favor_recall=favor_recall,
        favor_precision=FAVOR_PRECISION and not favor_recall,
        date_extraction_params=DATE_PARAMS,
    )
    if doc is None:
        return None
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    data["_lang"] = _html_lang(html)
    data["_modified"] = _page_modified(html)
    return data


def _from_trafilatura(data: dict[str, Any], status: ExtractionStatus, url: str | None = None) -> Extraction:
    sitename = data.get("sitename")
    canonical = data.get("url")
    return Extraction(
        status=status,
        text=data.get("text"),
        title=strip_title_suffix(data.get("title"), sitename),
        description=data.get("description"),
        authors=_list(data.get("author")),
        sitename=sitename,
        categories=_list(data.get("categories")),
        tags=_list(data.get("tags")),
        image_url=data.get("image"),
        date=data.get("date"),
        modified=data.get("_modified"),
        language=data.get("_lang"),
        page_canonical_url=canonical if canonical and (url is None or same_site(url, canonical)) else None,
    )


def extract_page(html: bytes | str | None, url: str | None, max_bytes: int | None = None) -> Extraction:
    """The page half: trafilatura, then trafilatura with favor_recall. Never raises.

    Returns status 'ok' or 'recall' with the text, or 'failed' with whatever metadata the page
    gave and, in ``error``, every reason collected on the way.
    """
    refused = check_page(html, max_bytes)
    if refused:
        return Extraction(status=ExtractionStatus.FAILED, error=refused)
    reasons: list[str] = []
    best: dict[str, Any] | None = None
    for favor_recall, status in ((False, ExtractionStatus.OK), (True, ExtractionStatus.RECALL)):
        label = f"trafilatura{' (recall)' if favor_recall else ''}"
        try:
            data = _run(html, url, favor_recall)  # type: ignore[arg-type]
        except Exception as exc:  # a hostile page must not take the batch down
            reasons.append(f"{label} raised {type(exc).__name__}: {exc}"[:300])
            continue
        if data is None:
            reasons.append(f"{label} found no main text")
            continue
        best = best or data
        text = data.get("text") or ""
        if len(text) >= MIN_TEXT_CHARS:
            result = _from_trafilatura(data, status, url)
            result.error = "; ".join(reasons) or None
            return result
        reasons.append(f"{label} text too short ({len(text)} chars)")
    meta = _from_trafilatura(best, ExtractionStatus.FAILED, url) if best else Extraction(status=ExtractionStatus.FAILED)
    meta.error = "; ".join(reasons) or "no text"
    return meta


def with_feed_fallback(page: Extraction | None, entry: FeedEntry | None,
                       fetch_error: str | None = None) -> Extraction:
    """The cheap half: keeps a good page result, else falls back to the feed's content:encoded,
    then its summary, keeping the page's metadata and saying why. Never raises."""
    if page is not None and page.status in (ExtractionStatus.OK, ExtractionStatus.RECALL):
        if fetch_error:
            page.error = "; ".join(filter(None, [f"fetch failed: {fetch_error}", page.error]))
        return page
    reasons: list[str] = []
    if fetch_error:
        reasons.append(f"fetch failed: {fetch_error}")
    if page is not None and page.error and not (fetch_error and page.error == "empty page"):
        reasons.append(page.error)
    meta = page if page is not None else Extraction(status=ExtractionStatus.FAILED)
    for source, status in ((entry and entry.content_html, ExtractionStatus.FEED_CONTENT), (entry and entry.summary, ExtractionStatus.FEED_SUMMARY)):
        if source:
            text = html_to_text(source).strip()
            if text:
                meta.status, meta.text = status, text
                meta.error = "; ".join(reasons) or None
                return meta
    meta.status = ExtractionStatus.FAILED
    meta.error = "; ".join(reasons) or "no text"
    return meta


def extract_article(html: bytes | str | None, url: str | None, entry: FeedEntry | None = None,
                    fetch_error: str | None = None, max_bytes: int | None = None) -> Extraction:
    """Never raises: every outcome, including failure, is an Extraction with a status and why.
    Runs in the calling process; the pipeline uses ``etl.parse.pool`` instead."""
    page = extract_page(html, url, max_bytes) if (html or not fetch_error) else None
    return with_feed_fallback(page, entry, fetch_error)
