"""Incremental pulls from the warehouse under concurrent writers: no change is missed, none
comes twice — including a change committed late by a transaction that was already running.

Writers are threads with their own PostgreSQL connections (as the superuser, like the ETL);
the reader pulls as a login role that has only newsetl_reader, through exactly the pattern
docs/warehouse.md documents (etl.warehouse.pull_changes).
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict

import psycopg
import pytest
from sqlalchemy import Engine, text

from etl.store import db
from etl.warehouse import pull_changes
from tests.warehouse_fixtures import (  # noqa: F401
    CATCH_UP_TIMEOUT,
    admin_conninfo,
    horizon_holders,
    reader_url,
)


def _xid(conn: psycopg.Connection) -> int:
    return int(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])


def _insert(conn: psycopg.Connection, source_id: int, key: str) -> tuple[int, int]:
    return conn.execute(
        "INSERT INTO articles (source_id, url, canonical_url, title, extraction_status) "
        "VALUES (%s, %s, %s, %s, 'ok') RETURNING id, change_seq",
        (source_id, f"https://x.example/{key}", f"https://x.example/{key}", key)).fetchone()


def _source(engine: Engine) -> int:
    with engine.begin() as conn:
        return conn.execute(text("INSERT INTO sources (slug, name) VALUES ('x', 'X') RETURNING id")).scalar_one()


def _pull_until(reader: Engine, admin: str, since: int, past_xid: int,
                what: str = "articles") -> tuple[list[dict], int]:
    """Pulls until the horizon has passed ``past_xid`` (every writer we know of has finished)."""
    rows: list[dict] = []
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while True:
        with reader.connect() as conn:
            p = pull_changes(conn, what, since)  # type: ignore[arg-type]
        rows += p.rows
        since = p.horizon
        if since > past_xid:
            return rows, since
        if time.monotonic() > deadline:
            with psycopg.connect(admin) as conn:
                raise AssertionError(f"horizon stuck below {past_xid}, held by {horizon_holders(conn)}")
        time.sleep(0.02)


def test_a_late_commit_is_missed_by_change_seq_alone_but_not_by_the_pull(engine: Engine, reader_url: str) -> None:
    """The interleaving that breaks `WHERE change_seq > :last`: B takes its transaction id, A
    writes (sequence value n), B writes (n+1) and commits, a reader notes n+1, A commits."""
    source = _source(engine)
    reader = db.get_engine(reader_url)
    admin = admin_conninfo(engine.url.render_as_string(hide_password=False))
    with psycopg.connect(admin) as a, psycopg.connect(admin) as b:
        xid_b = _xid(b)                      # B is the older transaction
        a_id, a_seq = _insert(a, source, "a")
        b_id, b_seq = _insert(b, source, "b")
        assert a_seq < b_seq
        b.commit()

        # Reader 1, naive: everything committed with change_seq > last, then last = max seen.
        with engine.connect() as conn:
            naive = dict(conn.execute(text("SELECT article_id, change_seq FROM warehouse.articles "
                                           "WHERE change_seq > 0")).all())
            # The brief's first idea: the same, but only rows below the horizon.
            horizon = conn.execute(text("SELECT warehouse.pull_horizon()")).scalar_one()
            below = dict(conn.execute(text(
                "SELECT id, change_seq FROM articles WHERE change_seq > 0 "
                "AND change_xid < CAST(CAST(:h AS text) AS xid8)"), {"h": horizon}).all())
        assert naive == {b_id: b_seq}
        last_naive = max(naive.values())
        # Reader 2, the documented pull, runs at the same moment.
        with reader.connect() as conn:
            first = pull_changes(conn, "articles", 0)
        assert first.horizon <= int(a.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
        assert a_id not in {r["article_id"] for r in first.rows}

        a.commit()
        xid_a = int(a.execute("SELECT pg_current_xact_id()::text").fetchone()[0])  # a new transaction
        a.rollback()

    with engine.connect() as conn:
        later = dict(conn.execute(text("SELECT article_id, change_seq FROM warehouse.articles "
                                       "WHERE change_seq > :last"), {"last": last_naive}).all())
    assert a_id not in later, "change_seq > last would see A's row: the hazard did not happen"
    # Horizon-filtered change_seq misses it too, whenever no older session pinned the horizon.
    if horizon > xid_b:
        assert below == {b_id: b_seq} and a_seq < max(below.values())

    rest, _ = _pull_until(reader, admin, first.horizon, xid_a)
    delivered = [(r["article_id"], r["change_seq"]) for r in first.rows + rest]
    assert sorted(delivered) == sorted([(a_id, a_seq), (b_id, b_seq)])


@pytest.mark.slow  # writers and a reader in threads for seconds
def test_concurrent_writers_and_a_pulling_reader_miss_nothing_and_repeat_nothing(
        engine: Engine, reader_url: str) -> None:
    source = _source(engine)
    admin = admin_conninfo(engine.url.render_as_string(hide_password=False))
    reader = db.get_engine(reader_url)
    writers, tx_per_writer = 4, 30

    lock = threading.Lock()
    known: list[int] = []             # committed article ids, for updates
    rolled_back: set[int] = set()
    max_xid = [0]
    errors: list[BaseException] = []
    writers_done = threading.Event()
    delivered_max_seq = [0]           # largest change_seq the reader has received so far
    delivered_ids: set[int] = set()
    cond = threading.Condition()

    def note_xid(xid: int) -> None:
        with lock:
            max_xid[0] = max(max_xid[0], xid)

    def writer(w: int) -> None:
        rng = random.Random(w)
        try:
            with psycopg.connect(admin) as conn:
                for t in range(tx_per_writer):
                    if rng.random() < 0.5:
                        note_xid(_xid(conn))          # take the transaction id early
                        time.sleep(rng.random() * 0.01)
                    new = [_insert(conn, source, f"w{w}-t{t}-{i}")[0] for i in range(rng.randint(1, 3))]
                    with lock:
                        targets = sorted(rng.sample(known, min(len(known), rng.randint(0, 2))))
                    for aid in targets:               # sorted: no deadlocks between writers
                        conn.execute("UPDATE articles SET title = title || '+' WHERE id = %s", (aid,))
                    if rng.random() < 0.3:            # a story: bumps the story and its members
                        story = conn.execute("INSERT INTO stories (title) VALUES ('s') RETURNING id").fetchone()[0]
                        conn.execute("INSERT INTO story_articles (story_id, article_id, relation) "
                                     "SELECT %s, unnest(%s::bigint[]), 'same_story'", (story, new))
                    # hold some transactions open while others commit
                    time.sleep(rng.choice([0, 0, 0.005, 0.02, 0.08]))
                    note_xid(_xid(conn))
                    if rng.random() < 0.1:
                        conn.rollback()
                        with lock:
                            rolled_back.update(new)
                    else:
                        conn.commit()
                        with lock:
                            known.extend(new)
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)

    def late_committer() -> None:
        """The hazard, forced once in the middle of the load: an older transaction (B) commits a
        larger change_seq while a younger one (A) holds a smaller one open."""
        try:
            with psycopg.connect(admin) as a, psycopg.connect(admin) as b:
                note_xid(_xid(b))
                a_id, a_seq = _insert(a, source, "late-a")
                _b_id, b_seq = _insert(b, source, "late-b")
                note_xid(_xid(a))
                b.commit()
                with cond:  # A stays open until the reader has received a larger change_seq
                    assert cond.wait_for(lambda: delivered_max_seq[0] > a_seq, timeout=CATCH_UP_TIMEOUT)
                a.commit()
                with lock:
                    known.append(a_id)
        except BaseException as exc:
            errors.append(exc)

    deliveries: list[list[tuple[int, int]]] = []   # one list per pull
    stories_seen: dict[int, list[int]] = defaultdict(list)

    def reader_loop() -> None:
        since_a = since_s = 0
        deadline = None
        try:
            while True:
                with reader.connect() as conn:
                    pa = pull_changes(conn, "articles", since_a)
                    ps = pull_changes(conn, "stories", since_s)
                since_a, since_s = pa.horizon, ps.horizon
                batch = [(r["article_id"], r["change_seq"]) for r in pa.rows]
                deliveries.append(batch)
                for r in ps.rows:
                    stories_seen[r["story_id"]].append(r["change_seq"])
                with cond:
                    delivered_ids.update(a for a, _ in batch)
                    delivered_max_seq[0] = max([delivered_max_seq[0]] + [s for _, s in batch])
                    cond.notify_all()
                if writers_done.is_set():
                    deadline = deadline or time.monotonic() + CATCH_UP_TIMEOUT
                    if min(since_a, since_s) > max_xid[0]:
                        return
                    if time.monotonic() > deadline:
                        with psycopg.connect(admin) as conn:
                            raise AssertionError(f"horizon stuck below {max_xid[0]}, held by {horizon_holders(conn)}")
                time.sleep(0.005)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    threads.append(threading.Thread(target=late_committer))
    rthread = threading.Thread(target=reader_loop)
    rthread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writers_done.set()
    rthread.join()
    assert not errors, errors

    flat = [d for batch in deliveries for d in batch]
    assert len(flat) == len(set(flat)), "a version was delivered twice"
    replica: dict[int, int] = {}
    for aid, seq in flat:
        assert seq > replica.get(aid, 0), "a row went back to an older version"
        replica[aid] = seq
    with engine.connect() as conn:
        final = dict(conn.execute(text("SELECT id, change_seq FROM articles")).all())
        final_stories = dict(conn.execute(text("SELECT id, change_seq FROM stories")).all())
    assert replica == final, "the replica differs from the table: a change was missed"
    assert not (rolled_back & set(replica)), "a rolled-back row was delivered"
    assert {sid: seqs[-1] for sid, seqs in stories_seen.items()} == final_stories
    assert all(len(seqs) == len(set(seqs)) for seqs in stories_seen.values())
    # The load really produced late commits: rows whose change_seq is below what an earlier pull
    # had already delivered (each of them lost by a `change_seq > last` reader).
    late, high = 0, 0
    for batch in deliveries:
        late += sum(1 for _, seq in batch if seq < high)
        high = max([high] + [seq for _, seq in batch])
    assert late >= 1
    assert len(final) >= writers * tx_per_writer * 0.8
