"""The CLI reads what the runs recorded: failing feeds and their errors are visible."""

from sqlalchemy import Engine
from typer.testing import CliRunner

from etl import models, store
from etl.cli import app
from etl.config import parse_sources

REGISTRY = """
[[sources]]
slug = "alpha"
  [[sources.feeds]]
  url = "https://alpha.example/rss"
  language = "en"
  [[sources.feeds]]
  url = "https://alpha.example/broken"
  language = "en"
"""


def _outcome(feed_id: int, url: str, error: str | None) -> models.PollOutcome:
    return models.PollOutcome(
        feed_id=feed_id, url=url, http_status=404 if error else 200, bytes=10, duration_ms=5,
        entries_seen=0, entries_new=0, error_kind="http" if error else None, error=error,
        etag=None, last_modified=None, body_hash=None, next_poll_in=900,
    )


def test_status_shows_health_and_errors(engine: Engine) -> None:
    store.sync_sources(engine, parse_sources(REGISTRY))
    feeds = {f.url: f for f in store.due_feeds(engine)}
    ok, broken = feeds["https://alpha.example/rss"], feeds["https://alpha.example/broken"]
    store.record_poll(engine, None, _outcome(ok.id, ok.url, None))
    store.record_poll(engine, None, _outcome(broken.id, broken.url, "HTTP 404"))
    store.record_poll(engine, None, _outcome(broken.id, broken.url, "HTTP 404"))
    result = CliRunner().invoke(app, ["status"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[2].strip(): line for line in result.output.splitlines() if "alpha.example" in line}
    assert "OK" in lines["https://alpha.example/rss"]
    assert "failing since" in lines["https://alpha.example/broken"] and "(2×)" in lines["https://alpha.example/broken"]
    assert "http: HTTP 404" in lines["https://alpha.example/broken"]


def test_articles_lists_nothing_on_empty_db(engine: Engine) -> None:
    result = CliRunner().invoke(app, ["articles", "--limit", "5"])
    assert result.exit_code == 0 and "Latest 5 articles" in result.output
