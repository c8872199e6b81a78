"""The ``newsetl`` command line."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from etl import store
from etl.config import load_settings
from etl.store import db, migrations

app = typer.Typer(help="newsetl: news feeds → articles → PostgreSQL.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
db_app = typer.Typer(help="Database administration.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()

SourcesOpt = Annotated[Optional[Path], typer.Option("--sources", help="Sources registry (default: $NEWSETL_SOURCES or deploy/sources.toml).")]


def _ago(ts: datetime | None) -> str:
    if ts is None:
        return "never"
    secs = (datetime.now(UTC) - ts).total_seconds()
    future = secs < 0
    secs = abs(secs)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            text = f"{secs / size:.0f}{unit}"
            break
    else:
        text = f"{secs:.0f}s"
    return f"in {text}" if future else f"{text} ago"


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and newsetl's progress logs.")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        # Prefect logs every task run at INFO; our own summary says what matters.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # No network beyond the outlets: don't let the temporary Prefect server try to phone home.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations from sql/ (each exactly once)."""
    settings = load_settings()
    url = db.resolve_database_url(settings)
    applied = migrations.upgrade(url)
    console.print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "; schema is up to date"))


@app.command()
def ingest(
    sources_file: SourcesOpt = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", help="Only this source slug (repeatable).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Poll every active feed now, whatever its schedule.")] = False,
) -> None:
    """Run the ingest flow once: poll due feeds and load new articles."""
    from flows.ingest import ingest as ingest_flow

    summary = ingest_flow(sources_file=str(sources_file) if sources_file else None,
                          sources=source or [], force=force, kind="manual")
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    console.print(
        f"run {summary['run_id']}: {summary['feeds_polled']} feed(s) polled "
        f"({summary['feeds_failed']} failed), {summary['entries_seen']} entries seen, "
        f"{summary['articles_new']} new article(s), {summary['articles_updated']} updated, "
        f"{summary['errors']} error(s)"
    )
    if summary.get("runs_abandoned"):
        console.print(f"closed {len(summary['runs_abandoned'])} dead run(s) as abandoned "
                      f"({', '.join(map(str, summary['runs_abandoned']))}) and took over their leases")
    for holder, n in (summary.get("feeds_held") or {}).items():
        console.print(f"skipped {n} feed(s) leased by another live run ({holder})", markup=False)


def _when(ts: datetime | None) -> str:
    return f"{ts:%Y-%m-%d %H:%M}Z ({_ago(ts)})" if ts else "never"


def _span(secs: float | None) -> str:
    if not secs:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs / size:.0f}{unit}"
    return f"{secs:.0f}s"


def feed_health(r: dict) -> str:
    """One feed's health as `newsetl status` prints it (rich markup); the why is in "last error"."""
    from etl.fetch.schedule import is_stale

    if not r["active"]:
        return f"[dim]inactive: {r['deactivated_reason']}[/dim]"
    if r["last_polled_at"] is None:
        parts = ["[yellow]never polled[/yellow]"]
    elif r["consecutive_failures"]:
        parts = [f"[red]failing since {_when(r['failing_since'])} ({r['consecutive_failures']}×)[/red]"]
    else:
        parts = ["[green]OK[/green]"]
    if r.get("host_parked_until"):
        parts.append(f"[yellow]host parked until {r['host_parked_until']:%Y-%m-%d %H:%M}Z[/yellow]")
    newest = r.get("newest_entry_at") or r.get("last_new_entry_at")
    if r["last_polled_at"] is not None and is_stale(newest_entry_at=newest, entry_gap=r.get("entry_interval")):
        parts.append(f"[magenta]stale: nothing new for {_ago(newest).removesuffix(' ago')}, "
                     f"usually every {_span(r['entry_interval'])}[/magenta]")
    return " · ".join(parts)


