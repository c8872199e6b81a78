"""A story profile as it is stored: what ``story_profiles`` keeps of a :class:`Profile` (the
body centroid capped to its heaviest terms, the centroids rounded, the embedding sum as float4,
JSON objects in jsonb's key order) and the decoded row every batch builds its own mutable
profile from. Both repositories go through it, so a story reads back the same from memory as
from PostgreSQL.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import cast

import numpy as np

from etl.stories.profile import Profile


@dataclass(frozen=True)
class StoredProfile:
    """A decoded ``story_profiles`` row: shared, never mutated (read-only containers); each
    batch builds its own :class:`Profile` from it, which copies them on its first change. The
    window state keys what it derives from an unchanged profile on this object
    (``Profile.origin``)."""

    member_count: int
    terms: Mapping[str, int]
    entities: Mapping[str, int]
    numbers: Mapping[str, int]
    centroid: np.ndarray | None      # read-only
    embedded_count: int
    languages: frozenset[str]
    source_ids: frozenset[int]
    title: Mapping[str, float]
    body: Mapping[str, float]

    def profile(self, story_id: int, first: datetime, last: datetime) -> Profile:
        # the containers are the row's own, read-only, until the profile first changes (own())
        return Profile(
            story_id, first, last, self.member_count, cast(Counter, self.terms), cast(Counter, self.entities),
            cast(Counter, self.numbers), self.centroid, self.embedded_count, cast(set, self.languages),
            cast(set, self.source_ids), cast(Counter, self.title), cast(Counter, self.body),
            origin=self, shared=True)


def float4_array(v: np.ndarray | None) -> str | None:
    """A float32 vector as a PostgreSQL array literal: the driver's list adapter walks 512
    floats in Python per row (a tenth of the stage's CPU); ``str`` of the list does it in C.
    Each float32 value is written as the shortest decimal of its exact double, which reads
    back as the same float4."""
    if v is None:
        return None
    return "{" + str(v.tolist())[1:-1] + "}"


def row_params(p: Profile) -> dict[str, object]:
    """The ``stories/save_profile`` parameters of a profile (its body centroid is capped first,
    in place: the profile then looks as it will when loaded again)."""
    p.own()
    p.dirty = False
    return {
        "id": p.story_id, "n": p.member_count, "terms": json.dumps(p.terms, sort_keys=True),
        "entities": json.dumps(p.entities, sort_keys=True), "numbers": json.dumps(p.numbers, sort_keys=True),
        "centroid": float4_array(p.centroid),
        "ne": p.embedded_count, "langs": sorted(p.languages), "sources": sorted(p.source_ids),
        "body": json.dumps(p.cap_body(), sort_keys=True), "title": json.dumps(dict(p.title), sort_keys=True)}


def decode(member_count: int, terms: dict, entities: dict, numbers: dict, centroid: object,
           embedded_count: int, languages: Iterable[str], source_ids: Iterable[int], title: dict,
           body: dict) -> StoredProfile:
    """A stored row, as the driver returns its columns."""
    vec = None
    if centroid is not None:
        vec = np.array(centroid, dtype=np.float32)
        vec.flags.writeable = False
    return StoredProfile(
        member_count, MappingProxyType(terms), MappingProxyType(entities), MappingProxyType(numbers), vec,
        embedded_count, frozenset(languages), frozenset(source_ids),
        MappingProxyType(title), MappingProxyType(body))


def _jsonb(d: Mapping) -> dict:
    """A dict in the key order PostgreSQL's jsonb gives back: shorter keys first, then by bytes."""
    return {k: d[k] for k in sorted(d, key=lambda k: (len(k.encode()), k.encode()))}


def stored_form(p: Profile) -> StoredProfile:
    """What saving the profile and reading it back gives (the memory repository's save)."""
    r = row_params(p)
    centroid = None if p.centroid is None else np.array(p.centroid, dtype=np.float32)
    return decode(p.member_count, _jsonb(json.loads(r["terms"])), _jsonb(json.loads(r["entities"])),  # type: ignore[arg-type]
                  _jsonb(json.loads(r["numbers"])), centroid, p.embedded_count,  # type: ignore[arg-type]
                  r["langs"], r["sources"], _jsonb(json.loads(r["title"])), _jsonb(json.loads(r["body"])))  # type: ignore[arg-type]
