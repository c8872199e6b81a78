"""The story repository in PostgreSQL: the statements of ``sql/queries/stories`` behind the
engine's :class:`~etl.stories.repository.StoryRepository`, on one connection (the batch's
transaction, under the story lock).

:class:`ProfileCache` keeps the decoded profiles of the recent windows: consecutive batches
share most of their window, and decoding ~3,000 profiles (JSON) per batch was a fifth of the
stage's CPU. A row is reused only while its stamp (the xmin of the story and profile rows) is
unchanged, so any write by any process is seen; rows this transaction wrote are never kept.
The cache belongs to whoever runs the stage (``etl.stories.assign.StoryStage``), not to the
module: two stages never share it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy.engine import Connection, Row

from etl.models import MatchMethod, Relation
from etl.store.queries import query
from etl.stories import attribution
from etl.stories.attribution import Outlet
from etl.stories.dedup import Family
from etl.stories.profile import Profile
from etl.stories.repository import BatchWrites, Membership
from etl.stories.snapshot import StoredProfile, decode, row_params


def _decode(r: Row) -> StoredProfile:
    return decode(r.member_count, r.terms, r.entities, r.numbers, r.centroid, r.embedded_count, r.languages,
                  r.source_ids, r.title_terms, r.body_terms)


class ProfileCache:
    """Decoded profile rows by story id: (stamp, row, first, last, the load that last used it)."""

    LIMIT = 5_000  # rows; beyond it, rows unused by the last 3 loads go

    def __init__(self) -> None:
        self.rows: dict[int, tuple[str, StoredProfile, datetime, datetime, int]] = {}
        self.loads = 0
        self.lock = threading.Lock()

    def load(self, conn: Connection, start: datetime, end: datetime) -> dict[int, Profile]:
        """Fresh profiles of the stories active between ``start`` and ``end``: the stamps of
        the window first, then only the rows not decoded before (or changed since)."""
        stamps = conn.execute(query("stories/active_profile_stamps"), {"start": start, "end": end}).all()
        with self.lock:
            self.loads += 1
            gen, cache = self.loads, self.rows
            want = [r.id for r in stamps if r.own or cache.get(r.id, ("",))[0] != r.stamp]
            fetched: dict[int, tuple[StoredProfile, datetime, datetime]] = {}
            if want:
                own = {r.id for r in stamps if r.own}
                for r in conn.execute(query("stories/profiles_by_id"), {"ids": want}):
                    stored = _decode(r)
                    fetched[r.id] = (stored, r.first_published_at, r.last_published_at)
                    if r.id not in own:
                        cache[r.id] = (r.stamp, stored, r.first_published_at, r.last_published_at, gen)
                    else:
                        cache.pop(r.id, None)
            out = {}
            for r in stamps:
                hit = fetched.get(r.id)
                if hit is None and not r.own and r.id in cache:
                    stamp, stored, first, last, _ = cache[r.id]
                    cache[r.id] = (stamp, stored, first, last, gen)
                    hit = (stored, first, last)
                if hit is not None:  # None: deleted between the two reads
                    out[r.id] = hit[0].profile(r.id, hit[1], hit[2])
            if len(cache) > self.LIMIT:
                for sid in [k for k, v in cache.items() if v[4] < gen - 2]:
                    del cache[sid]
        return out


class PostgresRepository:
    """:class:`~etl.stories.repository.StoryRepository` on one connection."""

    def __init__(self, conn: Connection, cache: ProfileCache | None = None) -> None:
        self.conn = conn
        self.cache = cache if cache is not None else ProfileCache()
        self._free_ids: list[int] = []
        self._taken = 0

    # --- stories -------------------------------------------------------------------------
    def window(self, start: datetime, end: datetime) -> dict[int, Profile]:
        return self.cache.load(self.conn, start, end)

    def stories(self, ids: Sequence[int]) -> dict[int, Profile]:
        if not ids:
            return {}
        return {r.id: _decode(r).profile(r.id, r.first_published_at, r.last_published_at)
                for r in self.conn.execute(query("stories/profiles_by_id"), {"ids": sorted(set(ids))})}

    def older_with_names(self, caps: Mapping[str, int], far: datetime, edge: datetime) -> dict[str, list[int]]:
        keys = sorted(caps)
        hits: dict[str, list[int]] = {}
        for r in self.conn.execute(query("stories/reach_candidates"), {
                "keys": keys, "caps": [caps[k] for k in keys], "far": far, "edge": edge}):
            hits.setdefault(r.key, []).append(r.id)
        return hits

    def new_story_id(self, upper_bound: int) -> int:
        """Ids for up to ``upper_bound`` stories are taken in one statement; the unused ones
        are given back at commit (as a rolled-back insert's would be skipped otherwise)."""
        if not self._free_ids:
            self._free_ids = list(self.conn.execute(query("stories/new_story_ids"), {"n": upper_bound}).scalars())
            self._taken = self._free_ids[-1]
            self._free_ids.reverse()
        return self._free_ids.pop()

    def membership(self, article_id: int) -> Membership | None:
        r = self.conn.execute(query("stories/membership"), {"id": article_id}).first()
        if r is None:
            return None
        return Membership(r.story_id, Relation(r.relation), r.score,
                          MatchMethod(r.method) if r.method is not None else None)

    def first_of_outlet(self, story_id: int, source_id: int, me: int) -> tuple[datetime, int] | None:
        r = self.conn.execute(query("stories/first_article_of_outlet"), {
            "s": story_id, "src": source_id, "me": me}).first()
        return (r.event_t, r.id) if r is not None else None

    def outlets(self) -> list[tuple[str, Outlet]]:
        rows = self.conn.execute(query("stories/outlets")).all()
        return attribution.outlet_index((r.id, r.slug, r.name) for r in rows)

    # --- near-duplicates -------------------------------------------------------------------
    def band_hits(self, arts: Sequence[tuple[int, Sequence[tuple[int, int]]]], limit: int) -> dict[int, list[tuple[int, int]]]:
        ids, bnd, hsh = [], [], []
        for aid, bands in arts:
            for b, h in bands:
                ids.append(aid)
                bnd.append(b)
                hsh.append(h)
        out: dict[int, list[tuple[int, int]]] = {}
        if ids:
            for r in self.conn.execute(query("stories/band_hits_batch"), {
                    "ids": ids, "bands": bnd, "hashes": hsh, "limit": limit}):
                out.setdefault(r.id, []).append((r.article_id, r.hits))
        return out

    def families(self, ids: Sequence[int]) -> list[Family]:
        return [Family(r.root, r.root_time, tuple(r.ids), r.first_body)
                for r in self.conn.execute(query("stories/near_duplicate_families"), {"ids": list(ids)})]

    def bodies(self, ids: Sequence[int]) -> list[tuple[int, str | None]]:
        return [(r.id, r.body) for r in self.conn.execute(query("stories/near_duplicate_candidates"),
                                                          {"ids": list(ids)})]

    def mark_duplicate(self, article_id: int, original_id: int) -> None:
        self.conn.execute(query("stories/mark_duplicate"), {"id": article_id, "orig": original_id})

    def make_original(self, article_id: int, old_original_id: int) -> None:
        self.conn.execute(query("stories/make_original"), {"id": article_id, "old": old_original_id})

    def demote(self, article_id: int, score: float) -> None:
        self.conn.execute(query("stories/demote_to_near_duplicate"), {"id": article_id, "s": score})

    # --- the batch -------------------------------------------------------------------------
    def commit(self, w: BatchWrites) -> None:
        conn = self.conn
        if w.new_stories:
            conn.execute(query("stories/new_stories"), {
                "ids": [i for i, _, _ in w.new_stories], "titles": [t for _, t, _ in w.new_stories],
                "ts": [t for _, _, t in w.new_stories]})
        if w.members:
            conn.execute(query("stories/add_members"), {
                "s": [m.story_id for _, m in w.members], "a": [a for a, _ in w.members],
                "rel": [str(m.relation) for _, m in w.members], "score": [m.score for _, m in w.members],
                "method": [str(m.method) if m.method is not None else None for _, m in w.members]})
        if self._free_ids:
            conn.execute(query("stories/give_back_story_ids"), {"next": self._free_ids[-1], "taken": self._taken})
            self._free_ids = []
        if w.bands:
            conn.execute(query("stories/save_bands_batch"), {
                "ids": [a for a, bands in w.bands for _ in bands],
                "bands": [b for _, bands in w.bands for b, _ in bands],
                "hashes": [h for _, bands in w.bands for _, h in bands]})
        if w.citations:  # one pipelined executemany
            conn.execute(query("stories/save_citation"), w.citations)
        for gone, into in w.merges:
            conn.execute(query("stories/merge_members"), {"from": gone, "into": into})
            conn.execute(query("stories/merge_links"), {"from": gone, "into": into})
            conn.execute(query("stories/drop_story"), {"id": gone})
        if w.links:
            conn.execute(query("stories/save_links"), {
                "s": [link.story_id for link in w.links], "r": [link.related_id for link in w.links],
                "kind": [link.kind for link in w.links], "score": [link.score for link in w.links]})
        if w.assigned:
            conn.execute(query("stories/mark_assigned"), {"ids": w.assigned})
        if w.profiles:
            conn.execute(query("stories/save_profile"), [row_params(p) for p in w.profiles])
        if w.touched:
            conn.execute(query("stories/refresh_story_counters"), {"ids": sorted(set(w.touched))})
