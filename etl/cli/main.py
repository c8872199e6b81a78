"""The ``newsetl`` command line."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import psycopg
import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from etl import store
from etl.cli import listings, render
from etl.config import SettingsError, SourcesError, load_settings
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

    _run_flow(ingest_flow, sources_file=str(sources_file) if sources_file else None,
              sources=source or [], force=force, kind="manual")


def _run_flow(flow: Any, **parameters: Any) -> None:
    """Runs a flow and prints its summary; the run's own outcome decides the exit code, whatever
    became of the Prefect API (docs/faults.md): an API that is down at the start is one line
    and exit 1, nothing run; one lost mid-run is one warning line, and what Prefect missed is
    noted on the run's row."""
    from flows import prefect_api

    with _failures():
        try:
            call = prefect_api.call_flow(flow, **parameters)
        except prefect_api.ApiUnavailable as exc:
            typer.echo(f"newsetl: {exc}", err=True)
            raise typer.Exit(1) from exc
        if call.summary is not None:
            _print_summary(call.summary)
        if call.warning:
            typer.echo(call.warning, err=True)
        if call.failure is not None:
            if call.api_down:
                typer.echo(f"newsetl: the run failed: {_first_line(call.failure)}", err=True)
                _exit_without_prefect(1, call.engine)
            raise call.failure
    if call.api_down:
        _exit_without_prefect(0, call.engine)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _exit_without_prefect(code: int, engine: Engine | None) -> None:
    """Ends the process once the run is recorded in PostgreSQL, without waiting for Prefect's
    background senders: with the API gone they would retry every queued task-run event (~7 s
    each) and log batch (~1 min each) before the interpreter could exit — measured: still at it
    27 minutes after a 38-batch run had finished (docs/faults.md). What they hold cannot reach the API anyway;
    the run's row notes that it was lost. Our own resources are closed first."""
    import sys

    from etl.fetch.archive import close_archives
    from etl.parse.pool import close_shared_pool

    close_shared_pool()
    close_archives()
    if engine is not None:
        engine.dispose()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_summary(summary: dict) -> None:
    console.print(
        f"run {summary['run_id']}: {summary['feeds_polled']} feed(s) polled "
        f"({summary['feeds_failed']} failed), {summary['entries_seen']} entries seen, "
        f"{summary['articles_new']} new article(s), {summary['articles_updated']} updated, "
        f"{summary['errors']} error(s)"
        + (f", {summary['pages_unarchived']} page(s) not archived" if summary.get("pages_unarchived") else ""),
        soft_wrap=True,  # one line, whatever the width: scripts and logs read it
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
    """One feed's health as `newsetl status --wide` prints it (rich markup), from a row of
    :func:`etl.cli.listings.feed_rows`; the why is in "last error"."""
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
    newest = r.get("newest_entry_at") or r.get("last_new_article_at")
    if r["last_polled_at"] is not None and is_stale(newest_entry_at=newest, entry_gap=r.get("usual_entry_gap_seconds")):
        parts.append(f"[magenta]stale: nothing new for {_ago(newest).removesuffix(' ago')}, "
                     f"usually every {_span(r['usual_entry_gap_seconds'])}[/magenta]")
    return " · ".join(parts)


@app.command()
def reextract(
    since: Annotated[Optional[datetime], typer.Option("--since", help="Only articles published (else first seen) on or after this date.")] = None,
    until: Annotated[Optional[datetime], typer.Option("--until", help="Only articles published before this date.")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", help="Only this source slug (repeatable).")] = None,
    list_unarchived: Annotated[bool, typer.Option("--list-unarchived", help="Only list the selected articles that have no archived page (id, source, first seen, URL, why), one per line; re-extract nothing.")] = False,
) -> None:
    """Re-run extraction from the raw WARC archive (no network) and update rows idempotently."""
    from etl.jobs.reextract import reextract as run_reextract

    settings = load_settings()
    engine = db.get_engine(db.connect(settings))
    as_utc = lambda d: d.replace(tzinfo=UTC) if d and d.tzinfo is None else d  # noqa: E731
    if list_unarchived:
        for r in store.unarchived_articles(engine, as_utc(since), as_utc(until), source or []):
            typer.echo("\t".join([str(r["id"]), r["source"], f"{r['first_seen_at'].astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
                                   r["url"], r["why"] or "no archived response"]))
        return
    res = run_reextract(engine, settings, since=as_utc(since), until=as_utc(until), sources=source or [])
    console.print(f"{res.selected} archived article(s): {res.updated} updated, {res.unchanged} unchanged, "
                  f"{res.failed} failed extraction, {res.missing} missing from the archive", markup=False)
    if res.unarchived:
        filters = "".join([f" --since {_flag_time(since)}" if since else "",
                           f" --until {_flag_time(until)}" if until else "", *(f" --source {s}" for s in source or [])])
        console.print(f"{res.unarchived} article(s) of the selection have no archived page and were not "
                      f"re-extracted; list them: newsetl reextract{filters} --list-unarchived",
                      markup=False, highlight=False)


def _flag_time(d: datetime) -> str:
    """A date or time as the command line took it (for a command printed back to the user)."""
    return f"{d:%Y-%m-%d}" if (d.hour, d.minute, d.second, d.microsecond) == (0, 0, 0, 0) else d.isoformat()


JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document (keys documented in docs/cli.md) instead of a table.")]
WideOpt = Annotated[bool, typer.Option("--wide", help="Every column in full, however wide the lines get.")]


@contextmanager
def _failures() -> Iterator[None]:
    """Exit 1 with one line on stderr (no traceback) when the database or the settings fail:
    cron and CI see a failure, the operator sees why. Usage errors exit 2 (click's rule)."""
    try:
        yield
    except (SettingsError, SourcesError, migrations.SchemaBehind) as exc:
        typer.echo(f"newsetl: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (SQLAlchemyError, psycopg.Error) as exc:  # psycopg's own: the migration step connects directly
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        typer.echo(f"newsetl: database error: {first}", err=True)
        raise typer.Exit(1) from exc


def _engine() -> Engine:
    return db.get_engine(db.connect(load_settings()))


def _short_health(f: dict) -> str:
    """The health cell at 80 columns: one or two words (the full text is in --wide / --json)."""
    word = {"ok": "[green]OK[/green]", "failing": f"[red]FAILING {f['consecutive_failures']}×[/red]",
            "never_polled": "[yellow]never polled[/yellow]", "inactive": "[dim]inactive[/dim]"}[f["health"]]
    if f["stale"]:
        word += " [magenta]stale[/magenta]"
    if f["host_parked_until"]:
        word += " [yellow]parked[/yellow]"
    return word


STATUS_COLUMNS = (
    render.Column("source", "source", 8, 1, max_width=14),
    render.Column("feed", "feed", 24, 2, max_width=40, url=True),
    render.Column("health", "health", 10, 0, max_width=30),
    render.Column("lang", "lang", 4, 5, max_width=5),
    render.Column("last_poll", "last poll", 9, 4, max_width=10),
    render.Column("http", "HTTP", 4, 7, max_width=4, justify="right"),
    render.Column("next_poll", "next poll", 9, 8, max_width=10),
    render.Column("new_24h", "new 24h", 7, 6, max_width=7, justify="right"),
    render.Column("total", "total", 5, 9, max_width=8, justify="right"),
    render.Column("error", "last error", 16, 3, max_width=60),
)


@app.command()
def status(
    as_json: JsonOpt = False,
    wide: WideOpt = False,
    max_failures: Annotated[int, typer.Option("--max-failures", min=1, help="Exit 1 when an active feed failed this many polls in a row.")] = 1,
    stale_hours: Annotated[float, typer.Option("--stale-hours", min=0, help="Exit 1 when an active feed is stale (nothing new for much longer than usual) and silent this many hours; 0 never.")] = 24.0,
) -> None:
    """Health of every feed: OK / failing since when and why / host parked / stale, next poll,
    new entries in the last 24 h. Exits 1 when a feed is failing or stale past the thresholds."""
    thresholds = listings.Thresholds(max_failures=max_failures, stale_hours=stale_hours)
    with _failures():
        feeds = listings.feed_rows(_engine(), thresholds)
        errors = listings.ingest_errors(_engine())
        archive = listings.archive_failures(_engine())
        notes = listings.run_notes(_engine())
    alerting = [f for f in feeds if f["alerting"]]
    if as_json:
        render.print_json({"ok": not alerting,
                           "thresholds": {"max_failures": max_failures, "stale_hours": stale_hours},
                           "feeds": [render.pick(f, listings.FEED_KEYS) for f in feeds],
                           "ingest_errors": errors, "archive": archive, "run_notes": notes})
    else:
        console = Console()
        rows = []
        for f in feeds:
            feed = f["feed_url"]
            if wide and f["registry_url"] != f["feed_url"]:
                feed = f"{feed} (moved from {f['registry_url']})"
            error = f["last_error"] or ""
            if f["host_parked_until"] and f["host_parked_reason"] and "parked" not in error:
                error = f"{error} (host: {f['host_parked_reason']})".strip()
            rows.append({"source": f["source"], "feed": feed, "lang": f["language"] or "",
                         "health": feed_health(f) if wide else _short_health(f),
                         "last_poll": _ago(f["last_polled_at"]), "http": f["last_http_status"] or "",
                         "next_poll": _ago(f["next_poll_at"]) if f["active"] else "",
                         "new_24h": f["new_24h"], "total": f["articles_total"], "error": error})
        render.print_table(console, "Feeds", STATUS_COLUMNS, rows, wide=wide, empty="no feeds configured")
        if errors["count"]:
            console.print(f"{errors['count']} entries or values not stored as they came in the last "
                          f"{errors['hours']} h (table ingest_errors); latest:", soft_wrap=True)
            for e in errors["latest"]:
                where = e["url"] or e["feed_url"] or ""
                console.print(f"  {e['kind']} {e['source'] or ''} {where[:60]}: {e['detail'][:120]}",
                              soft_wrap=True, markup=False, highlight=False)
        if archive["pages_unarchived"]:
            console.print(f"[yellow]ARCHIVE[/yellow] {archive['pages_unarchived']} page(s) loaded without their "
                          f"archive copy in the last {archive['hours']} h, latest {_ago(archive['last_failure_at'])}: "
                          f"{archive['last_reason']} (they cannot be re-extracted; newsetl reextract "
                          "--list-unarchived lists them)", soft_wrap=True, highlight=False)
        for n in notes["latest"]:
            for line in (n["notes"] or "").splitlines():
                console.print(f"NOTE run {n['run_id']} ({n['status']}): {line}", soft_wrap=True,
                              markup=False, highlight=False)
        for f in alerting:
            console.print(f"[red]ALERT[/red] {f['source']} {f['feed_url']}: {'; '.join(f['problems'])}",
                          soft_wrap=True)
    if alerting:
        raise typer.Exit(1)


ARTICLE_COLUMNS = (
    render.Column("id", "id", 4, 0, justify="right"),
    render.Column("source", "source", 8, 2, max_width=14),
    render.Column("lang", "lang", 4, 4, max_width=5),
    render.Column("published", "published (UTC)", 16, 3, max_width=16),
    render.Column("status", "status", 6, 6, max_width=12),
    render.Column("words", "words", 5, 7, justify="right"),
    render.Column("title", "title", 30, 1),
    render.Column("url", "url", 24, 5, max_width=50, url=True),
)


@app.command()
def articles(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 20,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """The latest articles."""
    with _failures():
        rows = listings.article_rows(_engine(), limit)
    if as_json:
        render.print_json({"articles": [render.pick(r, listings.ARTICLE_KEYS) for r in rows]})
        return
    render.print_table(Console(), f"Latest {limit} articles", ARTICLE_COLUMNS, [
        {"id": r["article_id"], "source": r["source"], "lang": r["language"] or "",
         "published": f"{r['published_at']:%Y-%m-%d %H:%M}" if r["published_at"] else "",
         "status": r["extraction_status"], "words": r["word_count"] or 0,
         "title": Text(r["title"] or ""), "url": r["url"]} for r in rows], wide=wide, empty="no articles")


def _utc(d: datetime | None) -> datetime | None:
    return d.replace(tzinfo=UTC) if d is not None and d.tzinfo is None else d


def _day(ts: datetime | None) -> str:
    return f"{ts:%Y-%m-%d %H:%M}" if ts else ""


STORY_COLUMNS = (
    render.Column("id", "id", 4, 0, justify="right"),
    render.Column("title", "title", 30, 1),
    render.Column("first", "first (UTC)", 16, 4, max_width=16),
    render.Column("last", "last (UTC)", 16, 3, max_width=16),
    render.Column("articles", "arts", 4, 2, justify="right"),
    render.Column("outlets", "outlets", 8, 5, max_width=30),
    render.Column("languages", "langs", 5, 6, max_width=20),
)


@app.command("stories")
def stories_cmd(
    since: Annotated[Optional[datetime], typer.Option("--since", help="Only stories with an article published on or after this date/time (UTC).")] = None,
    source: Annotated[Optional[str], typer.Option("--source", help="Only stories with an article from this outlet (slug).")] = None,
    lang: Annotated[Optional[str], typer.Option("--lang", help="Only stories with an article in this language (ISO 639-1).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1)] = 20,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """The latest stories (one real-world event across outlets and languages), from the warehouse views."""
    with _failures():
        rows = listings.story_rows(_engine(), since=_utc(since), source=source, lang=lang, limit=limit)
    if as_json:
        render.print_json({"stories": [render.pick(r, listings.STORY_KEYS) for r in rows]})
        return
    render.print_table(Console(), "Stories", STORY_COLUMNS, [
        {"id": r["story_id"], "title": Text(r["title"] or ""), "first": _day(r["first_published_at"]),
         "last": _day(r["last_published_at"]), "articles": r["article_count"],
         "outlets": ",".join(r["outlets"]), "languages": ",".join(r["languages"])} for r in rows],
        wide=wide, empty="no stories")


RELATED_COLUMNS = (
    render.Column("id", "id", 4, 0, justify="right"),
    render.Column("kind", "kind", 9, 1, max_width=9),
    render.Column("score", "score", 5, 3, justify="right"),
    render.Column("n", "articles", 3, 4, justify="right"),
    render.Column("span", "span (UTC)", 16, 5, max_width=35),
    render.Column("title", "title", 24, 2),
)
STORY_ARTICLE_COLUMNS = (
    render.Column("id", "id", 4, 0, justify="right"),
    render.Column("relation", "relation", 8, 1, max_width=8),
    render.Column("source", "outlet", 8, 2, max_width=14),
    render.Column("lang", "lang", 4, 3, max_width=5),
    render.Column("time", "published (UTC)", 16, 5, max_width=16),
    render.Column("title", "title", 24, 4),
    render.Column("url", "url", 24, 6, max_width=50, url=True),
)


@app.command("story")
def story_cmd(
    story_id: Annotated[int, typer.Argument(help="Story id (see `newsetl stories`).")],
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """One story: its articles with outlet, language, time, title, URL and relation
    (member / near-dup / cites), and its related stories (same subject, another event)."""
    with _failures():
        detail = listings.story_detail(_engine(), story_id)
        survivor = listings.merged_into(_engine(), story_id) if detail is None else None
    if detail is None:
        if survivor is not None:
            typer.echo(f"newsetl: story {story_id} was merged into story {survivor}: "
                       f"newsetl story {survivor}", err=True)
        else:
            typer.echo(f"newsetl: no story {story_id}", err=True)
        raise typer.Exit(1)
    if as_json:
        render.print_json({"story": render.pick(detail["story"], listings.STORY_KEYS),
                           "articles": [render.pick(a, listings.STORY_ARTICLE_KEYS) for a in detail["articles"]],
                           "related": [render.pick(r, listings.RELATED_KEYS) for r in detail["related"]]})
        return
    head = detail["story"]
    console = Console()
    console.print(Text(f"story {head['story_id']}: {head['title'] or '(untitled)'}"), soft_wrap=not wide)
    console.print(f"{head['article_count']} article(s), {_day(head['first_published_at'])} → "
                  f"{_day(head['last_published_at'])} UTC; outlets: {', '.join(head['outlets'])}; "
                  f"languages: {', '.join(head['languages'])}", markup=False)
    render.print_table(console, "Articles", STORY_ARTICLE_COLUMNS, [
        {"id": a["article_id"], "relation": a["relation"], "source": a["source"], "lang": a["language"] or "",
         "time": _day(a["published_at"] or a["first_seen_at"]), "title": Text(a["title"] or ""), "url": a["url"]}
        for a in detail["articles"]], wide=wide, empty="no articles")
    if detail["related"]:
        render.print_table(console, "Related stories (same subject, another event)", RELATED_COLUMNS, [
            {"id": r["story_id"], "kind": r["kind"].replace("_", "-"), "score": f"{r['score']:.2f}",
             "span": f"{_day(r['first_published_at'])} → {_day(r['last_published_at'])}",
             "n": r["article_count"], "title": Text(r["title"] or "")} for r in detail["related"]], wide=wide)


@app.command()
def metrics(
    serve: Annotated[bool, typer.Option("--serve", help="Serve /metrics over HTTP until interrupted (else print once).")] = False,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to serve on.")] = 9464,
    addr: Annotated[str, typer.Option("--addr", help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
) -> None:
    """Prometheus metrics from the database: feed health, run counters, durations (docs/metrics.md)."""
    from etl.jobs import metrics as m

    with _failures():
        engine = _engine()
        if not serve:
            typer.echo(m.exposition(engine), nl=False)
            return
        server, _thread = m.serve(engine, port=port, addr=addr)
    typer.echo(f"serving Prometheus metrics on http://{addr}:{port}/metrics (Ctrl-C stops)", err=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


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
