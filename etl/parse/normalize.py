"""Normalization: feed entry + fetch outcome + extraction → one article record ready to load.

Everything that decides *what a row says* lives here: UTC dates, the canonical URL, text
normalization and the content hash (so that the same text always hashes the same, whatever
whitespace or Unicode form the page used), and the language.

It is also the one place where every value is made *storable* before it reaches SQL
(:func:`storable_entry` for feed entries, :func:`storable_record` for article rows): PostgreSQL
text cannot hold NUL, a btree index row is limited to ~2.7 KB (8 KB page), a tsvector to 1 MB,
and a year-0001 date is valid SQL but a lie. One bad field must cost one row, not a run.

Policy (docs/polling.md, "Storable values"):

* NUL, other C0/C1 control characters, lone surrogates and zero-width marks are stripped from
  every text field (newlines kept in the body only);
* lengths are capped: title 1,000 characters, description 5,000, each author 200 (50 authors),
  each category/tag 200 (100 of them), sitename 300, error texts 2,000;
* a **link** longer than ``MAX_URL_CHARS`` (2,048) is refused: the entry is not loaded and the
  refusal is recorded (``ingest_errors``), since no page can be fetched or identified by it;
* a **guid** longer than ``MAX_GUID_CHARS`` (1,024) is replaced by ``sha256:<hex>`` of itself:
  a guid is only an identity, and its hash identifies the entry as well on every poll;
* optional URLs (image, final URL, page canonical) over the limit are dropped;
* dates outside 1990-01-01 .. now + 2 days are dropped, with a note recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from datetime import UTC, datetime, timedelta

from etl.fetch.urls import canonicalize
from etl.models import ArticleRecord, Extraction, FeedEntry
from etl.parse.dates import date_has_time, to_utc
from etl.parse.extract import html_to_text

MAX_URL_CHARS = 2048
MAX_GUID_CHARS = 1024
MAX_TITLE_CHARS = 1000
MAX_DESCRIPTION_CHARS = 5000
MAX_AUTHOR_CHARS = 200
MAX_AUTHORS = 50
MAX_LABEL_CHARS = 200      # one category or tag
MAX_LABELS = 100
MAX_SITENAME_CHARS = 300
MAX_ERROR_CHARS = 2000
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=2)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u200b\u200e\u200f\u202a-\u202e\u2060\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


# Never storable (NUL) or never meaningful in a one-line field: every C0/C1 control but \t\n\r,
# lone surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_BREAKS = re.compile(r"[\t\n\r]+")


def clean_text(text: str | None, limit: int | None = None, *, keep_lines: bool = False) -> str | None:
    """``text`` without what PostgreSQL cannot store (NUL, lone surrogates) or what has no place
    in a value (control characters; line breaks too unless ``keep_lines``), trimmed and cut at
    ``limit`` characters. Empty → None."""
    if text is None:
        return None
    text = _UNSTORABLE.sub("", text)
    if not keep_lines:
        text = _LINE_BREAKS.sub(" ", text)
    text = text.strip()
    if limit is not None and len(text) > limit:
        text = text[:limit].rstrip()
    return text or None


def _clean_list(values: list[str] | tuple[str, ...], limit: int, count: int) -> list[str]:
    out: list[str] = []
    for v in values:
        c = clean_text(v, limit)
        if c and c not in out:
            out.append(c)
        if len(out) == count:
            break
    return out


def _clean_url(url: str | None) -> str | None:
    """An optional URL: cleaned, or None when it is over the limit (never cut: a cut URL
    points somewhere else)."""
    url = clean_text(url)
    return url if url is None or len(url) <= MAX_URL_CHARS else None


def hashed_key(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def sane_date(value: datetime | None, now: datetime | None = None) -> datetime | None:
    """``value`` when it lies in 1990-01-01 .. now + 2 days, else None."""
    if value is None:
        return None
    now = now or datetime.now(UTC)
    return value if EARLIEST_DATE <= value <= now + FUTURE_SLACK else None


class RefusedEntry(ValueError):
    """A feed entry that cannot be stored at all (its link is too long to be a key)."""


def storable_entry(entry: FeedEntry, now: datetime | None = None) -> tuple[FeedEntry, list[str]]:
    """The entry with every field storable, and notes on what was changed (hashed guid,
    dropped dates); raises :class:`RefusedEntry` with the reason when it cannot be kept."""
    notes: list[str] = []
    link = clean_text(entry.link) or ""
    canonical = clean_text(entry.canonical_url) or ""
    if not link:
        raise RefusedEntry("the entry has no link once control characters are removed")
    if len(link) > MAX_URL_CHARS or len(canonical) > MAX_URL_CHARS:
        raise RefusedEntry(f"link of {max(len(link), len(canonical))} characters exceeds the "
                           f"{MAX_URL_CHARS}-character limit")
    guid = clean_text(entry.guid)
    if guid is not None and len(guid) > MAX_GUID_CHARS:
        notes.append(f"guid of {len(guid)} characters replaced by its sha256")
        guid = hashed_key(guid)
    key = clean_text(entry.entry_key) or ""
    if entry.entry_key == entry.guid:
        key = guid or link
    elif entry.entry_key == entry.link:
        key = link
    elif len(key) > MAX_GUID_CHARS:
        key = hashed_key(key)
    published, updated = sane_date(entry.published_at, now), sane_date(entry.updated_at, now)
    for name, before, after in (("published", entry.published_at, published), ("updated", entry.updated_at, updated)):
        if before is not None and after is None:
            notes.append(f"{name} date {before.isoformat()} outside 1990-01-01 .. now + 2 days, dropped")
    clean = dataclasses.replace(
        entry, entry_key=key or link, link=link, canonical_url=canonical, guid=guid,
        title=clean_text(entry.title, MAX_TITLE_CHARS * 4),   # feeds' titles may hold markup
        summary=clean_text(entry.summary, None, keep_lines=True),
        content_html=clean_text(entry.content_html, None, keep_lines=True),
        published_at=published, updated_at=updated,
        authors=tuple(_clean_list(entry.authors, MAX_AUTHOR_CHARS, MAX_AUTHORS)),
        categories=tuple(_clean_list(entry.categories, MAX_LABEL_CHARS, MAX_LABELS)),
        image_url=_clean_url(entry.image_url),
    )
    return clean, notes


def storable_record(rec: ArticleRecord, now: datetime | None = None) -> ArticleRecord:
    """The record with every text field storable and capped, and out-of-range dates dropped
    (noted in ``rec.notes``). Raises :class:`RefusedEntry` when its URL is over the limit."""
    notes = list(rec.notes)
    for name in ("url", "canonical_url"):
        value = clean_text(getattr(rec, name)) or ""
        if not value or len(value) > MAX_URL_CHARS:
            raise RefusedEntry(f"{name} of {len(value)} characters: empty or over the "
                               f"{MAX_URL_CHARS}-character limit")
    guid = clean_text(rec.guid)
    if guid is not None and len(guid) > MAX_GUID_CHARS:
        guid = hashed_key(guid)
    key = clean_text(rec.entry_key) or clean_text(rec.url) or ""
    if len(key) > MAX_GUID_CHARS:
        key = hashed_key(key)
    published, updated = sane_date(rec.published_at, now), sane_date(rec.updated_at, now)
    if rec.published_at is not None and published is None:
        notes.append(f"published date {rec.published_at.isoformat()} outside 1990-01-01 .. now + 2 days, dropped")
    body = rec.body
    if body is not None:
        body = clean_text(body, None, keep_lines=True)
    return dataclasses.replace(
        rec, url=clean_text(rec.url) or "", canonical_url=clean_text(rec.canonical_url) or "",
        final_url=_clean_url(rec.final_url), guid=guid, entry_key=key,
        title=clean_text(rec.title, MAX_TITLE_CHARS),
        description=clean_text(rec.description, MAX_DESCRIPTION_CHARS, keep_lines=True),
        body=body, language=clean_text(rec.language, 35),
        authors=_clean_list(rec.authors, MAX_AUTHOR_CHARS, MAX_AUTHORS),
        published_at=published, updated_at=updated,
        content_hash=rec.content_hash if body == rec.body else content_hash(body),
        extraction_error=clean_text(rec.extraction_error, MAX_ERROR_CHARS),
        sitename=clean_text(rec.sitename, MAX_SITENAME_CHARS),
        categories=_clean_list(rec.categories, MAX_LABEL_CHARS, MAX_LABELS),
        tags=_clean_list(rec.tags, MAX_LABEL_CHARS, MAX_LABELS),
        image_url=_clean_url(rec.image_url), page_canonical_url=_clean_url(rec.page_canonical_url),
        notes=notes,
    )


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
    return storable_record(ArticleRecord(
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
    ))

