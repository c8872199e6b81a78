"""Articles with no archived page: what ``reextract`` cannot redo (its page was not archived
when fetched — a full disk, an I/O error — or no response came back, or archiving was off)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from etl.store.queries import query
from etl.store.retry import retry_transient


def _params(since: Any, until: Any, slugs: Sequence[str], only_failed: bool) -> dict[str, Any]:
    return {"since": since, "until": until, "slugs": list(slugs), "only_failed": only_failed}


@retry_transient("counting articles without an archived page")
def unarchived_count(engine: Engine, since: Any = None, until: Any = None, slugs: Sequence[str] = (),
                     only_failed: bool = False) -> int:
    """How many articles of a reextract selection (the filters of ``archived_articles``) have
    no archived page."""
    with engine.connect() as conn:
        return int(conn.execute(query("unarchived_count"), _params(since, until, slugs, only_failed)).scalar_one())


@retry_transient("listing articles without an archived page")
def unarchived_articles(engine: Engine, since: Any = None, until: Any = None, slugs: Sequence[str] = (),
                        only_failed: bool = False) -> list[dict[str, Any]]:
    """Those articles, newest first, with why when the archive refused the page (``why``)."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query("unarchived_articles"),
                                              _params(since, until, slugs, only_failed)).mappings()]
