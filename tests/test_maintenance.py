"""Maintenance steps as plain functions: retention pruning, optional stages, per-source tally."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from etl import models
from etl.config import load_settings
from etl.jobs import maintenance, runs


def test_prune_keeps_recent_logs_and_every_article(engine: Engine, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSETL_RETENTION_DAYS", "30")
    monkeypatch.setenv("NEWSETL_RUN_RETENTION_DAYS", "60")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO sources (slug, name) VALUES ('s', 'S')"))
        conn.execute(text("INSERT INTO feeds (source_id, url) VALUES (1, 'https://x.example/rss')"))
        conn.execute(text(
            "INSERT INTO ingestion_runs (kind, started_at, finished_at, status) VALUES "
            "('scheduled', now() - interval '100 days', now() - interval '100 days', 'completed'),"  # 1: old
            "('scheduled', now() - interval '45 days', now() - interval '45 days', 'completed'),"    # 2: kept (60 d)
            "('scheduled', now() - interval '100 days', NULL, 'running'),"                           # 3: never finished
            "('backfill', now() - interval '90 days', now() - interval '90 days', 'completed')"))   # 4: old, checkpointed
        conn.execute(text(
            "INSERT INTO feed_polls (feed_id, run_id, polled_at, url) VALUES "
            "(1, 1, now() - interval '100 days', 'u'), (1, 2, now() - interval '45 days', 'u'),"
            "(1, 2, now() - interval '1 day', 'u')"))
        conn.execute(text(
            "INSERT INTO backfill_windows (job_key, unit, mode, status, run_id) VALUES ('j', '2026-11-20', 'urls', 'done', 4)"))
    result = maintenance.prune(engine, load_settings())
    assert result.status == "ok", result.detail
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM feed_polls")).scalar() == 1
        assert sorted(conn.execute(text("SELECT id FROM ingestion_runs")).scalars()) == [2, 3]
        # the checkpoint survives its run: the window stays done
        assert conn.execute(text("SELECT status, run_id FROM backfill_windows")).one() == ("done", None)
    assert "2 feed_polls" in result.detail and "2 ingestion_runs" in result.detail


def test_steps_run_in_order_and_a_failing_one_does_not_stop_the_others(engine: Engine) -> None:
    """The steps call the real stages directly; an unknown step or a step that raises is a
    failed step with the reason, and the next step still runs."""
    settings = load_settings()
    results = maintenance.run_steps(engine, settings, ["recluster", "no_such_step", "reextract", "prune"],
                                    {"recluster": {"days": 2}, "prune": {"retention_days": "x"}})
    assert [(r.name, r.status) for r in results] == [
        ("recluster", "ok"), ("no_such_step", "failed"), ("reextract", "ok"), ("prune", "failed")]
    assert "processed=0" in results[0].detail and "known: recluster, reextract, prune" in results[1].detail
    assert "selected=0" in results[2].detail and "TypeError" in results[3].detail


def test_tally_by_source() -> None:
    tally = runs.SourceTally()
    ok = models.PollOutcome(1, "u", 200, 10, 5, entries_seen=5, entries_new=2, error_kind=None, error=None,
                           etag=None, last_modified=None, body_hash=None, next_poll_in=900)
    bad = models.PollOutcome(2, "v", 500, 0, 5, entries_seen=0, entries_new=0, error_kind="http", error="HTTP 500",
                            etag=None, last_modified=None, body_hash=None, next_poll_in=900)
    tally.add_poll("voa", ok)
    tally.add_poll("voa", bad)
    tally.add_poll("france24", ok)
    tally.add_batch("voa", inserted=1, updated=0, unchanged=1, failed=1)
    rows = tally.rows()
    assert [r["source"] for r in rows] == ["france24", "voa", "total"]
    voa = rows[1]
    assert (voa["feeds_polled"], voa["feeds_failed"], voa["items"], voa["new"], voa["duplicates"], voa["failed"]) == (2, 1, 5, 1, 4, 1)
    assert rows[-1]["feeds_polled"] == 3 and rows[-1]["items"] == 10
    assert runs.artifact_key(42, "ingest") == "newsetl-ingest-run-42"
