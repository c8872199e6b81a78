"""Attribution cues: which outlets an article says it is based on.

"based on information from France 24", "según la VOA", "selon l'AFP", "d'après Reuters",
"(AFP)", "(AP) —", "Reuters reported". A cue only counts when the words after it name a known
outlet (one of our sources, by name or slug, or a news agency), so that "according to the
minister" records nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from etl.stories.features import fold

# Agencies whose copy other outlets run; name as written → canonical name.
AGENCIES: dict[str, str] = {
    "afp": "AFP", "agence france-presse": "AFP", "agence france presse": "AFP",
    "ap": "AP", "associated press": "AP", "the associated press": "AP",
    "reuters": "Reuters", "efe": "EFE", "agencia efe": "EFE", "dpa": "dpa", "ansa": "ANSA",
    "xinhua": "Xinhua", "bloomberg": "Bloomberg", "europa press": "Europa Press",
}

# Phrases that introduce the cited outlet (folded: lower case, no accents).
_CUES = [
    r"based on (?:information|reporting|a report|reports) (?:from|by)",
    r"with (?:information|reporting) from", r"according to", r"as reported by", r"citing",
    r"segun(?: informo| informa| publico| reporto| la agencia)?", r"con informacion de",
    r"de acuerdo con", r"informo", r"citado por",
    r"selon", r"d'apres", r"d’apres", r"avec", r"rapporte",
]
_CUE = re.compile(r"(?<!\w)(" + "|".join(_CUES) + r")\s+(?:(?:the|la|el|le|l'|l’|les|los|las)\s*)?",
                  re.IGNORECASE)
_PAREN = re.compile(r"\((AFP|AP|Reuters|EFE|dpa|ANSA|Xinhua)\)")
_REPORTED = re.compile(r"\b(Reuters|AFP|EFE|Associated Press) (?:reported|reports|said|informó|a rapporté)\b")


@dataclass(frozen=True)
class Outlet:
    name: str                   # canonical name recorded as cited_name
    source_id: int | None       # our source, when it is one


@dataclass(frozen=True)
class Citation:
    outlet: Outlet
    cue: str


def outlet_index(sources: Iterable[tuple[int, str, str]]) -> list[tuple[str, Outlet]]:
    """(folded alias, outlet) pairs, longest alias first, from ``(id, slug, name)`` rows plus
    the agencies. A source whose name is an agency's (say a source named "AFP") wins."""
    index: dict[str, Outlet] = {alias: Outlet(name, None) for alias, name in AGENCIES.items()}
    for sid, slug, name in sources:
        outlet = Outlet(name, sid)
        for alias in {fold(name), fold(slug), fold(slug.replace("-", " ").replace("_", " "))}:
            if len(alias) >= 2:
                index[alias] = outlet
    return sorted(index.items(), key=lambda kv: (-len(kv[0]), kv[0]))


_LIST_SEP = re.compile(r"^\s*(?:,|and|y|e|et|&)\s+(?:(?:the|la|el|le|l'|l’|les|los|las)\s*)?")


def _outlet_span(folded: str, index: list[tuple[str, Outlet]]) -> tuple[Outlet | None, int]:
    for alias, outlet in index:
        if folded.startswith(alias) and (len(folded) == len(alias) or not folded[len(alias)].isalnum()):
            return outlet, len(alias)
    return None, 0


def _outlet_at(folded: str, index: list[tuple[str, Outlet]]) -> Outlet | None:
    return _outlet_span(folded, index)[0]


def find_citations(text: str | None, index: list[tuple[str, Outlet]],
                   own_source_id: int | None = None) -> list[Citation]:
    """Outlets the text attributes itself to, first cue per outlet, never the article's own source."""
    if not text:
        return []
    found: dict[str, Citation] = {}

    def add(outlet: Outlet | None, cue: str) -> None:
        own = own_source_id is not None and outlet is not None and outlet.source_id == own_source_id
        if outlet and not own and outlet.name not in found:
            found[outlet.name] = Citation(outlet, cue)

    folded = fold(text)
    for m in _CUE.finditer(folded):
        rest = folded[m.end():m.end() + 120]
        # "from France 24 and the Voice of America": every outlet of a list counts
        while rest:
            outlet, length = _outlet_span(rest, index)
            if outlet is None:
                break
            add(outlet, m.group(0).strip())
            rest = _LIST_SEP.sub("", rest[length:], count=1) if _LIST_SEP.match(rest[length:]) else ""
    for m in _PAREN.finditer(text):
        add(_outlet_at(fold(m.group(1)), index), m.group(0))
    for m in _REPORTED.finditer(text):
        add(_outlet_at(fold(m.group(1)), index), m.group(0))
    return list(found.values())
