"""How common a word is in a language at large: wordfreq's frequency lists (40+ languages, in its
wheel, no download), keyed like our features (folded: lower case, no accents).

Why: the window's own statistics say nothing on a quiet stream (a story alone, a pair of
articles, a company's news over a year), and a stop list exists for three languages only. A
word's background frequency says, in every language we see, that "the", "und", "ve" or "في"
carry nothing, that "Apple" or "iPhone" are names the whole world uses (never evidence that two
reports are one event), and that "Poore" or "Nunley" are rare.

Zipf scale: log10 of the frequency per billion words (a word once per million words is 3.0).
Only the "small" lists are loaded (words down to about Zipf 3; ~2 MB per language): a word not
in them is rarer than that, which is all a rarity test needs.
"""

from __future__ import annotations

import functools
import math
import threading

from etl.stories.features import fold

FLOOR = 3.0          # the small lists stop here: an unlisted word is rarer
RARE_ZIPF = 3.0      # a name below this is rare in the language at large
_lock = threading.Lock()


@functools.cache
def _table(lang: str) -> dict[str, float] | None:
    """Folded word → Zipf frequency for one language (None when wordfreq has no list)."""
    try:
        from wordfreq import available_languages, get_frequency_dict
    except ImportError:  # (a declared dependency; a broken install falls back to the stream alone)
        return None
    with _lock:
        if lang not in available_languages(wordlist="small"):
            return None
        out: dict[str, float] = {}
        for word, freq in get_frequency_dict(lang, wordlist="small").items():
            key = fold(word)
            z = math.log10(freq) + 9.0
            if z > out.get(key, 0.0):
                out[key] = z
    return out


def zipf(word: str, lang: str | None) -> float:
    """Background Zipf frequency of a folded word in ``lang`` and in English (the larger: a
    name the English-speaking press uses all the time is common news vocabulary everywhere);
    ``0`` when it is rarer than the lists go."""
    best = 0.0
    for code in (lang, "en"):
        table = _table(code) if code else None
        if table is not None:
            best = max(best, table.get(word, 0.0))
    return best


def is_rare(word: str, lang: str | None) -> bool:
    return zipf(word, lang) < RARE_ZIPF
