"""Settings from the environment and the sources registry (``deploy/sources.toml``).

Every tunable lives here so that a deployment changes behaviour through environment variables
or the sources file, never through code. This is the only module that reads the environment:
the flows and commands call :func:`load_settings` once and pass the result down.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from etl import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent


def deploy_dir() -> Path:
    """``deploy/`` of a checkout, else the copy packed into the wheel (``etl/_deploy``: the
    default sources registry and ``prefect.yaml``), so that ``pip install newsetl`` has them."""
    checkout = REPO_ROOT / "deploy"
    return checkout if (checkout / "sources.toml").is_file() else Path(__file__).resolve().parent / "_deploy"


DEFAULT_SOURCES = deploy_dir() / "sources.toml"
# The flows' thread pools are sized once, at import; NEWSETL_TASK_WORKERS picks how many of
# these threads a run keeps busy.
MAX_TASK_WORKERS = 32


class SettingsError(ValueError):
    """A ``NEWSETL_*`` variable holds a value newsetl cannot use; the message names it, so a
    typo in a deployment fails at start-up with the variable to fix, not deep inside a run."""


N = TypeVar("N", int, float)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class _Env:
    """Reads ``NEWSETL_*`` variables; every bad value raises :class:`SettingsError` naming it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        return value if value not in (None, "") else None

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        return self._bounded(name, default, float, "a number", minimum, None)

    def integer(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        return self._bounded(name, default, int, "a whole number", minimum, maximum)

    def _bounded(self, name: str, default: N, cast: Callable[[str], N], what: str, minimum: N,
                 maximum: N | None) -> N:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = cast(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r}: expected {what}") from None
        if not (value >= minimum and (maximum is None or value <= maximum)):  # nan fails too
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"≥ {minimum:g}"
            raise SettingsError(f"{name}={raw!r}: must be {bound}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.raw(name)
        if raw is None:
            return default
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise SettingsError(f"{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")

    def path(self, name: str) -> Path | None:
        raw = self.raw(name)
        return Path(raw).expanduser() if raw else None


@dataclass(frozen=True)
class StoryConfig:
    """Story clustering: the window an article is compared in, the bars the learned join
    decision (``etl/stories/join_model.json``) applies, the long reach, links
    (docs/stories.md)."""

    window_hours: float = 72.0
    # the candidate stories of the window an article is scored against: the ones sharing the
    # most names, numbers and content words with it (a full window at 2,000 articles a day
    # offers ~150 stories sharing two content words; the dev sets never exceed 18)
    max_candidates: int = 32
    # with an attribution cue naming an outlet of the story ("según la VOA"), the article joins
    # it at this probability of the model (lower than the model's own bar)
    cites_probability: float = 0.2
    feature_chars: int = 1500               # title + lead text for terms/entities/numbers
    lead_chars: int = 600                   # title + lead text for the embedding (600: the multilingual
                                            # calibration point, docs/stories.md)
    use_embedding: bool = True
    # two stories merge when one, compared with the other like an article, reaches this
    # probability (or the join bar, if higher): merging at the join bar itself folded ECB+'s
    # same-topic twin events together (docs/benchmarks.md, "Stories v2")
    merge_probability: float = 0.9
    # the long reach: beyond the window, a story stays a candidate for this many days when the
    # article shares a rare name with it (uncommon in the language, and held by at most
    # `reach_max_stories` stories of the last `reach_horizon_days`): follow-ups weeks later
    # (a hearing, a charge). 0 turns it off.
    reach_days: float = 90.0
    reach_max_stories: int = 2
    reach_horizon_days: float = 365.0       # rarity is counted over this many days of stories
    reach_probability: float = 0.75         # the join bar for a story found by the long reach
    # a story's span grows with identity evidence: an article more than `span_hours` after a
    # story's first article joins it only at `span_probability`, unless they share a name rare
    # in the language that few stories hold (the long reach's notion of a rare name)
    span_hours: float = 24.0
    span_probability: float = 0.95
    # related, not merged: a candidate story the article did not join is linked to the
    # article's story when the model gives it at least this probability (story_links)
    link_probability: float = 0.3
    # a link is a follow-up when the related story had been quiet this long before the article
    follow_up_hours: float = 24.0


@dataclass(frozen=True)
class Retention:
    """What the daily maintenance prunes. Articles are never pruned; logs about them are."""

    poll_days: int = 90    # feed_polls rows (the per-poll log; feeds keep their current state)
    run_days: int = 365    # finished ingestion_runs rows no poll refers to any more


@dataclass(frozen=True)
class Settings:
    """Every runtime setting, read once per process by :func:`load_settings` and passed down;
    no other module reads the environment."""

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
    task_workers: int = 4              # Prefect tasks (feed chunks, batches) running at once
    fetch_concurrency: int = 8
    per_host_concurrency: int = 2
    poll_chunk_size: int = 100        # feeds one worker leases (and one task polls) at a time
    feed_lease_seconds: float = 900.0  # a crashed worker's feeds are free again after this
    page_claim_seconds: float = 300.0  # a crashed run's claimed pages are free again after this
    # Extraction: worker processes, a per-page kill timeout, recycling, a size cap checked
    # before parsing; the raw WARC archive and its rotation size.
    extract_workers: int = 2
    extract_timeout: float = 20.0
    extract_max_tasks: int = 1000
    max_extract_bytes: int = 3 * 1024 * 1024
    archive_dir: Path | None = None          # None → <home>/archive
    archive_max_bytes: int = 1024 * 1024 * 1024
    archive_enabled: bool = True
    pushgateway: str | None = None           # Prometheus Pushgateway each flow run pushes to
    stories: StoryConfig = StoryConfig()
    retention: Retention = Retention()

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


def load_settings(sources_file: str | Path | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Builds settings from ``NEWSETL_*`` variables (``environ``, default ``os.environ``); an
    explicit sources file wins over the environment. Raises :class:`SettingsError`."""
    env = _Env(os.environ if environ is None else environ)
    contact = env.text("NEWSETL_CONTACT_URL", "https://github.com/newsetl/newsetl")
    return Settings(
        home=env.path("NEWSETL_HOME") or default_home(),
        database_url=env.raw("NEWSETL_DATABASE_URL"),
        sources_file=Path(sources_file).expanduser() if sources_file else env.path("NEWSETL_SOURCES") or DEFAULT_SOURCES,
        allow_private_networks=env.flag("NEWSETL_ALLOW_PRIVATE_NETWORKS", False),
        user_agent=env.text("NEWSETL_USER_AGENT", f"newsetl/{__version__} (+{contact}; news archiving bot)"),
        connect_timeout=env.number("NEWSETL_CONNECT_TIMEOUT", 10.0, minimum=0.001),
        read_timeout=env.number("NEWSETL_READ_TIMEOUT", 20.0, minimum=0.001),
        total_timeout=env.number("NEWSETL_TOTAL_TIMEOUT", 60.0, minimum=0.001),
        max_feed_bytes=env.integer("NEWSETL_MAX_FEED_BYTES", 10 * 1024 * 1024, minimum=1),
        max_page_bytes=env.integer("NEWSETL_MAX_PAGE_BYTES", 5 * 1024 * 1024, minimum=1),
        max_entries_per_poll=env.integer("NEWSETL_MAX_ENTRIES_PER_POLL", 500, minimum=1),
        batch_size=env.integer("NEWSETL_BATCH_SIZE", 100, minimum=1),
        task_workers=env.integer("NEWSETL_TASK_WORKERS", 4, minimum=1, maximum=MAX_TASK_WORKERS),
        fetch_concurrency=env.integer("NEWSETL_FETCH_CONCURRENCY", 8, minimum=1),
        per_host_concurrency=env.integer("NEWSETL_PER_HOST_CONCURRENCY", 2, minimum=1),
        poll_chunk_size=env.integer("NEWSETL_POLL_CHUNK_SIZE", 100, minimum=1),
        feed_lease_seconds=env.number("NEWSETL_FEED_LEASE_SECONDS", 900.0, minimum=1),
        page_claim_seconds=env.number("NEWSETL_PAGE_CLAIM_SECONDS", 300.0),
        extract_workers=env.integer("NEWSETL_EXTRACT_WORKERS", 2, minimum=1),
        extract_timeout=env.number("NEWSETL_EXTRACT_TIMEOUT", 20.0, minimum=0.001),
        extract_max_tasks=env.integer("NEWSETL_EXTRACT_MAX_TASKS", 1000, minimum=1),
        max_extract_bytes=env.integer("NEWSETL_MAX_EXTRACT_BYTES", 3 * 1024 * 1024, minimum=1),
        archive_dir=env.path("NEWSETL_ARCHIVE_DIR"),
        archive_max_bytes=env.integer("NEWSETL_ARCHIVE_MAX_BYTES", 1024 * 1024 * 1024, minimum=1),
        archive_enabled=env.flag("NEWSETL_ARCHIVE", True),
        pushgateway=env.raw("NEWSETL_PUSHGATEWAY"),
        stories=StoryConfig(
            window_hours=env.number("NEWSETL_STORY_WINDOW_HOURS", 72.0, minimum=0.001),
            use_embedding=env.flag("NEWSETL_STORY_EMBEDDING", True),
            reach_days=env.number("NEWSETL_STORY_REACH_DAYS", StoryConfig.reach_days, minimum=0),
        ),
        retention=Retention(
            poll_days=env.integer("NEWSETL_RETENTION_DAYS", 90),
            run_days=env.integer("NEWSETL_RUN_RETENTION_DAYS", 365),
        ),
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
        raise SourcesError(f"cannot read sources file {path}: {exc}; pass --sources FILE or set "
                           f"NEWSETL_SOURCES to a registry like deploy/sources.toml (see README)") from exc
    return parse_sources(text, origin=str(path))
