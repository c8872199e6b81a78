"""The domain types that cross a stage boundary, and the enums of every kind and status.

Plain data only: no I/O, no imports from the stages. Each stage takes these in and gives these
out, so a stage never needs a later one to describe its results (``store`` used to be the hub
every stage imported for its types). Types private to one unit of work (a backfill's plan and
windows, a story profile) stay with it.

The enums are ``StrEnum``: members are the strings stored in PostgreSQL (the ``CHECK``
constraints and the ``warehouse`` views use the same words), they compare equal to them and
serialize as them in JSON, Prefect parameters and SQL parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum


class ErrorKind(StrEnum):
    """Why a fetch or a poll produced no usable response (``feed_polls.error_kind``, and the
    prefix of ``articles.extraction_error`` for pages)."""

    BLOCKED = "blocked"            # refused before any request: scheme, or a non-public address
    DNS = "dns"
    CONNECT = "connect"            # no connection (refused, unreachable)
    ROBOTS = "robots"              # robots.txt disallows the page
    HOST_BACKOFF = "host_backoff"  # the host asked us to wait (429/503 + Retry-After)
    REDIRECT = "redirect"          # a loop, or too many hops
    HTTP = "http"                  # an HTTP error status
    TOO_LARGE = "too_large"        # over the body cap
    TIMEOUT = "timeout"
    RESET = "reset"                # the connection broke
    TRUNCATED = "truncated"        # closed before the body it announced was complete
    DECODING = "decoding"          # a Content-Encoding that does not decode
    PROTOCOL = "protocol"
    WARC = "warc"                  # an archived record that cannot be read back
    PARSE = "parse"                # the feed body is not a feed
    INTERNAL = "internal"          # a bug of ours, caught so that the run goes on


# Pages we chose not to request: their rows say why instead of falling back to the feed.
REFUSED_FETCHES = frozenset({ErrorKind.ROBOTS, ErrorKind.BLOCKED})


class ExtractionStatus(StrEnum):
    """Where an article's text came from (``articles.extraction_status``)."""

    OK = "ok"                      # trafilatura, default settings
    RECALL = "recall"              # trafilatura with favor_recall
    FEED_CONTENT = "feed_content"  # the feed's full content (content:encoded)
    FEED_SUMMARY = "feed_summary"  # the feed's summary only
    FAILED = "failed"


