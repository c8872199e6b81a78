"""dbt users get newsetl's warehouse as a dbt source: warehouse/dbt/models/sources.yml is
generated from the catalog's COMMENTs (and must match it), and real dbt-postgres runs
`dbt source freshness` and `dbt test` on it against a demo database as a newsetl_reader login.

dbt-core's pins clash with prefect's, so dbt lives in its own virtualenv, created by this test
from warehouse/dbt/requirements.txt under ~/.cache/newsetl-tests/ and reused while that file is
unchanged (first run: ~1 min of pip; then ~15-20 s of dbt per run).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from etl.config import load_settings, load_sources
from etl.jobs.cycle import run_cycle
from etl.warehouse import DBT_KEYS, DBT_SOURCES_PATH, catalog, dbt_sources
from tests.warehouse_fixtures import libpq_params, reader_url  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "warehouse" / "dbt"
REGENERATE = "run `python -m etl.warehouse dbt --write` against a migrated database"


def test_sources_yml_matches_the_catalog(engine: Engine) -> None:
    with engine.connect() as conn:
        generated = dbt_sources(conn)
        views, _ = catalog(conn)
    assert DBT_SOURCES_PATH.read_text(encoding="utf-8") == generated, f"sources.yml is out of date; {REGENERATE}"
    # every view is a source table, every key is tested, articles have freshness
    for view in views:
        assert f"      - name: {view.name}\n" in generated
        assert view.name in DBT_KEYS, f"warehouse.{view.name} has no key to test in etl.warehouse.DBT_KEYS"
    assert "loaded_at_field: first_seen_at" in generated and "to: source('newsetl', 'stories')" in generated


def _dbt_venv() -> Path:
    requirements = PROJECT / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    venv = Path.home() / ".cache" / "newsetl-tests" / f"dbt-{digest}"
    dbt = venv / "bin" / "dbt"
    if not dbt.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                              "-r", str(requirements)], capture_output=True, text=True, timeout=1200)
        assert pip.returncode == 0, f"could not install dbt into {venv}:\n{pip.stderr[-3000:]}"
    return dbt


def _dbt(dbt: Path, command: list[str], reader: str, tmp: Path) -> tuple[subprocess.CompletedProcess, Path]:
    # The server under test and only it: a TCP address, or the embedded server's socket
    # directory (libpq and psycopg2 take a directory as host). No PG* variable leaks in.
    p = libpq_params(reader)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("NEWSETL_", "DBT_", "PG"))},
           "DBT_NEWSETL_HOST": p["host"], "DBT_NEWSETL_PORT": p.get("port", "5432"),
           "DBT_NEWSETL_USER": p["user"], "DBT_NEWSETL_PASSWORD": p.get("password", ""),
           "DBT_NEWSETL_DBNAME": p["dbname"], "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    target = tmp / "-".join(command)
    run = subprocess.run([str(dbt), *command, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
                          "--target-path", str(target), "--log-path", str(tmp / "logs"), "--no-partial-parse"],
                         env=env, capture_output=True, text=True, timeout=600, cwd=tmp)
    return run, target


@pytest.mark.slow  # dbt in a virtualenv of its own (created on first use), three dbt runs
def test_dbt_source_freshness_and_tests_run_as_the_reader(engine: Engine, reader_url: str, demo_sites,  # noqa: F811
                                                          tmp_path: Path) -> None:
    dbt = _dbt_venv()
    path = tmp_path / "demo.toml"
    path.write_text(demo_sites.sources_toml(min_request_interval=0.0), encoding="utf-8")
    settings = replace(load_settings(path), allow_private_networks=True)
    result = run_cycle(engine, settings, registry=load_sources(path), force=True)
    assert result.inserted > 30

    fresh, target = _dbt(dbt, ["source", "freshness"], reader_url, tmp_path)
    assert fresh.returncode == 0, fresh.stdout[-3000:]
    results = json.loads((target / "sources.json").read_text())["results"]
    assert [(r["unique_id"], r["status"]) for r in results] == [("source.newsetl_warehouse.newsetl.articles", "pass")]

    tested, target = _dbt(dbt, ["test"], reader_url, tmp_path)
    assert tested.returncode == 0, tested.stdout[-3000:]
    runs = json.loads((target / "run_results.json").read_text())["results"]
    names = {r["unique_id"].split(".")[2]: r["status"] for r in runs}
    assert set(names.values()) == {"pass"} and len(names) == DBT_SOURCES_PATH.read_text().count("- unique") \
        + DBT_SOURCES_PATH.read_text().count("- not_null") + DBT_SOURCES_PATH.read_text().count("- relationships")
    for expected in ("source_unique_newsetl_articles_article_id", "source_not_null_newsetl_stories_story_id",
                     "source_unique_newsetl_story_articles_article_id"):
        assert expected in names, sorted(names)
    assert any(n.startswith("source_relationships_newsetl_story_articles_story_id") for n in names)

    # the freshness check reads the data: two days without a new article is an error
    with engine.begin() as conn:
        conn.execute(text("UPDATE articles SET first_seen_at = now() - interval '2 days'"))
    stale, target = _dbt(dbt, ["source", "freshness"], reader_url, tmp_path)
    assert stale.returncode != 0
    assert json.loads((target / "sources.json").read_text())["results"][0]["status"] == "error"
