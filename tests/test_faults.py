"""Faults and hostile input: one bad field, row or batch costs that row or batch only — it is
recorded and the rest of the run loads; validators are saved so a rerun does not meet the same
input again. Real PostgreSQL, real loopback HTTP servers, the real ingest cycle (without Prefect,
which the end-to-end tests cover)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from etl.config import Settings, load_settings, load_sources
from etl.jobs.cycle import run_cycle
from etl.jobs.runs import run_record
from etl.models import ExtractionStatus, FeedEntry, RunKind
from etl.parse import normalize
from tests.test_extract import PARAS
from tests.webserver import TestWeb, static


def rss(items: list[dict[str, str]]) -> str:
    """An RSS document; each item's keys are written as elements, verbatim (already escaped)."""
    body = "".join("<item>" + "".join(f"<{k}>{v}</{k}>" for k, v in it.items()) + "</item>" for it in items)
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'


def page(title: str, extra: str = "") -> str:
    return (f"<html lang='en'><head><title>{title}</title></head><body><article><h1>{title}</h1>"
            + "".join(f"<p>{p} ({title}){extra}</p>" for p in PARAS) + "</article></body></html>")


def sources_file(tmp_path: Path, feeds: dict[str, list[str]]) -> Path:
    """One source per key, with its feed URLs."""
    lines = []
    for slug, urls in feeds.items():
        lines.append(f'[[sources]]\nslug = "{slug}"\nname = "{slug}"\nmin_request_interval = 0.0')
        lines += [f'  [[sources.feeds]]\n  url = "{u}"\n  language = "en"' for u in urls]
    path = tmp_path / "sources.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def settings_for(path: Path, **overrides: object) -> Settings:
    return replace(load_settings(path), allow_private_networks=True, **overrides)  # type: ignore[arg-type]


def ingest_once(engine: Engine, settings: Settings, force: bool = True) -> dict[str, object]:
    """One run as the flow makes it (run row, reaping, heartbeat, cycle), without Prefect."""
    with run_record(engine, RunKind.MANUAL, {}, report_kind="ingest") as run:
        cycle = run_cycle(engine, settings, run_id=run.id, registry=load_sources(settings.sources_file),
                          force=force, report=run.report)
    return {"run_id": run.id, "counts": run.counts, "cycle": cycle, "abandoned": run.abandoned}


# --- normalization, unit level ------------------------------------------------------------------

def test_storable_entry_strips_controls_hashes_long_guids_refuses_long_links_and_drops_wild_dates() -> None:
    entry = FeedEntry(entry_key="g\x00" + "x" * 9000, link="http://h/a\x00", canonical_url="http://h/a",
                      guid="g\x00" + "x" * 9000, title="T\x00itle\x07", summary="s\x00",
                      published_at=datetime(1, 1, 1, tzinfo=UTC), updated_at=datetime(9999, 1, 1, tzinfo=UTC),
                      authors=("A\x00" * 500,))
    clean, notes = normalize.storable_entry(entry)
    assert clean.link == "http://h/a" and clean.title == "Title" and clean.summary == "s"
    assert clean.guid is not None and clean.guid.startswith("sha256:") and clean.entry_key == clean.guid
    assert clean.published_at is None and clean.updated_at is None
    assert len(clean.authors[0]) == normalize.MAX_AUTHOR_CHARS
    assert any("published date 0001" in n for n in notes) and any("updated date 9999" in n for n in notes)
    # the same guid hashes the same on every poll: the entry keeps one identity
    assert normalize.storable_entry(entry)[0].entry_key == clean.entry_key
    long_link = "http://h/" + "a" * 9000
    try:
        normalize.storable_entry(FeedEntry(entry_key=long_link, link=long_link, canonical_url=long_link))
    except normalize.RefusedEntry as exc:
        assert "exceeds" in str(exc)
    else:
        raise AssertionError("a 9 KB link must be refused")