class RunKind(StrEnum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"
    DEMO = "demo"
    MAINTENANCE = "maintenance"


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    ABANDONED = "abandoned"    # its process died; closed by a later run or by maintenance


class WindowStatus(StrEnum):
    """A backfill window's checkpoint (``backfill_windows.status``)."""

    DONE = "done"
    INCOMPLETE = "incomplete"      # today's window, or from a partial plan: done again next run
    FAILED = "failed"              # retried by the next run
    SKIPPED = "skipped"            # done by an earlier run
    BUSY = "busy"                  # another run of the job holds it


class StepStatus(StrEnum):
    """A maintenance step's outcome."""

    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"


class Relation(StrEnum):
    """How an article belongs to its story (``story_articles.relation``)."""

    ORIGINAL = "original"
    SAME_STORY = "same_story"
    NEAR_DUPLICATE = "near_duplicate"
    CITES = "cites"


class MatchMethod(StrEnum):
    """What decided an article's story (``story_articles.method``)."""

    MINHASH = "minhash"            # a near-copy of a member
    LEXICAL = "lexical"            # names, terms and numbers weighed most
    EMBEDDING = "embedding"        # the sentence-embedding cosine weighed most
    ATTRIBUTION = "attribution"    # it cites an outlet of the story, at the lower bar


class ArchiveKind(StrEnum):
    """What an archived response was (``archive_records.kind``)."""

    PAGE = "page"
    FEED = "feed"


def _add_fields(target: object, other: object) -> None:
    """Counters: add every field of ``other`` to ``target`` (same dataclass)."""
    for f in fields(target):  # type: ignore[arg-type]
        setattr(target, f.name, getattr(target, f.name) + getattr(other, f.name))


# --- fetch --------------------------------------------------------------------------------------

@dataclass
class FetchResult:
    """One request's outcome: a response, or why there is none (``error_kind``)."""

    url: str                      # what was asked for
    final_url: str                # after redirects
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    elapsed_ms: int = 0
    redirects: list[tuple[int, str]] = field(default_factory=list)  # (status, location) per hop
    error_kind: ErrorKind | None = None
    error: str | None = None
    backoff_until: datetime | None = None  # set when this response parked its host (429/503)

    @property
    def permanent_url(self) -> str | None:
        """Where the resource now lives when it answered after permanent redirects (301/308)
        only from the start; a temporary hop (302/303/307) anywhere keeps the old URL."""
        moved = None
        for status, location in self.redirects:
            if status not in (301, 308):
                return None
            moved = location
        return moved

    @property
    def ok(self) -> bool:
        return self.error_kind is None and self.status is not None and 200 <= self.status < 300

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def describe_error(self) -> str:
        return f"{self.error_kind}: {self.error}" if self.error_kind else ""


@dataclass(frozen=True)
class HostBackoff:
    """A host asked us to stay away (429/503 + Retry-After) until ``until`` (UTC)."""

    host: str
    until: datetime
    http_status: int | None
    reason: str


@dataclass(frozen=True)
class ArchiveRef:
    """Where one response record lives: ``warc_file`` is relative to the archive directory."""

    kind: ArchiveKind
    url: str                  # the URL the response came from (after redirects)
    warc_file: str
    offset: int               # of the response record's gzip member
    length: int               # of that gzip member, in bytes
    digest: str               # WARC-Payload-Digest (sha1, base32) of the body
    http_status: int | None
    fetched_at: datetime


@dataclass(frozen=True)
class ArchivedResponse:
    url: str
    status: int | None
    headers: dict[str, str]
    body: bytes


# --- parse --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedEntry:
    entry_key: str                 # identity within its feed: guid, else link
    link: str
    canonical_url: str
    guid: str | None = None
    title: str | None = None
    summary: str | None = None     # the feed's description (HTML allowed)
    content_html: str | None = None  # content:encoded / Atom content, when the feed carries the body
    published_at: datetime | None = None
    updated_at: datetime | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    image_url: str | None = None


@dataclass
class ParsedFeed:
    """A feed body as entries (capped per poll) and the feed's own schedule hints."""

    title: str | None
    language: str | None
    entries: list[FeedEntry] = field(default_factory=list)
    ttl_minutes: int | None = None            # RSS <ttl>
    update_period: str | None = None          # sy:updatePeriod
    update_frequency: int | None = None       # sy:updateFrequency
    warning: str | None = None                # feedparser's bozo message for a feed that still parsed
    entries_total: int = 0                    # before the per-poll cap


@dataclass
class Extraction:
    """What extraction made of a page (and, after the fallbacks, of its feed entry)."""

    status: ExtractionStatus
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
    modified: str | None = None       # dateModified / article:modified_time as the page states it
    language: str | None = None       # from <html lang> when the page states it
    page_canonical_url: str | None = None


class IngestErrorKind(StrEnum):
    """What ``ingest_errors`` records (a row or value that could not be stored as it came)."""

    ENTRY_REFUSED = "entry_refused"    # not loaded at all (e.g. a link over the length limit)
    VALUE_DROPPED = "value_dropped"    # loaded without one value (e.g. a year-0001 date)
    ROW_FAILED = "row_failed"          # its own load failed; the rest of its batch loaded
    ARCHIVE_FAILED = "archive_failed"  # loaded, but its page could not be written to the WARC archive


@dataclass(frozen=True)
class IngestError:
    kind: IngestErrorKind
    detail: str
    url: str | None = None
    feed_id: int | None = None
    source_id: int | None = None


@dataclass
class ArticleRecord:
    """One row of ``articles`` plus the feed reference that brought it."""

    source_id: int
    feed_id: int | None
    entry_key: str
    url: str
    canonical_url: str
    final_url: str | None
    guid: str | None
    title: str | None
    description: str | None
    body: str | None
    language: str | None
    authors: list[str]
    published_at: datetime | None
    updated_at: datetime | None
    fetched_at: datetime | None
    content_hash: str | None
    http_status: int | None
    extraction_status: ExtractionStatus
    extraction_error: str | None
    sitename: str | None = None
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    image_url: str | None = None
    word_count: int | None = None
    page_canonical_url: str | None = None
    notes: list[str] = field(default_factory=list)  # values normalization dropped (recorded, not stored on the row)


# --- store --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FeedRow:
    id: int
    url: str
    language: str | None
    section: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    consecutive_failures: int
    source_id: int
    slug: str
    min_request_interval: float
    # schedule inputs (filled by lease_feeds; the defaults keep older queries working)
    min_interval: float | None = None      # seconds, per-feed floor from the sources file
    max_interval: float | None = None      # seconds, per-feed ceiling
    entry_interval: float | None = None    # seconds, usual gap between the feed's entries
    newest_entry_at: datetime | None = None
    feed_ttl: float | None = None          # seconds, the feed's own <ttl>/sy:updatePeriod hint
    host: str | None = None


@dataclass(frozen=True)
class PollOutcome:
    """What one poll of one feed produced, as the store needs it.

    A ``skipped_until`` outcome means the feed's host is parked (Retry-After seen by this or
    another worker): no request, no poll-log row, no failure; the feed is due again then.
    """

    feed_id: int
    url: str
    http_status: int | None
    bytes: int | None
    duration_ms: int
    entries_seen: int
    entries_new: int
    error_kind: ErrorKind | None
    error: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    next_poll_in: float  # seconds until the feed is due again
    replace_validators: bool = False        # a 200: its validators replace the stored ones
    new_url: str | None = None              # 301/308: poll here from now on
    deactivate_reason: str | None = None    # 410 Gone
    entry_interval: float | None = None
    newest_entry_at: datetime | None = None
    feed_ttl: float | None = None
    parsed: bool = False                    # the body was parsed this poll (feed_ttl is fresh)
    skipped_until: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.error_kind is not None

    @property
    def skipped(self) -> bool:
        return self.skipped_until is not None


@dataclass(frozen=True)
class Validators:
    """A feed's conditional-request state, saved once its new entries are loaded."""

    feed_id: int
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    replace_validators: bool


@dataclass
class RunCounts:
    feeds_polled: int = 0
    feeds_failed: int = 0
    entries_seen: int = 0
    articles_new: int = 0
    articles_updated: int = 0
    duplicates: int = 0
    errors: int = 0
    # pages loaded without their WARC copy (full disk, I/O error): not errors of the articles,
    # but those pages cannot be re-extracted later (``ingestion_runs.pages_unarchived``)
    pages_unarchived: int = 0

    def add(self, other: "RunCounts") -> None:
        _add_fields(self, other)


@dataclass
class LoadResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # exact duplicates: no row added, URL and feed reference recorded
    new_ids: list[int] = field(default_factory=list, compare=False)  # inserted rows, for the dedup/story stage
    failed: list[tuple[str, str]] = field(default_factory=list, compare=False)  # (canonical URL, error) of rows not stored


# --- jobs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorkItem:
    """One feed entry to fetch and load, with what it inherits from its feed."""

    feed_id: int | None  # None for a backfilled URL: no feed listed it
    source_id: int
    slug: str
    language: str | None
    min_request_interval: float
    entry: FeedEntry


@dataclass
class PollResult:
    slug: str                       # the feed's source, for per-source reports
    outcome: PollOutcome
    items: list[WorkItem]
    # Held back while ``items`` are not loaded yet; commit with store.commit_validators.
    pending_validators: Validators | None = None
    errors: list[IngestError] = field(default_factory=list)  # entries refused, values dropped
    archived: ArchiveRef | None = None  # the response's WARC record, indexed with its chunk
    unarchived: str | None = None       # why the response could not be archived (logged once per run)


@dataclass
class BatchResult:
    inserted: int
    updated: int
    unchanged: int
    failed: int  # rows whose extraction_status is 'failed'
    duplicates: int = 0  # exact duplicates (no row added)
    new_ids: list[int] = field(default_factory=list)  # for the dedup/story stage
    deferred_feeds: list[int] = field(default_factory=list)  # pages left to another run
    errors: list[IngestError] = field(default_factory=list)  # rows refused or failed, values dropped
    unarchived: int = 0  # pages loaded without their WARC copy (each one also in ``errors``)
    # busy seconds per step (fetch, archive, extract, load, index): where a batch's time goes
    stage_seconds: dict[str, float] = field(default_factory=dict)

    def add(self, other: "BatchResult") -> None:
        add_seconds(self.stage_seconds, other.stage_seconds)
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failed += other.failed
        self.duplicates += other.duplicates
        self.unarchived += other.unarchived
        self.new_ids.extend(other.new_ids)
        self.errors.extend(other.errors)


def add_seconds(into: dict[str, float], more: dict[str, float]) -> None:
    """Adds per-stage busy seconds (``BatchResult.stage_seconds``, the cycle's totals)."""
    for stage, seconds in more.items():
        into[stage] = into.get(stage, 0.0) + seconds


# --- stories and reports ------------------------------------------------------------------------

@dataclass
class AssignCounts:
    processed: int = 0
    near_duplicates: int = 0
    stories_new: int = 0
    stories_joined: int = 0     # same_story + cites
    stories_merged: int = 0     # stories folded into an older one they converged with
    revised: int = 0            # articles placed again because their text changed
    citations: int = 0
    links: int = 0              # stories linked as related (same subject, another event)
    lock_seconds: float = 0.0   # wall time the story lock was held (the serial section)
    redecided: int = 0          # batches decided again under the lock (another worker committed first)

    def add(self, other: "AssignCounts") -> None:
        _add_fields(self, other)


@dataclass
class SourceCounts:
    feeds_polled: int = 0
    feeds_failed: int = 0
    items: int = 0        # entries listed by the feeds (ingest) or candidate URLs (backfill)
    new: int = 0          # articles inserted
    updated: int = 0      # articles whose content changed
    duplicates: int = 0   # already stored: known entries / URLs skipped before fetching, unchanged rows
    failed: int = 0       # articles whose extraction failed

    def add(self, other: "SourceCounts") -> None:
        _add_fields(self, other)

