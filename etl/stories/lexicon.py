"""How common a word is in a language at large: wordfreq's frequency lists (40+ languages, in its
wheel, no download).

Why: the window's own statistics say nothing on a quiet stream (a story alone, a pair of
articles, a company's news over a year), and a stop list exists for three languages only. A
word's background frequency says, in every language we see, that "the", "und", "ve" or "في"
carry nothing, that "Apple" or "iPhone" are names the whole world uses (never evidence that two
reports are one event), and that "Poore" or "Nunley" are rare.

Zipf scale: log10 of the frequency per billion words (a word once per million words is 3.0).
Only the "small" lists are loaded (words down to about Zipf 3; ~2 MB per language): a word not
in them is rarer than that, which is all the features need. A language wordfreq does not know
gets ``None`` from the look-ups: the callers then fall back to the stream's own frequencies.
"""

from __future__ import annotations

import functools
import math
import threading
import unicodedata
from collections.abc import Iterable

RARE_ZIPF = 3.0      # a name below this is rare in the language at large (the long reach's names)
TERM_STEM = 7        # content words are cut to this many characters ("migrants" / "migration")
_lock = threading.Lock()
# letters NFKD does not decompose, mapped so that names meet across languages (and the Arabic
# tatweel, a stretching mark, dropped)
_LETTERS = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "ß": "ss", "æ": "ae", "œ": "oe", "đ": "d",
                          "ð": "d", "þ": "th", "ŀ": "l", "ـ": ""})


@functools.lru_cache(maxsize=1 << 16)
def fold(word: str) -> str:
    """A word as the story features key it: lower case, accents and marks removed, a few
    letters mapped (ı ł ø ß …) — "Erdoğan" / "Erdogan", "Łódź" / "Lodz" meet."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).translate(_LETTERS)


def stem(key: str) -> str:
    """A folded content word cut to ``TERM_STEM`` characters."""
    return key[:TERM_STEM]


@functools.cache
def _freqs(lang: str) -> dict[str, float] | None:
    """wordfreq's small list for a language: lowercased word → frequency (None: no list)."""
    try:
        from wordfreq import available_languages, get_frequency_dict
    except ImportError:  # (a declared dependency; a broken install falls back to the stream alone)
        return None
    with _lock:
        if lang not in available_languages(wordlist="small"):
            return None
        return dict(get_frequency_dict(lang, wordlist="small"))


def _zipf(freq: float) -> float:
    return math.log10(freq) + 9.0


@functools.cache
def _word_table(lang: str) -> dict[str, float] | None:
    """Lowercased word → Zipf frequency."""
    freqs = _freqs(lang)
    return None if freqs is None else {w: _zipf(f) for w, f in freqs.items()}


@functools.cache
def _stem_table(lang: str) -> dict[str, float] | None:
    """Stem (folded, cut like :func:`etl.stories.features.stem`) → Zipf frequency of every
    listed word that folds to it, summed: in an inflected language (Turkish, Polish, Arabic
    with its clitics) a surface form is rare while its stem is common ("gazından" / "gaz")."""
    freqs = _freqs(lang)
    if freqs is None:
        return None
    acc: dict[str, float] = {}
    for word, f in freqs.items():
        key = stem(fold(word))
        acc[key] = acc.get(key, 0.0) + f
    return {k: _zipf(v) for k, v in acc.items()}


def known(lang: str | None) -> bool:
    return lang is not None and _freqs(lang) is not None


def word_zipf(lowered: str, lang: str | None) -> float | None:
    """Zipf frequency of a lowercased surface word in ``lang`` (0 when rarer than the list
    goes), or None for a language without a list."""
    table = _word_table(lang) if lang else None
    return None if table is None else table.get(lowered, 0.0)


def stem_zipf(key: str, langs: Iterable[str]) -> float | None:
    """Zipf frequency of a term stem: the largest over ``langs`` (a word common in one of the
    window's languages carries little in any of them); None when no language has a list."""
    best: float | None = None
    for lang in langs:
        table = _stem_table(lang)
        if table is not None:
            z = table.get(key, 0.0)
            best = z if best is None else max(best, z)
    return best
