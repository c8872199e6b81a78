"""How the listing commands print: a table that fits the terminal, or one JSON document.

An operator reads ``newsetl status`` in an 80-column terminal or a CI log; a script reads
``--json``. Both come from the same rows, so they cannot disagree:

* :func:`print_table` keeps the columns that fit the console's width, in priority order (the
  identifying columns first), never wraps a cell into a column of fragments (it cuts with
  "…" instead) and shortens URLs in the middle so that host and slug stay readable.
  ``--wide`` prints every column in full, however wide that makes the lines.
* :func:`print_json` prints one JSON document with stable keys (documented in
  docs/cli.md): timestamps as ISO 8601 UTC strings, NULLs as ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

ELLIPSIS = "…"
# Between two columns: one space of padding each side of a one-character separator.
GAP = 3


@dataclass(frozen=True)
class Column:
    """One column of a listing: ``key`` into the display row, the header, the narrowest width
    at which it is still worth showing, the widest it grows to (None: as wide as the text), and
    ``priority`` (lower is kept first when the terminal is narrow)."""

    key: str
    header: str
    min_width: int
    priority: int
    max_width: int | None = None
    url: bool = False
    justify: str = "left"


def shorten_url(url: str, width: int) -> str:
    """``https://www.example.com/world/2026/11/20/a-long-slug`` in ``width`` characters: drops
    the scheme and ``www.``, then cuts the middle of the path, keeping the host and the end
    (the slug is what tells two articles apart)."""
    text = url.split("://", 1)[-1]
    text = text[4:] if text.startswith("www.") else text
    if len(text) <= width:
        return text
    host, _, path = text.partition("/")
    tail = width - len(host) - 2  # host + "/" + "…" + tail
    if tail >= min(8, len(path)):
        return f"{host}/{ELLIPSIS}{path[-tail:]}"
    return ELLIPSIS + text[-(width - 1):] if width > 1 else ELLIPSIS  # the host is too long: keep the end


def _cell_len(value: Any, col: Column, wide: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, Text):
        return value.cell_len
    if col.url:
        return len(str(value)) if wide else len(shorten_url(str(value), col.max_width or 10_000))
    return Text.from_markup(str(value)).cell_len


def natural_widths(columns: Sequence[Column], rows: Sequence[Mapping[str, Any]], wide: bool = False) -> list[int]:
    """Each column as wide as its header and widest cell, up to its ``max_width`` (``wide``:
    no limit, URLs in full)."""
    out = []
    for col in columns:
        natural = max([len(col.header)] + [_cell_len(r.get(col.key), col, wide) for r in rows])
        out.append(max(1, natural if wide else min(natural, col.max_width or natural)))
    return out


def fit_columns(columns: Sequence[Column], natural: Sequence[int], width: int) -> list[int]:
    """Indexes of the columns to show in ``width`` characters: by priority while they fit at
    their minimum width (or their natural width, when narrower), in their declared order. The
    first-priority column is always shown."""
    kept: list[int] = []
    used = -GAP
    for i in sorted(range(len(columns)), key=lambda k: columns[k].priority):
        need = min(natural[i], columns[i].min_width) + GAP
        if kept and used + need > width:
            continue
        kept.append(i)
        used += need
    return sorted(kept)


def shrink(columns: Sequence[Column], widths: Sequence[int], width: int) -> list[int]:
    """The widest columns narrowed, never below their minimum, until the table fits ``width``."""
    widths = list(widths)
    floor = [min(w, c.min_width) for c, w in zip(columns, widths, strict=True)]
    excess = sum(widths) + GAP * (len(columns) - 1) - width
    while excess > 0:
        slack = [w - f for w, f in zip(widths, floor, strict=True)]
        i = max(range(len(widths)), key=lambda k: slack[k])
        if slack[i] <= 0:
            break
        cut = min(slack[i], excess, max(1, slack[i] // 4))
        widths[i] -= cut
        excess -= cut
    return widths


def print_table(console: Console, title: str, columns: Sequence[Column],
                rows: Sequence[Mapping[str, Any]], *, wide: bool = False, empty: str = "(none)") -> None:
    """Rows (display values: str with rich markup, plain :class:`Text`, numbers) as a table
    that fits ``console.width`` — or, with ``wide``, every column in full."""
    if not rows:
        console.print(f"{title}: {empty}")
        return
    if wide:
        shown = list(columns)
        widths = natural_widths(shown, rows, wide=True)
    else:
        natural = natural_widths(columns, rows)
        keep = fit_columns(columns, natural, console.width)
        shown = [columns[i] for i in keep]
        widths = shrink(shown, [natural[i] for i in keep], console.width)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col, w in zip(shown, widths, strict=True):
        table.add_column(col.header, width=w, no_wrap=True, overflow="ellipsis",
                         justify=col.justify)  # type: ignore[arg-type]
    for row in rows:
        cells: list[Text | str] = []
        for col, w in zip(shown, widths, strict=True):
            value = row.get(col.key)
            if isinstance(value, Text):  # plain text that must not be read as markup
                cells.append(value)
            elif col.url:
                url = "" if value is None else str(value)
                cells.append(Text(url if wide else shorten_url(url, w)))
            else:
                cells.append("" if value is None else str(value))
        table.add_row(*cells)
    total = sum(widths) + GAP * (len(widths) - 1)
    if wide and total > console.width:  # as wide as the table needs, past the terminal
        console = Console(width=total, force_terminal=console.is_terminal, no_color=console.no_color,
                          file=console.file)
    console.print(title, markup=False)
    console.print(table)
    hidden = len(columns) - len(shown)
    if hidden:
        names = ", ".join(c.header for c in columns if c not in shown)
        console.print(f"(hidden at {console.width} columns: {names}; --wide shows all)",
                      style="dim", markup=False, soft_wrap=True)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def to_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, default=_plain, ensure_ascii=False, indent=2)


def print_json(document: Mapping[str, Any]) -> None:
    """One JSON document on stdout (no markup processing, no wrapping)."""
    typer.echo(to_json(document))


def pick(row: Mapping[str, Any], keys: Sequence[str],
         rename: Mapping[str, str] | None = None,
         convert: Mapping[str, Callable[[Any], Any]] | None = None) -> dict[str, Any]:
    """A JSON object with exactly ``keys``, in that order: the documented shape, whatever
    else the query returned. ``rename`` maps an output key to the row's key."""
    rename, convert = rename or {}, convert or {}
    out = {}
    for key in keys:
        value = row.get(rename.get(key, key))
        out[key] = convert[key](value) if key in convert and value is not None else value
    return out