@app.command()
def reextract(
    since: Annotated[Optional[datetime], typer.Option("--since", help="Only articles published (else first seen) on or after this date.")] = None,
    until: Annotated[Optional[datetime], typer.Option("--until", help="Only articles published before this date.")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", help="Only this source slug (repeatable).")] = None,
) -> None:
    """Re-run extraction from the raw WARC archive (no network) and update rows idempotently."""
    from etl.jobs.reextract import reextract as run_reextract

    settings = load_settings()
    engine = db.get_engine(db.connect(settings))
    as_utc = lambda d: d.replace(tzinfo=UTC) if d and d.tzinfo is None else d  # noqa: E731
    res = run_reextract(engine, settings, since=as_utc(since), until=as_utc(until), sources=source or [])
    console.print(f"{res.selected} archived article(s): {res.updated} updated, {res.unchanged} unchanged, "
                  f"{res.failed} failed extraction, {res.missing} missing from the archive")


@app.command()
def status() -> None:
    """Health of every feed: OK / failing since when and why / host parked / stale, next poll,
    new entries in the last 24 h."""
    settings = load_settings()
    engine = db.get_engine(db.connect(settings))
    rows = store.feed_status(engine)
    table = Table(title="Feeds", show_lines=False)
    for col in ("source", "feed", "lang", "health", "last poll", "HTTP", "next poll", "new 24h", "total", "last error"):
        table.add_column(col, overflow="fold")
    for r in rows:
        feed = r["url"] if r.get("registry_url") in (None, r["url"]) else f"{r['url']} (moved from {r['registry_url']})"
        error = r["last_error"] or ""
        if r.get("host_parked_until") and r.get("host_parked_reason") and "parked" not in error:
            error = f"{error} (host: {r['host_parked_reason']})".strip()
        table.add_row(r["slug"], feed, r["language"] or "", feed_health(r), _ago(r["last_polled_at"]),
                      str(r["last_http_status"] or ""), _ago(r["next_poll_at"]) if r["active"] else "",
                      str(r["new_24h"]), str(r["articles_total"]), error)
    console.print(table)


@app.command()
def articles(limit: Annotated[int, typer.Option("--limit", "-n")] = 20) -> None:
    """The latest articles."""
    settings = load_settings()
    engine = db.get_engine(db.connect(settings))
    table = Table(title=f"Latest {limit} articles")
    for col in ("id", "source", "lang", "published (UTC)", "status", "words", "title"):
        table.add_column(col, overflow="fold")
    for r in store.latest_articles(engine, limit):
        table.add_row(str(r["id"]), r["slug"], r["language"] or "",
                      r["published_at"].strftime("%Y-%m-%d %H:%M") if r["published_at"] else "",
                      r["extraction_status"], str(r["word_count"] or 0), r["title"] or "")
    console.print(table)


@app.command()
def demo(port: Annotated[int, typer.Option(help="Port of the demo sites on 127.0.0.2-4.")] = 8765) -> None:
    """Serve the bundled offline demo outlets and run the real ingest flow against them."""
    from etl.demo.server import DemoSites
    from flows.ingest import ingest as ingest_flow

    os.environ["NEWSETL_ALLOW_PRIVATE_NETWORKS"] = "1"
    settings = load_settings()
    demo_dir = settings.home / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    db.connect(settings, migrate=True)  # the demo sets its database up
    with DemoSites(port=port) as sites:
        sources_path = demo_dir / "sources.toml"
        sources_path.write_text(sites.sources_toml(min_request_interval=0.05), encoding="utf-8")
        console.print(f"demo outlets: {', '.join(sites.base_urls.values())}")
        console.print("running the ingest flow (without PREFECT_API_URL Prefect starts a temporary server first) …")
        summary = ingest_flow(sources_file=str(sources_path), force=True, kind="demo")
    _print_summary(summary)
    engine = db.get_engine(db.connect(settings))
    latest = store.latest_articles(engine, 8)
    total = store.article_count(engine)
    console.print(f"{total} article(s) in the database; latest:")
    for r in latest:
        console.print(f"  {r['slug']}/{r['language']}: {r['title']}", markup=False)


@app.command()
def recluster(
    since: Annotated[datetime, typer.Option("--since", help="Rebuild stories of articles published from this date/time (UTC) on.")],
) -> None:
    """Rebuild the stories (and near-duplicate links) of a time window from scratch, in order."""
    from etl import stories

    settings = load_settings()
    engine = db.get_engine(db.connect(settings))
    start = since if since.tzinfo else since.replace(tzinfo=UTC)
    counts = stories.recluster(engine, start, settings.stories)
    console.print(f"reclustered {counts.processed} article(s) since {start:%Y-%m-%d %H:%M} UTC: "
                  f"{counts.stories_new} stor(ies), {counts.stories_joined} joined, "
                  f"{counts.near_duplicates} near-duplicate(s), {counts.citations} citation(s)")


from etl.cli import ops  # noqa: E402  (operator commands: backfill, stack up|down|status)

ops.register(app)


if __name__ == "__main__":
    app()
