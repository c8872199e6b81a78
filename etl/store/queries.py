"""Named SQL statements. Every statement the stages run is a file ``sql/queries/<name>.sql``, so
SQL is read, reviewed and changed where the schema lives; Python only binds parameters."""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import TextClause, text

from etl.config import REPO_ROOT


def sql_dir() -> Path:
    """``sql/`` in a checkout, or the copy packed into the wheel (``etl/_sql``)."""
    packed = Path(__file__).resolve().parent.parent / "_sql"
    return packed if packed.is_dir() else REPO_ROOT / "sql"


@functools.cache
def query(name: str) -> TextClause:
    """``sql/queries/<name>.sql``, read and parsed once per process."""
    return text((sql_dir() / "queries" / f"{name}.sql").read_text(encoding="utf-8"))
