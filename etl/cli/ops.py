"""Operator commands of ``newsetl``: ``backfill`` (a one-off local run) and ``stack up|down|status``.

Registered on the main app in ``etl.cli``; kept apart so the commands of the daily pipeline and
the ones that start processes or long jobs stay easy to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from etl.cli import stack
from etl.config import load_settings
from etl.jobs import backfill as bf
from etl.jobs.runs import run_record
from etl.models import RunKind, WindowStatus
from etl.store import db

console = Console()
stack_app = typer.Typer(help="The local stack: Prefect server, work pool, deployments, a worker.",
                        no_args_is_help=True)


class RichProgress(bf.Progress):
    """Two bars: windows of the range, and the URLs in the windows still to do."""

    def __init__(self, progress: Progress) -> None:
        self.p = progress
        self.windows = progress.add_task("windows", total=None)
        self.urls = progress.add_task("URLs", total=None)

    def planned(self, plan: bf.Plan, todo: Sequence[bf.Window]) -> None:
        self.p.update(self.windows, total=len(todo))
        self.p.update(self.urls, total=sum(len(w.candidates) for w in todo))
        skipped = len(plan.windows) - len(todo)
        self.p.console.print(f"job {plan.job_key}: {len(plan.windows)} window(s), {skipped} already done, "
                             f"{plan.total_candidates} URL(s) in range"
                             + (f", {len(plan.errors)} plan error(s)" if plan.errors else ""))
        for err in plan.errors[:10]:
            self.p.console.print(f"  [yellow]{err}[/yellow]")

    def items_done(self, n: int) -> None:
        self.p.advance(self.urls, n)

    def window_done(self, result: bf.WindowResult) -> None:
        self.p.advance(self.windows, 1)
        if result.status == WindowStatus.FAILED:
            self.p.console.print(f"  [red]window {result.unit} failed: {result.error}[/red]")


def backfill(
    mode: Annotated[str, typer.Argument(help="sitemap | urls | warc | reextract")],
    since: Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="First day (UTC), inclusive.")] = None,
    until: Annotated[Optional[datetime], typer.Option(formats=["%Y-%m-%d"], help="Last day (UTC), exclusive; default tomorrow.")] = None,
    source: Annotated[Optional[list[str]], typer.Option("--source", help="Source slug (repeatable); default all.")] = None,
    urls_file: Annotated[Optional[Path], typer.Option("--urls-file", help="urls mode: one URL a line.")] = None,
    warc: Annotated[Optional[list[Path]], typer.Option("--warc", help="warc mode: a WARC file (repeatable).")] = None,
    sitemap: Annotated[Optional[list[str]], typer.Option("--sitemap", help="sitemap mode: start from this sitemap instead of robots.txt (repeatable).")] = None,
    window_days: Annotated[int, typer.Option("--window-days", min=1, help="Days per checkpointed window.")] = 1,
    sources_file: Annotated[Optional[Path], typer.Option("--sources", help="Sources registry.")] = None,
) -> None:
    """Load a past date range once, here, with a progress bar; rerun to resume."""
    settings = load_settings(sources_file)
    try:
        spec = bf.BackfillSpec.build(mode, source or [], since.date() if since else None,
                                     until.date() if until else None, window_days, urls_file,
                                     warc or [], sitemap or [])
    except bf.BackfillError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    engine = db.get_engine(db.connect(settings))
    params = {**spec.parameters(), "sources_file": str(settings.sources_file)}
    try:
        with run_record(engine, RunKind.BACKFILL, params, report_kind="backfill") as run:
            with Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console) as bar:
                result = bf.run_backfill(engine, settings, spec, run.id, RichProgress(bar))
            run.report.counts = result.run_counts()
            failed = [w.unit for w in result.windows if w.status == WindowStatus.FAILED]
            if failed:
                run.error = f"window(s) failed: {', '.join(failed)}"
    except bf.BackfillError as exc:  # recorded on the run row; a usage error for the operator
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    run_id = run.id
    table = Table(title=f"backfill run {run_id} ({spec.mode}, job {spec.job_key})")
    for col in ("source", "URLs", "new", "updated", "duplicates", "failed"):
        table.add_column(col, justify="right" if col != "source" else "left")
    for slug, c in sorted(result.by_source.items()):
        table.add_row(slug, str(c.items), str(c.new), str(c.updated), str(c.duplicates), str(c.failed))
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in result.summary().items()))


def _stack_config(port: int | None = None, ui: bool = True) -> stack.StackConfig:
    settings = load_settings()
    return stack.StackConfig(state_dir=settings.home / "stack", port=port or stack.DEFAULT_PORT, ui=ui)


@stack_app.command("up")
def stack_up(
    port: Annotated[int, typer.Option(help="Port of the Prefect API and UI on 127.0.0.1.")] = stack.DEFAULT_PORT,
    ui: Annotated[bool, typer.Option("--ui/--no-ui", help="Serve Prefect's web UI.")] = True,
) -> None:
    """Apply pending migrations, then start a Prefect server, create the process pool, deploy
    deploy/prefect.yaml, start a worker."""
    from etl.store import migrations

    applied = migrations.upgrade(db.resolve_database_url(load_settings()))
    console.print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    try:
        stack.up(_stack_config(port, ui), say=console.print)
    except stack.StackError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


@stack_app.command("down")
def stack_down() -> None:
    """Stop the worker and the server started by `stack up` (by their recorded PIDs)."""
    stack.down(_stack_config(), say=console.print)


@stack_app.command("status")
def stack_status() -> None:
    """Which processes run, whether the API answers, and the deployments it has."""
    info = stack.status(_stack_config())
    for name, alive in info["processes"].items() or {"(none recorded)": False}.items():
        console.print(f"{name}: {'[green]running[/green]' if alive else '[red]stopped[/red]'}")
    console.print(f"API {info['api_url']}: {'[green]healthy[/green]' if info['api_healthy'] else '[red]not answering[/red]'}")
    for d in info["deployments"]:
        console.print(f"  deployment {d}")


def register(app: typer.Typer) -> None:
    app.command("backfill")(backfill)
    app.add_typer(stack_app, name="stack")

