"""docs/warehouse.md stays true: its data dictionary is exactly what the catalog says (every
view, column and function, no stale ones), and its example queries run as newsetl_reader."""

from __future__ import annotations

import re

import psycopg
from sqlalchemy import Engine

from etl.warehouse import (
    DOC_PATH,
    catalog,
    data_dictionary,
    documented_columns,
    documented_section,
)
from tests.warehouse_fixtures import admin_conninfo, reader_url  # noqa: F401 (fixture)

REGENERATE = "run `python -m etl.warehouse docs --write` against a migrated database"


def test_doc_lists_every_view_and_column_and_no_stale_ones(engine: Engine) -> None:
    doc = DOC_PATH.read_text(encoding="utf-8")
    with engine.connect() as conn:
        views, _ = catalog(conn)
        actual = {v.name: {c[0] for c in v.columns} for v in views}
        listed = documented_columns(doc)
        missing = {v: sorted(cols - listed.get(v, set())) for v, cols in actual.items()}
        stale = {v: sorted(cols - actual.get(v, set())) for v, cols in listed.items()}
        assert not any(missing.values()), f"not in docs/warehouse.md: {missing}; {REGENERATE}"
        assert not any(stale.values()), f"in docs/warehouse.md but not in the database: {stale}; {REGENERATE}"
        # and the text (types, meanings, functions) is the catalog's, word for word
        assert documented_section(doc) == data_dictionary(conn), f"the data dictionary is out of date; {REGENERATE}"


def _examples(doc: str) -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", doc, flags=re.S)
    runnable = [b for b in blocks if "{%" not in b and "CREATE ROLE" not in b]
    statements = []
    for block in runnable:
        body = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
        statements += [s.strip() for s in body.split(";") if s.strip()]
    return statements


def test_doc_example_queries_run_as_the_reader(engine: Engine, reader_url: str) -> None:
    statements = _examples(DOC_PATH.read_text(encoding="utf-8"))
    assert len(statements) >= 15
    assert any("websearch_to_tsquery('spanish'" in s for s in statements)
    assert any("websearch_to_tsquery('french'" in s for s in statements)
    assert any("articles_changed(:since, :until)" in s for s in statements)
    with psycopg.connect(admin_conninfo(reader_url), autocommit=True) as conn:
        horizon = conn.execute("SELECT warehouse.pull_horizon()").fetchone()[0]
        for sql in statements:
            sql = (sql.replace(":since", "0").replace(":until", str(horizon))
                   .replace(":changed_story_ids", "'{}'::bigint[]"))
            conn.execute(sql).fetchall()
