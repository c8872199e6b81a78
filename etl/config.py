"""Settings from the environment and the sources registry (``deploy/sources.toml``).

Every tunable lives here so that a deployment changes behaviour through environment variables
or the sources file, never through code.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from etl import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCES = REPO_ROOT / "deploy" / "sources.toml"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def _env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Runtime settings; read once per process with :func:`load_settings`."""

    home: Path
    database_url: str | None
    sources_file: Path
    allow_private_networks: bool
    user_agent: str
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0
    max_feed_bytes: int = 10 * 1024 * 1024
    max_page_bytes: int = 5 * 1024 * 1024
    max_entries_per_poll: int = 500
    batch_size: int = 100
    task_workers: int = 4
    fetch_concurrency: int = 8
    per_host_concurrency: int = 2
    poll_chunk_size: int = 100        # feeds one worker leases (and one task polls) at a time
    feed_lease_seconds: float = 900.0  # a crashed worker's feeds are free again after this
    page_claim_seconds: float = 300.0  # a crashed run's claimed pages are free again after this
    # Extraction (issue 4): worker processes, a per-page kill timeout, recycling, a size cap
    # checked before parsing; the raw WARC archive and its rotation size.
    extract_workers: int = 2
    extract_timeout: float = 20.0
    extract_max_tasks: int = 1000
    max_extract_bytes: int = 3 * 1024 * 1024
    archive_dir: Path | None = None          # None → <home>/archive
    archive_max_bytes: int = 1024 * 1024 * 1024
    archive_enabled: bool = True

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def archive_path(self) -> Path:
        return self.archive_dir or self.home / "archive"


def default_home() -> Path:
    """``~/.local/share/newsetl``; as root ``/var/lib/newsetl`` instead, because the embedded
    PostgreSQL then runs as an OS user ``pgserver`` and opens read/traverse permissions on every
    parent of its data directory — which must not be ``/root``."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/newsetl")
    return Path.home() / ".local" / "share" / "newsetl"


def load_settings(sources_file: str | Path | None = None) -> Settings:
    """Builds settings from ``NEWSETL_*`` variables; an explicit sources file wins over the env."""
    home = Path(os.environ.get("NEWSETL_HOME") or default_home())
    contact = os.environ.get("NEWSETL_CONTACT_URL", "https://github.com/newsetl/newsetl")
    user_agent = os.environ.get(
        "NEWSETL_USER_AGENT", f"newsetl/{__version__} (+{contact}; news archiving bot)"
    )
    sources = sources_file or os.environ.get("NEWSETL_SOURCES") or DEFAULT_SOURCES
    return Settings(
        home=home.expanduser(),
        database_url=os.environ.get("NEWSETL_DATABASE_URL") or None,
        sources_file=Path(sources).expanduser(),
        allow_private_networks=_env_bool("NEWSETL_ALLOW_PRIVATE_NETWORKS"),
        user_agent=user_agent,
        connect_timeout=_env_float("NEWSETL_CONNECT_TIMEOUT", 10.0),
        read_timeout=_env_float("NEWSETL_READ_TIMEOUT", 20.0),
        total_timeout=_env_float("NEWSETL_TOTAL_TIMEOUT", 60.0),
        max_feed_bytes=_env_int("NEWSETL_MAX_FEED_BYTES", 10 * 1024 * 1024),
        max_page_bytes=_env_int("NEWSETL_MAX_PAGE_BYTES", 5 * 1024 * 1024),
        max_entries_per_poll=_env_int("NEWSETL_MAX_ENTRIES_PER_POLL", 500),
        batch_size=_env_int("NEWSETL_BATCH_SIZE", 100),
        task_workers=_env_int("NEWSETL_TASK_WORKERS", 4),
        fetch_concurrency=_env_int("NEWSETL_FETCH_CONCURRENCY", 8),
        per_host_concurrency=_env_int("NEWSETL_PER_HOST_CONCURRENCY", 2),
        poll_chunk_size=_env_int("NEWSETL_POLL_CHUNK_SIZE", 100),
        feed_lease_seconds=_env_float("NEWSETL_FEED_LEASE_SECONDS", 900.0),
        page_claim_seconds=_env_float("NEWSETL_PAGE_CLAIM_SECONDS", 300.0),
        extract_workers=_env_int("NEWSETL_EXTRACT_WORKERS", 2),
        extract_timeout=_env_float("NEWSETL_EXTRACT_TIMEOUT", 20.0),
        extract_max_tasks=_env_int("NEWSETL_EXTRACT_MAX_TASKS", 1000),
        max_extract_bytes=_env_int("NEWSETL_MAX_EXTRACT_BYTES", 3 * 1024 * 1024),
        archive_dir=Path(os.environ["NEWSETL_ARCHIVE_DIR"]).expanduser() if os.environ.get("NEWSETL_ARCHIVE_DIR") else None,
        archive_max_bytes=_env_int("NEWSETL_ARCHIVE_MAX_BYTES", 1024 * 1024 * 1024),
        archive_enabled=_env_bool("NEWSETL_ARCHIVE", True),
    )


class SourcesError(ValueError):
    """The sources registry is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class FeedSpec:
    url: str
    language: str | None = None
    section: str | None = None
    min_interval: float | None = None  # seconds; overrides the scheduler's floor for this feed
    max_interval: float | None = None  # seconds; overrides the scheduler's ceiling


