from sqlalchemy import Engine, text

from etl import store
from etl.config import parse_sources

REGISTRY = """
[[sources]]
slug = "f24"
name = "France 24"
min_request_interval = 2.0
  [[sources.feeds]]
  url = "https://www.france24.com/en/rss"
  language = "en"
  [[sources.feeds]]
  url = "https://www.france24.com/es/rss"
  language = "es"
"""


def _feeds(engine: Engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT url, active, deactivated_reason, language, updated_at FROM feeds"))
        return {r.url: (r.active, r.deactivated_reason, r.language, r.updated_at) for r in rows}


def test_sync_is_idempotent(engine: Engine) -> None:
    sources = parse_sources(REGISTRY)
    ids = store.sync_sources(engine, sources)
    first = _feeds(engine)
    assert store.sync_sources(engine, sources) == ids
    assert _feeds(engine) == first  # same rows, not even touched
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sources")).scalar() == 1
        assert conn.execute(text("SELECT min_request_interval FROM sources")).scalar() == 2.0


def test_removed_feed_is_deactivated_not_deleted_and_comes_back(engine: Engine) -> None:
    store.sync_sources(engine, parse_sources(REGISTRY))
    without_es = REGISTRY.split('  [[sources.feeds]]\n  url = "https://www.france24.com/es/rss"')[0]
    store.sync_sources(engine, parse_sources(without_es))
    feeds = _feeds(engine)
    assert feeds["https://www.france24.com/es/rss"][:2] == (False, "removed from sources file")
    assert feeds["https://www.france24.com/en/rss"][0] is True
    store.sync_sources(engine, parse_sources(REGISTRY))
    assert _feeds(engine)["https://www.france24.com/es/rss"][:2] == (True, None)


def test_gone_feed_stays_deactivated(engine: Engine) -> None:
    store.sync_sources(engine, parse_sources(REGISTRY))
    with engine.begin() as conn:
        conn.execute(text("UPDATE feeds SET active = false, deactivated_reason = 'HTTP 410 Gone' "
                          "WHERE url LIKE '%/es/rss'"))
    store.sync_sources(engine, parse_sources(REGISTRY))
    assert _feeds(engine)["https://www.france24.com/es/rss"][:2] == (False, "HTTP 410 Gone")
