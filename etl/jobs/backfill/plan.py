"""Backfill planning: what to load, and in which window — sitemaps, a URL list or WARC files.

A backfill job (:class:`BackfillSpec`) is turned into a :class:`Plan`: candidate URLs, each with
the date that decides its window, grouped into windows on a fixed grid of days. Planning reads
robots.txt and sitemaps (sitemap mode), a file (urls) or WARC headers (warc); it loads nothing.
``etl.jobs.backfill.run`` runs the plan.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from etl import store
from etl.config import Settings, Source, load_sources
from etl.fetch.http import Fetcher
from etl.fetch.urls import canonicalize
from etl.parse.sitemaps import (
    MAX_SITEMAP_BYTES,
    SitemapError,
    parse_sitemap,
    robots_sitemaps,
    url_date,
)

log = logging.getLogger(__name__)

MODES = ("sitemap", "urls", "warc", "reextract")
UNDATED = "undated"
MAX_SITEMAPS_PER_SOURCE = 2000   # a runaway sitemap index stops here, with a recorded error
MAX_SITEMAP_DEPTH = 4            # robots → index → index → urlset is the deepest seen in the wild
SITEMAP_ACCEPT = "application/xml, text/xml;q=0.9, application/x-gzip;q=0.8, */*;q=0.1"
_EPOCH = date(1970, 1, 1)


class BackfillError(ValueError):
    """The backfill cannot start as asked (bad parameters, unknown source, missing input)."""


def _as_date(value: date | datetime | str | None, name: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise BackfillError(f"{name}: expected a date YYYY-MM-DD, got {value!r}") from exc


def _day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _expand_warcs(paths: Iterable[str | Path]) -> tuple[str, ...]:
    """Files as given; a directory (newsetl's own archive, a CC-NEWS download folder) stands for
    the ``*.warc.gz`` / ``*.warc`` files in it, in name order."""
    out: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser().resolve()
        if path.is_dir():
            out.extend(str(f) for f in sorted(path.iterdir()) if f.name.endswith((".warc.gz", ".warc")))
        else:
            out.append(str(path))
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class BackfillSpec:
    """What the operator asked for. ``since`` is inclusive, ``until`` exclusive (UTC days)."""

    mode: str
    sources: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    window_days: int = 1
    urls_file: str | None = None
    warc_files: tuple[str, ...] = ()
    sitemap_urls: tuple[str, ...] = ()   # start here instead of robots.txt's Sitemap: lines

    @classmethod
    def build(cls, mode: str, sources: Iterable[str] | None = None, since: Any = None,
              until: Any = None, window_days: int = 1, urls_file: str | Path | None = None,
              warc_files: Iterable[str | Path] | None = None,
              sitemap_urls: Iterable[str] | None = None, today: date | None = None) -> "BackfillSpec":
        """Validates and fills defaults; raises BackfillError with a clear message."""
        if mode not in MODES:
            raise BackfillError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not isinstance(window_days, int) or window_days < 1:
            raise BackfillError(f"window_days must be an integer ≥ 1, got {window_days!r}")
        since_d, until_d = _as_date(since, "since"), _as_date(until, "until")
        if mode in {"sitemap", "reextract"}:
            if since_d is None:
                raise BackfillError(f"{mode} mode needs 'since' (the first day to load)")
            # Default end: tomorrow, so that today's articles are in range.
            until_d = until_d or (today or datetime.now(UTC).date()) + timedelta(days=1)
        if since_d and until_d and until_d <= since_d:
            raise BackfillError(f"until ({until_d}) must be after since ({since_d})")
        if mode == "urls":
            if not urls_file:
                raise BackfillError("urls mode needs 'urls_file' (one URL a line)")
            if not Path(urls_file).is_file():
                raise BackfillError(f"urls_file {urls_file} does not exist")
        warcs = _expand_warcs(warc_files or ())
        if mode == "warc":
            if not warcs:
                raise BackfillError("warc mode needs 'warc_files'")
            missing = [w for w in warcs if not Path(w).is_file()]
            if missing:
                raise BackfillError(f"WARC file(s) not found: {', '.join(missing)}")
        return cls(mode=mode, sources=tuple(sorted(set(sources or ()))), since=since_d, until=until_d,
                   window_days=window_days,
                   urls_file=str(Path(urls_file).expanduser().resolve()) if urls_file else None,
                   warc_files=warcs, sitemap_urls=tuple(sitemap_urls or ()))

    @property
    def job_key(self) -> str:
        """Identity of the job for checkpoints: mode, sources, inputs and window size — not the
        range, so that widening the range of a finished job only runs the new windows."""
        inputs: dict[str, Any] = {"mode": self.mode, "sources": list(self.sources),
                                  "window_days": self.window_days, "sitemap_urls": list(self.sitemap_urls)}
        if self.urls_file:
            inputs["urls_file"] = hashlib.sha256(Path(self.urls_file).read_bytes()).hexdigest()
        if self.warc_files:
            inputs["warc_files"] = [(w, Path(w).stat().st_size) for w in self.warc_files]
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:20]
        return f"{self.mode}-{digest}"

    def parameters(self) -> dict[str, Any]:
        return {"mode": self.mode, "sources": list(self.sources),
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "window_days": self.window_days, "urls_file": self.urls_file,
                "warc_files": list(self.warc_files), "sitemap_urls": list(self.sitemap_urls),
                "job_key": self.job_key}


# ---------------------------------------------------------------------------------------------
# Sources


@dataclass(frozen=True)
class SourceInfo:
    id: int
    slug: str
    min_request_interval: float
    origins: tuple[str, ...]      # scheme://host[:port] of the homepage, then of each feed
    hosts: frozenset[str]         # host[:port], with and without "www."


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _host_keys(netloc: str) -> set[str]:
    netloc = netloc.lower()
    bare = netloc[4:] if netloc.startswith("www.") else netloc
    return {bare, "www." + bare}


def _source_info(source_id: int, src: Source) -> SourceInfo:
    urls = ([src.homepage] if src.homepage else []) + [f.url for f in src.feeds]
    origins = tuple(dict.fromkeys(_origin(u) for u in urls))
    hosts: set[str] = set()
    for u in urls:
        hosts |= _host_keys(urlsplit(u).netloc)
    return SourceInfo(source_id, src.slug, src.min_request_interval, origins, frozenset(hosts))


def resolve_sources(engine: Engine, settings: Settings, slugs: Sequence[str]) -> list[SourceInfo]:
    """The registry's sources (all, or the ones named), synced into the database.

    Syncing never deactivates anything here: a backfill must not change what the scheduled
    ingest polls."""
    registry = load_sources(settings.sources_file)
    known = {s.slug for s in registry}
    unknown = sorted(set(slugs) - known)
    if unknown:
        raise BackfillError(f"unknown source(s) {', '.join(unknown)}; the registry "
                            f"{settings.sources_file} has {', '.join(sorted(known)) or 'none'}")
    chosen = [s for s in registry if not slugs or s.slug in slugs]
    if not chosen:
        raise BackfillError(f"no sources in {settings.sources_file}")
    ids = store.sync_sources(engine, chosen, deactivate_missing=False)
    return [_source_info(ids[s.slug], s) for s in chosen]


class SourceMatcher:
    """Which source a URL belongs to: by host; with one source selected, everything is its."""

    def __init__(self, sources: Sequence[SourceInfo]) -> None:
        self.sources = list(sources)
        self._by_host = {h: s for s in sources for h in s.hosts}

    def match(self, url: str) -> SourceInfo | None:
        netloc = urlsplit(url).netloc.lower()
        hit = self._by_host.get(netloc)
        if hit is None and len(self.sources) == 1:
            return self.sources[0]
        return hit

    def match_strict(self, url: str) -> SourceInfo | None:
        return self._by_host.get(urlsplit(url).netloc.lower())


# ---------------------------------------------------------------------------------------------
# Planning: candidates → windows


@dataclass(frozen=True)
class Candidate:
    url: str
    canonical_url: str
    slug: str
    when: datetime | None                 # decides the window; None → the 'undated' unit
    title: str | None = None
    language: str | None = None
    published_at: datetime | None = None  # only when the input states it (news sitemap)
    warc_path: str | None = None
    warc_offset: int | None = None


@dataclass
class Window:
    unit: str
    start: datetime | None
    end: datetime | None
    candidates: list[Candidate] = field(default_factory=list)


@dataclass
class Plan:
    job_key: str
    windows: list[Window]
    complete: bool = True                 # False when some input could not be read
    errors: list[str] = field(default_factory=list)
    out_of_range: int = 0
    undated_skipped: int = 0
    unmatched: int = 0                    # URLs of no selected source
    invalid: int = 0
    sitemaps_fetched: int = 0
    sitemaps_skipped: int = 0             # index entries whose lastmod is before the range

    @property
    def total_candidates(self) -> int:
        return sum(len(w.candidates) for w in self.windows)


def _grid_start(d: date, window_days: int) -> date:
    """Windows are aligned on a fixed grid (from 1970-01-01), so the unit names of a job do not
    depend on the range asked: two runs with different ranges agree on every inner window."""
    return _EPOCH + timedelta(days=((d - _EPOCH).days // window_days) * window_days)


def _unit_name(start: date, end: date) -> str:
    return start.isoformat() if end - start == timedelta(days=1) else f"{start.isoformat()}..{end.isoformat()}"


def make_windows(since: date, until: date, window_days: int) -> list[Window]:
    """[since, until) cut on the window grid; edge windows are clipped to the range."""
    windows: list[Window] = []
    cell = _grid_start(since, window_days)
    while cell < until:
        nxt = cell + timedelta(days=window_days)
        start, end = max(cell, since), min(nxt, until)
        windows.append(Window(_unit_name(start, end), _day_start(start), _day_start(end)))
        cell = nxt
    return windows


def _in_range(when: datetime | None, spec: BackfillSpec) -> bool:
    if when is None:
        return True
    if spec.since and when < _day_start(spec.since):
        return False
    return not (spec.until and when >= _day_start(spec.until))


def assign_windows(spec: BackfillSpec, candidates: Iterable[Candidate], plan: Plan) -> None:
    """Puts each candidate in its window (deduplicated by canonical URL, first one wins)."""
    seen: set[str] = set()
    unique: list[Candidate] = []
    for c in candidates:
        if c.canonical_url not in seen:
            seen.add(c.canonical_url)
            unique.append(c)
    if spec.since and spec.until:
        windows = make_windows(spec.since, spec.until, spec.window_days)
    else:  # open range (urls / warc without bounds): the grid cells that hold items
        cells: dict[date, Window] = {}
        for c in unique:
            if c.when is None:
                continue
            d = c.when.astimezone(UTC).date()
            if not _in_range(c.when, spec):
                continue
            cell = _grid_start(d, spec.window_days)
            if cell not in cells:
                start, end = cell, cell + timedelta(days=spec.window_days)
                if spec.since:
                    start = max(start, spec.since)
                if spec.until:
                    end = min(end, spec.until)
                cells[cell] = Window(_unit_name(start, end), _day_start(start), _day_start(end))
        windows = [cells[k] for k in sorted(cells)]
    undated = Window(UNDATED, None, None)
    for c in unique:
        if c.when is None:
            undated.candidates.append(c)
            continue
        for w in windows:
            if w.start is not None and w.end is not None and w.start <= c.when < w.end:
                w.candidates.append(c)
                break
        else:
            plan.out_of_range += 1
    if undated.candidates:
        windows.append(undated)
    plan.windows = windows


def _dated(when: date | None) -> datetime | None:
    return _day_start(when) if when else None


def plan_urls(spec: BackfillSpec, sources: Sequence[SourceInfo]) -> Plan:
    """A file of URLs, one a line (blank lines and # comments ignored). A URL with a date in it
    (/YYYYMMDD-, /YYYY/MM/DD/) goes to its window; one without goes to the 'undated' unit."""
    plan = Plan(spec.job_key, [])
    matcher = SourceMatcher(sources)
    candidates: list[Candidate] = []
    assert spec.urls_file
    for raw in Path(spec.urls_file).read_text(encoding="utf-8", errors="replace").splitlines():
        url = raw.strip()
        if not url or url.startswith("#"):
            continue
        if urlsplit(url).scheme not in {"http", "https"} or not urlsplit(url).netloc:
            plan.invalid += 1
            plan.errors.append(f"not an http(s) URL: {url[:200]}")
            continue
        src = matcher.match(url)
        if src is None:
            plan.unmatched += 1
            continue
        when = _dated(url_date(url))
        if not _in_range(when, spec):
            plan.out_of_range += 1
            continue
        candidates.append(Candidate(url, canonicalize(url), src.slug, when))
    assign_windows(spec, candidates, plan)
    return plan


def plan_sitemaps(spec: BackfillSpec, sources: Sequence[SourceInfo], fetcher: Fetcher) -> Plan:
    """robots.txt ``Sitemap:`` lines → sitemap indexes → (news) sitemaps → URLs in range.

    An index entry whose ``<lastmod>`` is before ``since`` is not fetched: nothing in it can be
    newer than its last change. URLs are dated by ``<news:publication_date>``, then the day in
    the URL, then ``<lastmod>``; an undated URL cannot be shown to be in range and is skipped."""
    assert spec.since is not None and spec.until is not None
    plan = Plan(spec.job_key, [])
    since = _day_start(spec.since)
    candidates: list[Candidate] = []
    matcher = SourceMatcher(sources)
    for src in sources:
        seeds: list[str] = []
        if spec.sitemap_urls:
            seeds = [u for u in spec.sitemap_urls if matcher.match(u) is src]
        else:
            for origin in src.origins:
                res = fetcher.fetch(f"{origin}/robots.txt", max_bytes=512 * 1024,
                                    accept="text/plain", min_interval=src.min_request_interval)
                if res.ok:
                    seeds.extend(u for u in robots_sitemaps(res.content, res.final_url) if u not in seeds)
                elif res.status != 404:
                    plan.complete = False
                    plan.errors.append(f"{src.slug}: robots.txt {origin}: {res.describe_error()}")
            if not seeds:  # no Sitemap: line anywhere; the conventional place is worth one try
                seeds = [f"{src.origins[0]}/sitemap.xml"] if src.origins else []
        queue: list[tuple[str, int]] = [(u, 0) for u in seeds]
        seen: set[str] = set()
        while queue:
            url, depth = queue.pop(0)
            if url in seen:
                continue
            seen.add(url)
            if len(seen) > MAX_SITEMAPS_PER_SOURCE:
                plan.complete = False
                plan.errors.append(f"{src.slug}: more than {MAX_SITEMAPS_PER_SOURCE} sitemaps; stopped")
                break
            res = fetcher.fetch(url, max_bytes=MAX_SITEMAP_BYTES, accept=SITEMAP_ACCEPT,
                                min_interval=src.min_request_interval)
            plan.sitemaps_fetched += 1
            if not res.ok:
                plan.complete = False
                plan.errors.append(f"{src.slug}: sitemap {url}: {res.describe_error()}")
                continue
            try:
                sitemap = parse_sitemap(res.content, res.final_url)
            except SitemapError as exc:
                plan.complete = False
                plan.errors.append(f"{src.slug}: sitemap {url}: {exc}")
                continue
            if sitemap.kind == "index":
                if depth >= MAX_SITEMAP_DEPTH:
                    plan.complete = False
                    plan.errors.append(f"{src.slug}: sitemap {url}: nested deeper than {MAX_SITEMAP_DEPTH}")
                    continue
                for e in sitemap.entries:
                    if e.lastmod is not None and e.lastmod < since:
                        plan.sitemaps_skipped += 1
                        continue
                    queue.append((e.loc, depth + 1))
                continue
            for e in sitemap.entries:
                owner = matcher.match_strict(e.loc) or (src if len(sources) == 1 else None)
                if owner is None:
                    plan.unmatched += 1
                    continue
                when = e.date
                if when is None:
                    plan.undated_skipped += 1
                    continue
                if not _in_range(when, spec):
                    plan.out_of_range += 1
                    continue
                candidates.append(Candidate(e.loc, canonicalize(e.loc), owner.slug, when,
                                            title=e.title, language=e.language,
                                            published_at=e.publication_date))
    assign_windows(spec, candidates, plan)
    return plan


def iter_warc_responses(path: str) -> Iterator[tuple[int, Any]]:
    """(offset, record) for every HTTP response record of a WARC file (gzip or plain)."""
    from warcio.archiveiterator import ArchiveIterator

    with open(path, "rb") as fh:
        it = ArchiveIterator(fh)
        for record in it:
            if record.rec_type != "response" or record.http_headers is None:
                continue
            yield it.get_record_offset(), record


def _warc_date(record: Any) -> datetime | None:
    raw = record.rec_headers.get_header("WARC-Date")
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def plan_warc(spec: BackfillSpec, sources: Sequence[SourceInfo]) -> Plan:
    """HTTP 200 HTML responses of the selected sources' hosts, dated by the day in the URL, else
    the capture time (WARC-Date). Reads no body now: the window reads it back by offset."""
    plan = Plan(spec.job_key, [])
    matcher = SourceMatcher(sources)
    candidates: list[Candidate] = []
    for path in spec.warc_files:
        try:
            for offset, record in iter_warc_responses(path):
                url = record.rec_headers.get_header("WARC-Target-URI") or ""
                if urlsplit(url).scheme not in {"http", "https"}:
                    continue
                src = matcher.match_strict(url)   # CC-NEWS holds every outlet: keep ours only
                if src is None:
                    plan.unmatched += 1
                    continue
                status = record.http_headers.get_statuscode()
                ctype = (record.http_headers.get_header("Content-Type") or "").lower()
                if status != "200" or ("html" not in ctype and ctype):
                    continue
                when = _dated(url_date(url)) or _warc_date(record)
                if not _in_range(when, spec):
                    plan.out_of_range += 1
                    continue
                candidates.append(Candidate(url, canonicalize(url), src.slug, when,
                                            warc_path=path, warc_offset=offset))
        except Exception as exc:  # a truncated or corrupt WARC: keep what was read, say so
            plan.complete = False
            plan.errors.append(f"WARC {path}: {type(exc).__name__}: {exc}"[:500])
    assign_windows(spec, candidates, plan)
    return plan


def plan_reextract(spec: BackfillSpec) -> Plan:
    assert spec.since is not None and spec.until is not None
    return Plan(spec.job_key, make_windows(spec.since, spec.until, spec.window_days))


def plan_backfill(spec: BackfillSpec, sources: Sequence[SourceInfo], fetcher: Fetcher | None) -> Plan:
    if spec.mode == "sitemap":
        if fetcher is None:
            raise BackfillError("sitemap mode needs a fetcher")
        return plan_sitemaps(spec, sources, fetcher)
    if spec.mode == "urls":
        return plan_urls(spec, sources)
    if spec.mode == "warc":
        return plan_warc(spec, sources)
    return plan_reextract(spec)