@dataclass(frozen=True)
class Source:
    slug: str
    name: str
    homepage: str | None = None
    min_request_interval: float = 1.0
    feeds: tuple[FeedSpec, ...] = field(default_factory=tuple)


def _check_url(url: object, where: str) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).netloc:
        raise SourcesError(f"{where}: url must be an absolute http(s) URL, got {url!r}")
    return url


def parse_sources(text: str, origin: str = "<sources>") -> list[Source]:
    """Validates the registry up front so that a typo fails the run before any request is made."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourcesError(f"{origin}: invalid TOML: {exc}") from exc
    sources: list[Source] = []
    seen_slugs: set[str] = set()
    seen_urls: set[str] = set()
    for i, raw in enumerate(data.get("sources", [])):
        where = f"{origin}: sources[{i}]"
        slug = raw.get("slug")
        if not isinstance(slug, str) or not slug.strip():
            raise SourcesError(f"{where}: 'slug' is required")
        if slug in seen_slugs:
            raise SourcesError(f"{where}: duplicate slug {slug!r}")
        seen_slugs.add(slug)
        feeds = []
        for j, rf in enumerate(raw.get("feeds", [])):
            fwhere = f"{where} ({slug}).feeds[{j}]"
            url = _check_url(rf.get("url"), fwhere)
            if url in seen_urls:
                raise SourcesError(f"{fwhere}: feed {url} is listed twice")
            seen_urls.add(url)
            feeds.append(
                FeedSpec(
                    url=url,
                    language=rf.get("language"),
                    section=rf.get("section"),
                    min_interval=rf.get("min_interval"),
                    max_interval=rf.get("max_interval"),
                )
            )
        interval = raw.get("min_request_interval", 1.0)
        if not isinstance(interval, (int, float)) or interval < 0:
            raise SourcesError(f"{where}: min_request_interval must be a number ≥ 0")
        sources.append(
            Source(
                slug=slug,
                name=raw.get("name") or slug,
                homepage=raw.get("homepage"),
                min_request_interval=float(interval),
                feeds=tuple(feeds),
            )
        )
    return sources


def load_sources(path: str | Path) -> list[Source]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SourcesError(f"cannot read sources file {path}: {exc}") from exc
    return parse_sources(text, origin=str(path))


@dataclass(frozen=True)
class Retention:
    """What the daily maintenance prunes. Articles are never pruned; logs about them are."""

    poll_days: int = 90    # feed_polls rows (the per-poll log; feeds keep their current state)
    run_days: int = 365    # finished ingestion_runs rows no poll refers to any more


def load_retention() -> Retention:
    return Retention(poll_days=_env_int("NEWSETL_RETENTION_DAYS", 90),
                     run_days=_env_int("NEWSETL_RUN_RETENTION_DAYS", 365))