def test_clean_text_keeps_body_lines_and_caps() -> None:
    assert normalize.clean_text("a\x00b\nc\x1b", keep_lines=True) == "ab\nc"
    assert normalize.clean_text("a\nb") == "a b"
    assert normalize.clean_text("x" * 50, 10) == "x" * 10
    assert normalize.clean_text("\x00\x01") is None
    assert normalize.clean_text("lone \ud800 surrogate") == "lone  surrogate"


# --- one bad field never kills a run ------------------------------------------------------------

def test_hostile_fields_cost_one_row_at_most_and_validators_are_saved(engine: Engine, tmp_path: Path) -> None:
    huge_guid = "urn:" + "g" * 8192
    huge_link_path = "/long/" + "l" * 8192
    with TestWeb() as web:
        items = [
            {"title": "Plain one", "link": web.url("/ok1"), "guid": "ok1", "pubDate": "Fri, 20 Nov 2026 10:00:00 GMT"},
            {"title": "Nul&#0; title", "link": web.url("/nul"), "guid": "nul", "description": "a\x00b"},
            {"title": "T" * 1_000_000, "link": web.url("/bigtitle"), "guid": "bigtitle"},
            {"title": "Huge guid", "link": web.url("/bigguid"), "guid": huge_guid},
            {"title": "Huge link", "link": web.url(huge_link_path), "guid": "biglink"},
            {"title": "Nul guid", "link": web.url("/nulguid"), "guid": "nul\x00guid"},
            {"title": "Year one", "link": web.url("/y1"), "guid": "y1", "pubDate": "Mon, 01 Jan 0001 00:00:00 GMT"},
            {"title": "Year 9999", "link": web.url("/y9999"), "guid": "y9999", "pubDate": "Fri, 31 Dec 9999 00:00:00 GMT"},
        ]
        web.route("/feed.xml", static(rss(items), content_type="application/rss+xml",
                                      headers={"ETag": '"v1"'}))
        # pages with control characters; /nul is missing, so its body is the feed's summary (with a NUL)
        for path in ("/ok1", "/bigtitle", "/bigguid", "/nulguid", "/y1", "/y9999"):
            web.route(path, static(page(path.strip("/"), extra=" ctl\x01 esc\x1b")))
        settings = settings_for(sources_file(tmp_path, {"hostile": [web.url("/feed.xml")]}))
        out = ingest_once(engine, settings)

    counts = out["counts"]
    with engine.connect() as conn:
        run = conn.execute(text("SELECT status, errors FROM ingestion_runs")).one()
        assert run.status == "completed"
        rows = {r.guid.rsplit("/", 1)[-1]: r for r in conn.execute(text(
            "SELECT guid, title, description, body, published_at, extraction_status, extraction_error "
            "FROM articles"))}
        # every entry but the 8 KB link is stored; nothing holds a NUL; the title is capped
        assert len(rows) == 7, sorted(rows)
        assert {"ok1", "nul", "nulguid", "bigtitle", "y1", "y9999"} < set(rows)
        assert any(g.startswith("sha256:") for g in rows)  # the 8 KB guid, keyed by its hash
        assert len(rows["bigtitle"].title) == normalize.MAX_TITLE_CHARS
        assert rows["nul"].extraction_status == ExtractionStatus.FEED_SUMMARY and rows["nul"].body == "ab"
        for r in rows.values():
            assert r.extraction_status == (ExtractionStatus.FEED_SUMMARY if r is rows["nul"] else ExtractionStatus.OK)
            for value in (r.title, r.description, r.body):
                assert value is None or not any(c in value for c in "\x00\x01\x1b")
        assert rows["y1"].published_at is None and rows["y9999"].published_at is None
        errors = conn.execute(text("SELECT kind, url, detail FROM ingest_errors ORDER BY id")).all()
        refused = [e for e in errors if e.kind == "entry_refused"]
        assert len(refused) == 1 and huge_link_path[:100] in refused[0].url
        dropped = [e.detail for e in errors if e.kind == "value_dropped"]
        assert any("0001-01-01" in d for d in dropped) and any("9999-12-31" in d for d in dropped)
        # the body is loaded, so the feed's validators are saved: a rerun gets a 304
        assert conn.execute(text("SELECT etag FROM feeds")).scalar_one() == '"v1"'
    assert counts.articles_new == 7


