"""The CLI reads what the runs recorded, the same way for people and scripts: tables that stay
readable at 80 columns (``--wide`` for everything), one JSON document with documented keys
(``--json``), and exit codes cron and CI can act on (0 ok, 1 failure, 2 usage)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from etl import models, store
from etl.cli import app, listings, render
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
NARROW = {"COLUMNS": "80"}


def _outcome(feed_id: int, url: str, error: str | None) -> models.PollOutcome:
    return models.PollOutcome(
        feed_id=feed_id, url=url, http_status=404 if error else 200, bytes=10, duration_ms=5,
        entries_seen=0, entries_new=0, error_kind="http" if error else None, error=error,
        etag=None, last_modified=None, body_hash=None, next_poll_in=900,
    )


def _feeds(engine: Engine) -> tuple:
    store.sync_sources(engine, parse_sources(REGISTRY))
    feeds = {f.url: f for f in store.due_feeds(engine)}
    return feeds["https://alpha.example/rss"], feeds["https://alpha.example/broken"]


def _invoke(args: list[str], env: dict[str, str] | None = None):
    return CliRunner().invoke(app, args, env=env or NARROW)


def test_status_shows_health_and_errors_and_exits_1_on_a_failing_feed(engine: Engine) -> None:
    ok, broken = _feeds(engine)
    store.record_poll(engine, None, _outcome(ok.id, ok.url, None))
    store.record_poll(engine, None, _outcome(broken.id, broken.url, "HTTP 404"))
    store.record_poll(engine, None, _outcome(broken.id, broken.url, "HTTP 404"))
    result = _invoke(["status", "--wide"])
    assert result.exit_code == 1, result.output
    lines = {u: line for line in result.output.splitlines() for u in (ok.url, broken.url) if f"{u} " in line}
    assert "OK" in lines[ok.url] and "failing since" not in lines[ok.url]
    assert "failing since" in lines[broken.url] and "(2×)" in lines[broken.url]
    assert "http: HTTP 404" in lines[broken.url]
    assert f"ALERT alpha {broken.url}: failing: 2 poll(s) in a row" in result.output
    # a higher threshold: two failures are not yet an alert
    assert _invoke(["status", "--max-failures", "3"]).exit_code == 0


def test_status_fits_80_columns_without_breaking_cells(engine: Engine) -> None:
    ok, broken = _feeds(engine)
    store.record_poll(engine, None, _outcome(ok.id, ok.url, None))
    store.record_poll(engine, None, _outcome(broken.id, broken.url, "HTTP 404 " + "x" * 200))
    result = _invoke(["status"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    table = lines[:lines.index(next(line for line in lines if line.startswith("(")))]
    assert max(len(line) for line in table) <= 80, table
    rows = [line for line in table if "alpha.example" in line]
    # one line per feed, each with its source, its (scheme-less) URL and its health word
    assert len(rows) == 2
    assert any(r.startswith("alpha") and "alpha.example/rss" in r and "OK" in r for r in rows)
    assert any("alpha.example/broken" in r and "FAILING 1×" in r and "HTTP 404" in r for r in rows)
    assert "--wide shows all" in result.output
    # --wide: every column, the full URL with its scheme
    wide = _invoke(["status", "--wide"]).output
    assert "https://alpha.example/broken" in wide and "next poll" in wide and "total" in wide


def test_status_alerts_on_a_stale_feed_past_the_threshold(engine: Engine) -> None:
    ok, _ = _feeds(engine)
    store.record_poll(engine, None, _outcome(ok.id, ok.url, None))
    with engine.begin() as conn:  # usually a new entry every hour; nothing for 30 h
        conn.execute(text("UPDATE feeds SET active = (id = :id), entry_interval = 3600, "
                          "newest_entry_at = now() - interval '30 hours' WHERE true"), {"id": ok.id})
    result = _invoke(["status"])
    assert result.exit_code == 1 and "stale: nothing new for 30 h" in result.output
    assert _invoke(["status", "--stale-hours", "48"]).exit_code == 0
    assert _invoke(["status", "--stale-hours", "0"]).exit_code == 0
    doc = json.loads(_invoke(["status", "--json"]).stdout)
    assert doc["ok"] is False and doc["thresholds"] == {"max_failures": 1, "stale_hours": 24.0}
    feed = next(f for f in doc["feeds"] if f["feed_url"] == ok.url)
    assert list(feed) == list(listings.FEED_KEYS)
    assert (feed["health"], feed["stale"], feed["alerting"]) == ("ok", True, True)
    assert feed["problems"] == ["stale: nothing new for 30 h"]
    assert feed["last_polled_at"].endswith("Z") and feed["usual_entry_gap_seconds"] == 3600


def test_status_json_is_one_document_and_ok_when_healthy(engine: Engine) -> None:
    ok, broken = _feeds(engine)
    store.record_poll(engine, None, _outcome(ok.id, ok.url, None))
    store.record_poll(engine, None, _outcome(broken.id, broken.url, None))
    result = _invoke(["status", "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert list(doc) == ["ok", "thresholds", "feeds", "ingest_errors", "archive", "run_notes"] and doc["ok"] is True
    assert [f["health"] for f in doc["feeds"]] == ["ok", "ok"]
    assert doc["archive"] == {"hours": 24, "pages_unarchived": 0, "last_failure_at": None, "last_reason": None}
    assert doc["run_notes"] == {"hours": 24, "count": 0, "latest": []}


def test_usage_errors_exit_2_and_failures_exit_1(engine: Engine) -> None:
    assert _invoke(["status", "--bogus"]).exit_code == 2
    assert _invoke(["story", "not-a-number"]).exit_code == 2
    assert _invoke(["stories", "--since", "yesterday-ish"]).exit_code == 2
    assert _invoke(["articles", "--limit", "0"]).exit_code == 2
    result = _invoke(["story", "424242"])
    assert result.exit_code == 1 and "no story 424242" in result.stderr
    down = _invoke(["status", "--json"], env={**NARROW, "NEWSETL_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"})
    assert down.exit_code == 1 and down.stdout == ""
    assert down.stderr.startswith("newsetl: database error:") and "Traceback" not in down.stderr
    bad = _invoke(["articles"], env={**NARROW, "NEWSETL_TASK_WORKERS": "four"})
    assert bad.exit_code == 1 and "NEWSETL_TASK_WORKERS" in bad.stderr


def test_articles_lists_nothing_on_empty_db(engine: Engine) -> None:
    result = _invoke(["articles", "--limit", "5"])
    assert result.exit_code == 0 and "Latest 5 articles: no articles" in result.output
    assert json.loads(_invoke(["articles", "--json"]).stdout) == {"articles": []}


LONG_URL = "https://www.example-news.com/world/americas/2026/11/20/eleven-nations-sign-darien-migration-pact"


def _story_fixture(engine: Engine) -> dict[str, int]:
    """One story in three languages with each kind of relation, and one unrelated story."""
    with engine.begin() as conn:
        src = dict(conn.execute(text("INSERT INTO sources (slug, name) VALUES ('f24', 'France 24'), "
                                     "('voa', 'VOA'), ('wire', 'Wire') RETURNING slug, id")).all())
        t0 = datetime(2026, 11, 20, 18, tzinfo=UTC)
        ids = {}
        for key, source, lang, hours, url in [
                ("orig", "f24", "fr", 0, "https://f24.example/fr/panama"),
                ("same", "voa", "es", 2, "https://voa.example/es/panama"),
                ("copy", "wire", "en", 3, LONG_URL),
                ("cites", "voa", "en", 4, "https://voa.example/en/panama-cites"),
                ("other", "voa", "en", -48, "https://voa.example/en/quake")]:
            ids[key] = conn.execute(text(
                "INSERT INTO articles (source_id, url, canonical_url, title, body, language, extraction_status, "
                "published_at) VALUES (:s, :u, :u, :t, 'Body.', :l, 'ok', :p) RETURNING id"),
                {"s": src[source], "u": url, "t": f"Panama pact ({key})", "l": lang,
                 "p": t0 + timedelta(hours=hours)}).scalar_one()
        conn.execute(text("UPDATE articles SET duplicate_of = :o WHERE id = :c"), {"o": ids["same"], "c": ids["copy"]})
        ids["story"] = conn.execute(text(
            "INSERT INTO stories (title, first_published_at, last_published_at) VALUES "
            "('Eleven nations sign Darién pact in Panama', :a, :b) RETURNING id"),
            {"a": t0, "b": t0 + timedelta(hours=4)}).scalar_one()
        ids["quake"] = conn.execute(text(
            "INSERT INTO stories (title, first_published_at, last_published_at) VALUES ('Quake', :a, :a) RETURNING id"),
            {"a": t0 - timedelta(hours=48)}).scalar_one()
        for key, rel in [("orig", "original"), ("same", "same_story"), ("copy", "near_duplicate"), ("cites", "cites")]:
            conn.execute(text("INSERT INTO story_articles (story_id, article_id, relation) VALUES (:s, :a, :r)"),
                         {"s": ids["story"], "a": ids[key], "r": rel})
        conn.execute(text("INSERT INTO story_articles (story_id, article_id, relation) VALUES (:s, :a, 'original')"),
                     {"s": ids["quake"], "a": ids["other"]})
    return ids


def test_stories_lists_and_filters_from_the_warehouse(engine: Engine) -> None:
    ids = _story_fixture(engine)
    doc = json.loads(_invoke(["stories", "--json"]).stdout)
    assert [s["story_id"] for s in doc["stories"]] == [ids["story"], ids["quake"]]
    panama = doc["stories"][0]
    assert list(panama) == list(listings.STORY_KEYS)
    assert panama["article_count"] == 4 and panama["outlets"] == ["f24", "voa", "wire"]
    assert panama["languages"] == ["en", "es", "fr"]
    assert panama["first_published_at"] == "2026-11-20T18:00:00Z"

    def listed(*args: str) -> list[int]:
        return [s["story_id"] for s in json.loads(_invoke(["stories", "--json", *args]).stdout)["stories"]]

    assert listed("--source", "f24") == [ids["story"]]
    assert listed("--lang", "es") == [ids["story"]]
    assert listed("--since", "2026-11-20") == [ids["story"]]
    assert listed("--source", "voa", "--limit", "1") == [ids["story"]]
    assert listed("--lang", "ar") == []
    table = _invoke(["stories"]).output.splitlines()
    assert max(len(line) for line in table if not line.startswith("(")) <= 80
    assert any(line.split()[0] == str(ids["story"]) and "Eleven nations" in line for line in table)


def test_story_shows_articles_with_their_relation(engine: Engine) -> None:
    ids = _story_fixture(engine)
    result = _invoke(["story", str(ids["story"]), "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert list(doc) == ["story", "articles", "related"] and doc["story"]["story_id"] == ids["story"]
    assert doc["related"] == []
    arts = {a["article_id"]: a for a in doc["articles"]}
    assert list(doc["articles"][0]) == list(listings.STORY_ARTICLE_KEYS)
    assert [a["article_id"] for a in doc["articles"]] == [ids[k] for k in ("orig", "same", "copy", "cites")]
    assert {k: arts[ids[k]]["relation"] for k in ("orig", "same", "copy", "cites")} == {
        "orig": "member", "same": "member", "copy": "near-dup", "cites": "cites"}
    assert arts[ids["copy"]]["duplicate_of"] == ids["same"] and arts[ids["copy"]]["url"] == LONG_URL
    assert arts[ids["same"]]["source_name"] == "VOA" and arts[ids["same"]]["language"] == "es"
    narrow = _invoke(["story", str(ids["story"]), "--wide"]).output
    assert LONG_URL in narrow  # --wide: the whole URL
    table = _invoke(["story", str(ids["story"])], env={"COLUMNS": "120"}).output.splitlines()
    copy = next(line for line in table if line.lstrip().startswith(str(ids["copy"]) + " "))
    assert "near-dup" in copy and "wire" in copy and len(copy) <= 120
    # the URL is shortened in the middle: host and slug stay
    assert "example-news.com/…" in copy and copy.rstrip().endswith("migration-pact")


def test_story_lists_its_related_stories_from_both_ends_of_a_link(engine: Engine) -> None:
    ids = _story_fixture(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO story_links (story_id, related_story_id, kind, score) VALUES (:s, :q, "
                          "'follow_up', 0.42)"), {"s": max(ids["story"], ids["quake"]), "q": min(ids["story"], ids["quake"])})
    for me, other, title in ((ids["story"], ids["quake"], "Quake"),
                             (ids["quake"], ids["story"], "Eleven nations sign Darién pact in Panama")):
        doc = json.loads(_invoke(["story", str(me), "--json"]).stdout)
        assert [list(r) for r in doc["related"]] == [list(listings.RELATED_KEYS)]
        (rel,) = doc["related"]
        assert (rel["story_id"], rel["kind"], rel["score"], rel["title"]) == (other, "follow_up", 0.42, title)
    table = _invoke(["story", str(ids["story"])], env={"COLUMNS": "100"}).output
    assert "Related stories" in table
    related = table[table.index("Related stories"):].splitlines()
    line = next(x for x in related if x.lstrip().startswith(str(ids["quake"]) + " "))
    assert "follow-up" in line and "0.42" in line and "Quake" in line


def test_a_merged_story_id_points_at_the_story_it_lives_on_in(engine: Engine) -> None:
    ids = _story_fixture(engine)
    with engine.begin() as conn:  # 9001 merged into 9000, which later merged into the Panama story
        conn.execute(text("INSERT INTO story_merges (from_story_id, into_story_id) VALUES (9001, 9000), (9000, :s)"),
                     {"s": ids["story"]})
    result = _invoke(["story", "9001"])
    assert result.exit_code == 1
    assert f"story 9001 was merged into story {ids['story']}" in result.stderr
    assert "no story 9002" in _invoke(["story", "9002"]).stderr


@pytest.mark.parametrize("width, expected", [
    (200, "example-news.com/world/americas/2026/11/20/eleven-nations-sign-darien-migration-pact"),
    (40, "example-news.com/…-darien-migration-pact"),
    (20, "…rien-migration-pact"),
])
def test_urls_are_shortened_in_the_middle(width: int, expected: str) -> None:
    short = render.shorten_url(LONG_URL, width)
    assert len(short) <= width and short == expected


def test_columns_are_kept_by_priority_to_fit_the_width() -> None:
    cols = [render.Column("a", "a", 10, 0), render.Column("b", "b", 30, 3), render.Column("c", "c", 10, 1),
            render.Column("d", "d", 10, 2)]
    natural = [10, 50, 10, 10]
    assert render.fit_columns(cols, natural, 80) == [0, 1, 2, 3]
    assert render.fit_columns(cols, natural, 60) == [0, 2, 3]      # b (last priority) goes first
    assert render.fit_columns(cols, natural, 5) == [0]              # the first column always stays
    assert render.shrink([cols[0], cols[1]], [10, 50], 45) == [10, 32]  # 10 + 3 + 32 = 45
    assert render.shrink([cols[0], cols[1]], [10, 50], 20) == [10, 30]  # never below the minimum


def test_status_shows_the_rows_not_stored_as_they_came(engine: Engine) -> None:
    ok, _ = _feeds(engine)
    store.record_poll(engine, None, _outcome(ok.id, ok.url, None))
    assert json.loads(_invoke(["status", "--json"]).stdout)["ingest_errors"] == {"hours": 24, "count": 0, "latest": []}
    long_link = "https://alpha.example/" + "x" * 3000
    store.record_ingest_errors(engine, None, [
        models.IngestError(models.IngestErrorKind.ENTRY_REFUSED, "link over 2048 characters", url=long_link,
                           feed_id=ok.id, source_id=ok.source_id),
        models.IngestError(models.IngestErrorKind.VALUE_DROPPED, "published_at 0001-01-01 outside 1990 .. now + 2 days",
                           url="https://alpha.example/y1", feed_id=ok.id, source_id=ok.source_id)])
    result = _invoke(["status"])
    # a refused entry is recorded and shown, but it is not a failing feed: exit 0
    assert result.exit_code == 0, result.output
    assert "2 entries or values not stored as they came in the last 24 h" in result.output
    assert "entry_refused alpha" in result.output and "value_dropped alpha" in result.output
    assert all(len(line) <= 200 for line in result.output.splitlines())
    doc = json.loads(_invoke(["status", "--json"]).stdout)["ingest_errors"]
    assert doc["count"] == 2 and [e["kind"] for e in doc["latest"]] == ["value_dropped", "entry_refused"]
    assert set(doc["latest"][0]) == set(listings.INGEST_ERROR_KEYS)


def test_status_shows_what_runs_could_not_do_or_report(engine: Engine) -> None:
    """Pages not archived (a full disk) and run notes (the Prefect API lost): an ARCHIVE line and
    NOTE lines in the table, ``archive`` and ``run_notes`` in the JSON; never an exit code."""
    ok, _broken = _feeds(engine)
    store.record_poll(engine, None, _outcome(ok.id, ok.url, None))
    store.record_poll(engine, None, _outcome(_broken.id, _broken.url, None))
    run_id = store.start_run(engine, models.RunKind.MANUAL, {})
    store.record_ingest_errors(engine, run_id, [
        models.IngestError(models.IngestErrorKind.ARCHIVE_FAILED, "ENOSPC: No space left on device",
                           f"https://alpha.example/a/{i}", ok.id, ok.source_id) for i in range(3)])
    store.finish_run(engine, run_id, models.RunCounts(articles_new=3, pages_unarchived=3),
                     notes=["3 page(s) loaded without their archive copy (ENOSPC ×3)"])
    store.add_run_note(engine, run_id, "Prefect API http://prefect:4200/api unreachable from …")
    table = _invoke(["status"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "ARCHIVE 3 page(s) loaded without their archive copy in the last 24 h" in table.output
    assert "ENOSPC: No space left on device" in table.output
    assert f"NOTE run {run_id} (completed): Prefect API http://prefect:4200/api unreachable from …" in table.output
    assert f"NOTE run {run_id} (completed): 3 page(s) loaded without their archive copy (ENOSPC ×3)" in table.output
    doc = json.loads(_invoke(["status", "--json"]).stdout)
    assert doc["archive"]["pages_unarchived"] == 3 and doc["archive"]["last_reason"] == "ENOSPC: No space left on device"
    [note] = doc["run_notes"]["latest"]
    assert list(note) == list(listings.RUN_NOTE_KEYS) and note["run_id"] == run_id and note["status"] == "completed"
    assert note["notes"].splitlines() == ["3 page(s) loaded without their archive copy (ENOSPC ×3)",
                                          "Prefect API http://prefect:4200/api unreachable from …"]
