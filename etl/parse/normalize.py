"""Normalization: feed entry + fetch outcome + extraction → one article record ready to load.

Everything that decides *what a row says* lives here: UTC dates, the canonical URL, text
normalization and the content hash (so that the same text always hashes the same, whatever
whitespace or Unicode form the page used), and the language.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime

from etl.fetch.urls import canonicalize
from etl.models import ArticleRecord, Extraction, FeedEntry
from etl.parse.dates import date_has_time, to_utc
from etl.parse.extract import html_to_text

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def normalize_text(text: str | None) -> str | None:
    """NFC, no control or zero-width characters, single spaces, paragraphs separated by one
    blank line. Idempotent: normalize_text(normalize_text(x)) == normalize_text(x)."""
    if text is None:
        return None
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    paragraphs = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        if line:
            paragraphs.append(line)
    return "\n\n".join(paragraphs) or None


def normalize_inline(text: str | None) -> str | None:
    """Titles and descriptions: one line."""
    text = normalize_text(text)
    return " ".join(text.split()) if text else None


def content_hash(text: str | None) -> str | None:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None


def choose_published(page_date: str | None, feed_date: datetime | None) -> datetime | None:
    """The page's date when it has a time of day; a date-only page date yields to the feed's
    timestamp whenever there is one; no page date → the feed's.

    A date without a time is often not the page's date at all: htmldate's extensive search
    takes years from the body text ("in 2011 …" → 2011-01-01). Letting such a guess beat the
    publisher's feed timestamp threw articles out of each other's story window."""
    page = to_utc(page_date)
    if page is None:
        return feed_date
    if date_has_time(page_date) or feed_date is None:
        return page
    return feed_date


def detect_language(text: str | None) -> str | None:
    if not text or len(text) < 40:
        return None
    import py3langid

    lang, _score = py3langid.classify(text[:5000])
    return lang


def build_record(
    *,
    source_id: int,
    feed_id: int | None,
    feed_language: str | None,
    entry: FeedEntry,
    extraction: Extraction,
    final_url: str | None,
    http_status: int | None,
    fetched_at: datetime | None,
) -> ArticleRecord:
    body = normalize_text(extraction.text)
    published = choose_published(extraction.date, entry.published_at)
    modified = to_utc(extraction.modified) or entry.updated_at
    description = normalize_inline(extraction.description) or normalize_inline(
        html_to_text(entry.summary) if entry.summary else None
    )
    language = feed_language or extraction.language or detect_language(body)
    authors = list(dict.fromkeys(a for a in (extraction.authors or list(entry.authors)) if a))
    return ArticleRecord(
        source_id=source_id,
        feed_id=feed_id,
        entry_key=entry.entry_key,
        url=entry.link,
        canonical_url=entry.canonical_url or canonicalize(entry.link),
        final_url=final_url,
        guid=entry.guid,
        title=normalize_inline(entry.title) or normalize_inline(extraction.title),
        description=description,
        body=body,
        language=language,
        authors=authors,
        published_at=published,
        updated_at=modified if modified and published and modified > published else None,
        fetched_at=fetched_at,
        content_hash=content_hash(body),
        http_status=http_status,
        extraction_status=extraction.status,
        extraction_error=extraction.error,
        sitename=extraction.sitename,
        categories=list(dict.fromkeys(list(extraction.categories) + list(entry.categories))),
        tags=list(extraction.tags),
        image_url=extraction.image_url or entry.image_url,
        word_count=len(body.split()) if body else 0,
        page_canonical_url=extraction.page_canonical_url,
    )