@pytest.mark.parametrize("runner", ["cycle", pytest.param("prefect-flow", marks=pytest.mark.slow)])
def test_a_row_the_database_refuses_fails_alone_and_a_failed_batch_is_no_poison_pill(
        engine: Engine, tmp_path: Path, runner: str, request: pytest.FixtureRequest,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Faults from the database itself: a trigger refuses one row (its batch loads row by row,
    the rest of the batch is stored); another refuses a page claim, so one whole batch fails —
    the batches of the other source still load, and the run completes (also as a real Prefect
    flow run, where the failed batch is a failed task run)."""
    with engine.begin() as conn:
        conn.execute(text("""
            CREATE FUNCTION test_refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.title = 'Refused row' THEN RAISE EXCEPTION 'refused by test trigger'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_refuse_row BEFORE INSERT ON articles
                FOR EACH ROW EXECUTE FUNCTION test_refuse_row();
            CREATE FUNCTION test_refuse_claim() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.canonical_url LIKE '%/poison/%' THEN RAISE EXCEPTION 'poisoned batch'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_refuse_claim BEFORE INSERT ON page_claims
                FOR EACH ROW EXECUTE FUNCTION test_refuse_claim();
        """))
    try:
        with TestWeb() as web:
            good = [{"title": t, "link": web.url(f"/good/{i}"), "guid": f"good{i}"}
                    for i, t in enumerate(["Alpha", "Refused row", "Gamma"])]
            poison = [{"title": f"P{i}", "link": web.url(f"/poison/{i}"), "guid": f"p{i}"} for i in range(2)]
            web.route("/good.xml", static(rss(good), content_type="application/rss+xml", headers={"ETag": '"g"'}))
            web.route("/poison.xml", static(rss(poison), content_type="application/rss+xml", headers={"ETag": '"p"'}))
            for i in range(3):
                web.route(f"/good/{i}", static(page(f"good {i}")))
            for i in range(2):
                web.route(f"/poison/{i}", static(page(f"poison {i}")))
            path = sources_file(tmp_path, {"apoison": [web.url("/poison.xml")], "good": [web.url("/good.xml")]})
            if runner == "cycle":
                errors = ingest_once(engine, settings_for(path, task_workers=2))["counts"].errors
            else:
                request.getfixturevalue("prefect_harness")
                from flows.ingest import ingest

                monkeypatch.setenv("NEWSETL_TASK_WORKERS", "2")
                errors = ingest(sources_file=str(path), force=True)["errors"]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM ingestion_runs")).scalar_one() == "completed"
            titles = set(conn.execute(text("SELECT title FROM articles")).scalars())
            assert titles == {"Alpha", "Gamma"}
            failed = conn.execute(text("SELECT kind, detail FROM ingest_errors")).all()
            assert [(f.kind, "refused by test trigger" in f.detail) for f in failed] == [("row_failed", True)]
            etags = dict(conn.execute(text("SELECT url LIKE '%good%', etag FROM feeds")).all())
            # the good feed's body is loaded: validators saved; the poisoned one keeps none,
            # so its entries come back next run instead of being lost
            assert etags == {True: '"g"', False: None}
            # Alpha and Gamma got their stories
            assert conn.execute(text("SELECT count(*) FROM story_articles")).scalar_one() == 2
        assert errors >= 2  # the row and the batch
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER test_refuse_row ON articles; DROP FUNCTION test_refuse_row();"
                              "DROP TRIGGER test_refuse_claim ON page_claims; DROP FUNCTION test_refuse_claim();"))
