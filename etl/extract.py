"""Article extraction: page bytes (+ what the feed said) in, text and metadata out.

trafilatura does the work. Settings follow what scored best on real pages here: metadata on,
comments off (they are not the article), tables on, links/images off, and trafilatura's own
dedup off — its cache is process-global and starts returning None for pages seen before.
When the page yields too little we fall back, in order, to favor_recall, the feed's full
content (content:encoded) and the feed's summary, and say which one produced the row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import lxml.html
import trafilatura

from etl.feeds import FeedEntry

# A page whose main text is shorter than this is treated as a failed extraction: it is almost
# always a teaser, a paywall stub or navigation text.
MIN_TEXT_CHARS = 250

_TITLE_SUFFIX = re.compile(r"\s+[|\-–—:•·]\s+[^|\-–—:•·]{2,60}$")


@dataclass
class Extraction:
    status: str                       # 'ok', 'recall', 'feed_content', 'feed_summary', 'failed'
    text: str | None = None
    error: str | None = None          # why a fallback was needed or why it failed
    title: str | None = None
    description: str | None = None
    authors: list[str] = field(default_factory=list)
    sitename: str | None = None
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    image_url: str | None = None
    date: str | None = None           # as trafilatura found it (ISO date or datetime)
    language: str | None = None       # from <html lang> when the page states it
    page_canonical_url: str | None = None


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


def _run(html: bytes | str, url: str | None, favor_recall: bool) -> dict[str, Any] | None:
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
    )
    if doc is None:
        return None
    data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    data["_lang"] = _html_lang(html)
    return data


def _from_trafilatura(data: dict[str, Any], status: str) -> Extraction:
    sitename = data.get("sitename")
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
        language=data.get("_lang"),
        page_canonical_url=data.get("url"),
    )


def extract_article(html: bytes | str | None, url: str | None, entry: FeedEntry | None = None,
                    fetch_error: str | None = None) -> Extraction:
    """Never raises: every outcome, including failure, is an Extraction with a status and why."""
    reasons: list[str] = []
    if fetch_error:
        reasons.append(f"fetch failed: {fetch_error}")
    best: dict[str, Any] | None = None
    if html:
        for favor_recall, status in ((False, "ok"), (True, "recall")):
            try:
                data = _run(html, url, favor_recall)
            except Exception as exc:  # a hostile page must not take the batch down
                reasons.append(f"trafilatura{' (recall)' if favor_recall else ''} raised {type(exc).__name__}: {exc}"[:300])
                continue
            if data is None:
                reasons.append(f"trafilatura{' (recall)' if favor_recall else ''} found no main text")
                continue
            best = best or data
            text = data.get("text") or ""
            if len(text) >= MIN_TEXT_CHARS:
                result = _from_trafilatura(data, status)
                result.error = "; ".join(reasons) or None
                return result
            reasons.append(f"trafilatura{' (recall)' if favor_recall else ''} text too short ({len(text)} chars)")
    elif not fetch_error:
        reasons.append("empty page")

    meta = _from_trafilatura(best, "failed") if best else Extraction(status="failed")
    for source, status in ((entry and entry.content_html, "feed_content"), (entry and entry.summary, "feed_summary")):
        if source:
            text = html_to_text(source).strip()
            if text:
                meta.status, meta.text = status, text
                meta.error = "; ".join(reasons)
                return meta
    meta.status, meta.text = "failed", (meta.text or None)
    meta.error = "; ".join(reasons) or "no text"
    return meta
