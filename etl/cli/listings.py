"""What the listing commands show, as plain rows: ``status``, ``articles``, ``stories``, ``story``.

Each function returns the documented JSON shape (docs/cli.md); the table is drawn from the
same rows, so ``--json`` and the table never disagree. Stories are read from the ``warehouse``
views, the contract downstream readers use, so the CLI shows what they see.

``status`` also decides whether a feed should page someone (``alerting``): it is failing
(``consecutive_failures`` at or past a threshold) or stale past a threshold (nothing new for
much longer than usual — :func:`etl.fetch.schedule.is_stale` — and for at least
``stale_hours``). Inactive feeds (removed from the registry) never alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from etl import store
from etl.fetch.schedule import is_stale
from etl.store.queries import query

# Keys of each JSON object, in order: the documented, stable shape.
FEED_KEYS = ("source", "feed_url", "registry_url", "language", "active", "deactivated_reason", "health",
             "stale", "alerting", "problems", "consecutive_failures", "failing_since", "last_polled_at",
             "last_http_status", "last_error", "next_poll_at", "last_new_article_at", "newest_entry_at",
             "usual_entry_gap_seconds", "host_parked_until", "host_parked_reason", "new_24h", "articles_total")
ARTICLE_KEYS = ("article_id", "source", "language", "published_at", "extraction_status", "word_count",
                "title", "url")
INGEST_ERROR_KEYS = ("created_at", "kind", "source", "feed_url", "url", "detail")
RUN_NOTE_KEYS = ("run_id", "kind", "status", "started_at", "finished_at", "notes")
STORY_KEYS = ("story_id", "title", "first_published_at", "last_published_at", "first_seen_at", "last_seen_at",
              "article_count", "outlets", "languages")
STORY_ARTICLE_KEYS = ("article_id", "relation", "relation_detail", "source", "source_name", "language",
                      "published_at", "first_seen_at", "title", "url", "duplicate_of")
RELATED_KEYS = ("story_id", "kind", "score", "title", "first_published_at", "last_published_at", "article_count",
                "outlets", "languages")

# warehouse.story_articles.relation → what `newsetl story` calls it: a member of the story
# (its first report or an independent report of the same event), an edited copy of another
# member, or an article that attributes its information to a member.
RELATIONS = {"original": "member", "same_story": "member", "near_duplicate": "near-dup", "cites": "cites"}


@dataclass(frozen=True)
class Thresholds:
    """When ``newsetl status`` exits non-zero."""

    max_failures: int = 1        # consecutive failed polls that make a feed "failing"
    stale_hours: float = 24.0    # a stale feed alerts once silent this long (0: never)


def feed_rows(engine: Engine, thresholds: Thresholds, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    out = []
    for r in store.feed_status(engine):
        newest = r.get("newest_entry_at") or r.get("last_new_entry_at")
        stale = bool(r["active"] and r["last_polled_at"] is not None
                     and is_stale(newest_entry_at=newest, entry_gap=r.get("entry_interval"), now=now))
        silent_hours = (now - newest).total_seconds() / 3600 if newest else 0.0
        if not r["active"]:
            health = "inactive"
        elif r["last_polled_at"] is None:
            health = "never_polled"
        elif r["consecutive_failures"]:
            health = "failing"
        else:
            health = "ok"
        problems = []
        if r["active"] and r["consecutive_failures"] >= thresholds.max_failures:
            problems.append(f"failing: {r['consecutive_failures']} poll(s) in a row")
        if stale and thresholds.stale_hours > 0 and silent_hours >= thresholds.stale_hours:
            problems.append(f"stale: nothing new for {silent_hours:.0f} h")
        out.append({
            "source": r["slug"], "feed_url": r["url"], "registry_url": r.get("registry_url") or r["url"],
            "language": r["language"], "active": r["active"], "deactivated_reason": r["deactivated_reason"],
            "health": health, "stale": stale, "alerting": bool(problems), "problems": problems,
            "consecutive_failures": r["consecutive_failures"], "failing_since": r["failing_since"],
            "last_polled_at": r["last_polled_at"], "last_http_status": r["last_http_status"],
            "last_error": r["last_error"], "next_poll_at": r["next_poll_at"] if r["active"] else None,
            "last_new_article_at": r["last_new_entry_at"], "newest_entry_at": r.get("newest_entry_at"),
            "usual_entry_gap_seconds": r.get("entry_interval"),
            "host_parked_until": r.get("host_parked_until"), "host_parked_reason": r.get("host_parked_reason"),
            "new_24h": r["new_24h"], "articles_total": r["articles_total"],
        })
    return out


def ingest_errors(engine: Engine, hours: int = 24, limit: int = 5) -> dict[str, Any]:
    """Entries refused, values dropped and rows that failed on their own in the last ``hours``:
    they never fail a run (the rest loads), so this is where an operator sees them."""
    with engine.connect() as conn:
        rows = conn.execute(query("cli/recent_ingest_errors"), {"hours": hours, "limit": limit}).mappings().all()
    return {"hours": hours, "count": rows[0]["total"] if rows else 0,
            "latest": [{k: r[k] for k in INGEST_ERROR_KEYS} for r in rows]}


def archive_failures(engine: Engine, hours: int = 24) -> dict[str, Any]:
    """Pages loaded without their archive copy in the last ``hours`` (a full disk, an I/O
    error): they cannot be re-extracted later. Never a run failure, so this is where it shows."""
    with engine.connect() as conn:
        r = conn.execute(query("cli/recent_archive_failures"), {"hours": hours}).mappings().one()
    return {"hours": hours, "pages_unarchived": int(r["pages_unarchived"]),
            "last_failure_at": r["last_failure_at"], "last_reason": r["last_reason"]}


def run_notes(engine: Engine, hours: int = 24, limit: int = 5) -> dict[str, Any]:
    """Runs of the last ``hours`` whose row has notes: what they could not do or report though
    their work went on (the Prefect API lost mid-run, pages not archived)."""
    with engine.connect() as conn:
        rows = conn.execute(query("cli/recent_run_notes"), {"hours": hours, "limit": limit}).mappings().all()
    return {"hours": hours, "count": rows[0]["total"] if rows else 0,
            "latest": [{k: r[k] for k in RUN_NOTE_KEYS} for r in rows]}


def article_rows(engine: Engine, limit: int) -> list[dict[str, Any]]:
    return [{"article_id": r["id"], "source": r["slug"], "language": r["language"],
             "published_at": r["published_at"], "extraction_status": r["extraction_status"],
             "word_count": r["word_count"], "title": r["title"], "url": r["canonical_url"]}
            for r in store.latest_articles(engine, limit)]


def _story(r: Any) -> dict[str, Any]:
    return {"story_id": r["story_id"], "title": r["title"], "first_published_at": r["first_published_at"],
            "last_published_at": r["last_published_at"], "first_seen_at": r["first_seen_at"],
            "last_seen_at": r["last_seen_at"], "article_count": r["article_count"],
            "outlets": list(r["sources"] or []), "languages": list(r["languages"] or [])}


def story_rows(engine: Engine, *, since: datetime | None = None, source: str | None = None,
               lang: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(query("cli/stories"), {"story_id": None, "since": since, "source": source,
                                                   "lang": lang, "limit": limit}).mappings().all()
    return [_story(r) for r in rows]


def merged_into(engine: Engine, story_id: int) -> int | None:
    """The story a merged story now lives on in (following later merges), or None."""
    with engine.connect() as conn:
        return conn.execute(query("cli/story_merged_into"), {"story_id": story_id}).scalar_one_or_none()


def story_detail(engine: Engine, story_id: int) -> dict[str, Any] | None:
    """``{"story": {...}, "articles": [...], "related": [...]}``, or None when there is no such
    story. ``related``: the linked stories (same subject, another event), closest first."""
    with engine.connect() as conn:
        head = conn.execute(query("cli/stories"), {"story_id": story_id, "since": None, "source": None,
                                                   "lang": None, "limit": 1}).mappings().first()
        if head is None:
            return None
        members = conn.execute(query("cli/story_articles"), {"story_id": story_id}).mappings().all()
        related = [dict(r) for r in conn.execute(query("cli/story_links"), {"story_id": story_id}).mappings()]
    articles = [{"article_id": m["article_id"], "relation": RELATIONS.get(m["relation"], m["relation"]),
                 "relation_detail": m["relation"], "source": m["source"], "source_name": m["source_name"],
                 "language": m["language"], "published_at": m["published_at"],
                 "first_seen_at": m["first_seen_at"], "title": m["title"], "url": m["url"],
                 "duplicate_of": m["duplicate_of"]} for m in members]
    return {"story": _story(head), "articles": articles, "related": related}
