"""Feed parsing: bytes in, plain entries out.

Feeds are parsed from the raw bytes with the response's Content-Type, so that feedparser can
apply the declared charset, the XML declaration or its own sniffing — the real feeds we test
include ISO-8859-1 with and without a declaration, RDF and Atom.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime
from typing import Any

import feedparser

from etl.fetch.urls import canonicalize
from etl.models import FeedEntry, ParsedFeed


class FeedParseError(ValueError):
    """The body is not a feed we can read (not XML, empty, or no entries and a parser error)."""


def _to_utc(struct: Any) -> datetime | None:
    if not struct:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(struct), tz=UTC)
    except (OverflowError, ValueError, TypeError):
        return None


def _entry_date(raw: Any, key: str) -> datetime | None:
    parsed = _to_utc(raw.get(f"{key}_parsed"))
    if parsed or not raw.get(key):
        return parsed
    # feedparser knows English day/month names only ("mer, 16 nov 2022" defeats it); dateparser
    # reads most languages. Only reached for the rare dates feedparser could not parse.
    import dateparser

    dt = dateparser.parse(raw[key], settings={"TO_TIMEZONE": "UTC", "RETURN_AS_TIMEZONE_AWARE": True})
    return dt.astimezone(UTC) if dt else None


def _authors(entry: Any) -> tuple[str, ...]:
    names: list[str] = []
    for a in entry.get("authors") or []:
        name = (a.get("name") or "").strip()
        if name and name not in names:
            names.append(name)
    if not names and entry.get("author"):
        names.append(entry["author"].strip())
    return tuple(names)


def _image(entry: Any) -> str | None:
    for key in ("media_thumbnail", "media_content"):
        for item in entry.get(key) or []:
            if item.get("url"):
                return item["url"]
    for enc in entry.get("enclosures") or []:
        if (enc.get("type") or "").startswith("image/") and enc.get("href"):
            return enc["href"]
    return None


_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
_ENTITY_DECL = re.compile(rb"<!ENTITY", re.IGNORECASE)


def declares_entities(body: bytes) -> bool:
    """True when the document's prolog (before the root element) declares XML entities.

    feedparser strips the DOCTYPE but re-inserts "safe" internal entities, and when expat stops
    an expansion bomb it falls back to its loose parser, which expands them anyway: a 40 KB
    feed with one 10 KB entity used 10,000 times became 100 MB of text (measured, feedparser
    6.0.14). External entities (file://) are not read, but no real feed needs either, so such
    documents are refused before parsing. NUL bytes are dropped first so that UTF-16/32
    documents are checked too.
    """
    m = _FIRST_ELEMENT.search(body)
    prolog = body[: m.start()] if m else body
    if b"\x00" in prolog[:4096]:
        stripped = body.replace(b"\x00", b"")
        m = _FIRST_ELEMENT.search(stripped)
        prolog = stripped[: m.start()] if m else stripped
    return _ENTITY_DECL.search(prolog) is not None


_ENTRY_START = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s>/]")


def cut_after_entries(body: bytes, max_entries: int) -> tuple[bytes, int | None]:
    """The document up to the start of its ``max_entries + 1``-th entry, and how many entries it
    lists — or the body unchanged and None when it lists no more than that. feedparser spends
    ~0.3 ms per entry (a 100,000-entry feed: 30 s) for entries we would drop anyway; cut, it
    reads the first ``max_entries`` (the same ones the cap kept) and reports the truncation."""
    if b"\x00" in body[:4096]:  # UTF-16/32: the byte pattern does not apply; parse it whole
        return body, None
    starts = _ENTRY_START.finditer(body)
    cut = None
    total = 0
    for total, m in enumerate(starts, start=1):
        if total == max_entries + 1:
            cut = m.start()
    if cut is None:
        return body, None
    return body[:cut], total


def parse_feed(body: bytes, content_type: str | None = None, base_url: str | None = None,
               max_entries: int = 500) -> ParsedFeed:
    """Parses a feed body; raises FeedParseError when nothing usable comes out."""
    if not body.strip():
        raise FeedParseError("empty body")
    if declares_entities(body):
        raise FeedParseError("refused: the document declares XML entities (<!ENTITY> in its DOCTYPE); "
                             "entity expansion and external entities are not allowed in feeds")
    body, listed = cut_after_entries(body, max_entries)
    headers = {"content-type": content_type} if content_type else {}
    if base_url:
        headers["content-location"] = base_url
    parsed = feedparser.parse(body, response_headers=headers, resolve_relative_uris=True,
                              sanitize_html=True)
    feed = parsed.get("feed", {})
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if isinstance(problem, (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)):
        problem = None  # the document was read anyway; only a warning

    if not parsed.get("version") and not parsed.entries:
        raise FeedParseError("not a recognised RSS/Atom/RDF document")
    entries: list[FeedEntry] = []
    for raw in parsed.entries:
        link = (raw.get("link") or "").strip()
        guid = (raw.get("id") or "").strip() or None
        if not link and guid and guid.startswith(("http://", "https://")):
            link = guid
        if not link:
            continue  # an entry with no link cannot be fetched nor identified across feeds
        content = None
        for c in raw.get("content") or []:
            if c.get("value"):
                content = c["value"]
                break
        entries.append(
            FeedEntry(
                entry_key=guid or link,
                link=link,
                canonical_url=canonicalize(link),
                guid=guid,
                title=(raw.get("title") or "").strip() or None,
                summary=(raw.get("summary") or "").strip() or None,
                content_html=content,
                published_at=_entry_date(raw, "published") or _entry_date(raw, "updated"),
                updated_at=_entry_date(raw, "updated"),
                authors=_authors(raw),
                categories=tuple(t.get("term") for t in raw.get("tags") or [] if t.get("term")),
                image_url=_image(raw),
            )
        )
    if problem is not None and not entries:
        # Not well-formed and no usable entry in it: an error, not an "empty feed".
        raise FeedParseError(f"not a feed: {problem!s}"[:500])
    ttl = feed.get("ttl")
    freq = feed.get("sy_updatefrequency")
    return ParsedFeed(
        title=feed.get("title"),
        language=(feed.get("language") or None),
        entries=entries[:max_entries],
        entries_total=listed if listed is not None else len(entries),
        ttl_minutes=int(ttl) if isinstance(ttl, str) and ttl.strip().isdigit() else None,
        update_period=feed.get("sy_updateperiod"),
        update_frequency=int(freq) if isinstance(freq, str) and freq.strip().isdigit() else None,
        warning=(f"the feed lists {listed} entries; only the first {max_entries} were read" if listed is not None
                 else str(parsed.get("bozo_exception"))[:500] if parsed.get("bozo") else None),
    )
