"""The story dev sets in memory, the TF-IDF baseline, the scores, and the training of the join
model: shared by ``bench/eval_stories.py`` (grouped cross-validation) and
``bench/train_stories.py`` (the shipped weights). Three streams (ECB+, GVC, MEANTIME) and one
set of rated pairs (SemEval-2022 task 8).

Dates are the datasets' own, never a date guessed from page text:

* GVC (``gvc-train.jsonl``) has the real publication day of every article; each gets a time
  of day between 08:00 and 20:00 UTC drawn from its doc_id (deterministic).
* ECB+ (``ecbplus-dev.jsonl``) has none; as its README says, every article of one topic gets a
  time inside one 24-hour window (topics start 12 hours apart, in topic order, so the 72-hour
  window always holds several topics and both events of a topic are always in it together).
  The outlet is one of six, drawn at random (seed 7). The title is the first sentence.
* MEANTIME (``meantime-dev.jsonl``): Wikinews articles about Airbus and Apple, each in en, es,
  it and nl; the four versions share the English dateline's day, each gets a time of day
  between 08:00 and 20:00 UTC drawn from its doc_id; each language is its own outlet
  (``wikinews-en``, ...). CV groups: the article (its four versions are never split).
* SemEval pairs (``semeval-pairs-dev.jsonl``, :func:`load_pairs`): rated pairs in 8 language
  pairs, each decided alone.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from etl.config import StoryConfig
from etl.stories import dedup, features, memory, model
from etl.stories.matcher import Matcher
from etl.stories.model import FEATURES, JoinModels
from etl.stories.profile import Item, Profile, build_item
from etl.stories.reach import reach_pool

ROOT = Path(__file__).resolve().parent.parent
DATA = next((p / "shared" / "data" / "stories" for p in ROOT.parents if (p / "shared" / "data").is_dir()),
            ROOT.parent / "shared" / "data" / "stories")
SETS = {"ecbplus": "ecbplus-dev.jsonl", "gvc": "gvc-train.jsonl", "meantime": "meantime-dev.jsonl"}
PAIRS = "semeval-pairs-dev.jsonl"
# a stress line, scored beside the dev sets, never trained on: MEANTIME with each corpus's
# articles one day apart in their order — a daily company-news stream, where every window
# holds other events about the same company (what unseen company news did to the stories:
# a month of market reports chained into one). Synthetic dates: never instead of a dev set.
STRESS = {"meantime-dense": "meantime-dev.jsonl"}
BASE = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@dataclass
class Doc:
    doc_id: str
    gold: str          # the event (ECB+ cluster_id, GVC incident_id)
    group: str         # the CV group (ECB+ topic, GVC incident)
    time: datetime
    outlet: str
    language: str
    title: str
    body: str


def data_hash(name: str) -> str:
    return hashlib.sha256((DATA / SETS.get(name, name)).read_bytes()).hexdigest()


def _time_of_day(day: str, doc_id: str) -> datetime:
    """The day at a time between 08:00 and 20:00 UTC drawn from the doc_id (deterministic)."""
    minute = int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % (12 * 60)
    return datetime.fromisoformat(day[:10]).replace(tzinfo=UTC) + timedelta(hours=8, minutes=minute)


def load(name: str) -> list[Doc]:
    """The set's documents in publication order (time, doc_id)."""
    rows = [json.loads(line) for line in (DATA / {**SETS, **STRESS}[name]).open(encoding="utf-8")]
    docs: list[Doc] = []
    if name == "ecbplus":
        rng = random.Random(7)
        topics = sorted({r["topic"] for r in rows})
        start = {t: BASE + timedelta(hours=12 * i) for i, t in enumerate(topics)}
        for r in rows:
            outlet = f"outlet-{rng.randrange(6)}"
            t = start[r["topic"]] + timedelta(minutes=rng.randrange(24 * 60))
            docs.append(Doc(r["doc_id"], r["cluster_id"], str(r["topic"]), t, outlet, r.get("language") or "en",
                            r["first_sentence"].strip(), r["body"].strip()))
    elif name == "meantime-dense":
        order: dict[str, list[str]] = defaultdict(list)
        for r in sorted(rows, key=lambda r: (r["published"], r["article_id"])):
            if r["article_id"] not in order[r["corpus"]]:
                order[r["corpus"]].append(r["article_id"])
        day_of = {a: i for arts in order.values() for i, a in enumerate(arts)}
        for r in rows:
            day = (BASE + timedelta(days=day_of[r["article_id"]])).date().isoformat()
            docs.append(Doc(r["doc_id"], r["cluster_id"], r["article_id"], _time_of_day(day, r["doc_id"]),
                            f"wikinews-{r['language']}", r["language"], (r.get("title") or "").strip(),
                            r["text"].strip()))
    elif name == "gvc":
        for r in rows:
            docs.append(Doc(r["doc_id"], r["incident_id"], r["incident_id"], _time_of_day(r["published"], r["doc_id"]),
                            r["outlet"], "en", (r.get("title") or "").strip(), r["text"].strip()))
    else:
        for r in rows:
            docs.append(Doc(r["doc_id"], r["cluster_id"], r["article_id"], _time_of_day(r["published"], r["doc_id"]),
                            f"wikinews-{r['language']}", r["language"], (r.get("title") or "").strip(),
                            r["text"].strip()))
    docs.sort(key=lambda d: (d.time, d.doc_id))
    return docs


def folds(docs: Sequence[Doc], k: int = 5) -> list[set[str]]:
    """k groups of CV groups (ECB+ topics / GVC incidents), never split; groups are taken in
    order of their first article, in contiguous blocks of about equal article counts, so that
    a test fold keeps the same-week look-alikes that make a set hard."""
    first: dict[str, datetime] = {}
    size: dict[str, int] = defaultdict(int)
    for d in docs:
        first.setdefault(d.group, d.time)
        size[d.group] += 1
    order = sorted(first, key=lambda g: (first[g], g))
    total, out, acc = len(docs), [set() for _ in range(k)], 0
    for g in order:
        out[min(k - 1, acc * k // total)].add(g)
        acc += size[g]
    return out


# --- scores -----------------------------------------------------------------------------

def scores(pred: dict[str, object], gold: dict[str, object]) -> dict[str, float]:
    """B-cubed precision/recall/F1 and pairwise precision/recall/F1."""
    by_pred, by_gold = defaultdict(set), defaultdict(set)
    for d in pred:
        by_pred[pred[d]].add(d)
        by_gold[gold[d]].add(d)
    p = sum(len(by_pred[pred[d]] & by_gold[gold[d]]) / len(by_pred[pred[d]]) for d in pred) / len(pred)
    r = sum(len(by_pred[pred[d]] & by_gold[gold[d]]) / len(by_gold[gold[d]]) for d in pred) / len(pred)
    tp = fp = fn = 0
    for a, b in itertools.combinations(sorted(pred), 2):
        same_p, same_g = pred[a] == pred[b], gold[a] == gold[b]
        tp += same_p and same_g
        fp += same_p and not same_g
        fn += same_g and not same_p
    pp = tp / (tp + fp) if tp + fp else 0.0
    pr = tp / (tp + fn) if tp + fn else 0.0
    return {"b3_p": p, "b3_r": r, "b3_f1": 2 * p * r / (p + r) if p + r else 0.0,
            "pair_p": pp, "pair_r": pr, "pair_f1": 2 * pp * pr / (pp + pr) if pp + pr else 0.0,
            "stories": len(by_pred), "events": len(by_gold)}


def errors(pred: dict[str, object], docs: Sequence[Doc], limit: int = 15) -> dict[str, list]:
    """Splits (an event spread over several stories) and merges (a story holding several
    events), largest first, with the titles, to learn from."""
    by_gold: dict[str, list[Doc]] = defaultdict(list)
    by_pred: dict[object, list[Doc]] = defaultdict(list)
    for d in docs:
        by_gold[d.gold].append(d)
        by_pred[pred[d.doc_id]].append(d)
    splits = []
    for g, ds in by_gold.items():
        parts: dict[object, list[Doc]] = defaultdict(list)
        for d in ds:
            parts[pred[d.doc_id]].append(d)
        if len(parts) > 1:
            splits.append({"event": g, "articles": len(ds), "stories": len(parts),
                           "parts": [[f"{d.time:%m-%d %H:%M} {d.outlet}: {d.title[:70]}" for d in p][:3]
                                     for p in sorted(parts.values(), key=len, reverse=True)]})
    merges = []
    for s, ds in by_pred.items():
        events: dict[str, list[Doc]] = defaultdict(list)
        for d in ds:
            events[d.gold].append(d)
        if len(events) > 1:
            merges.append({"story_articles": len(ds), "events": {
                g: [f"{d.time:%m-%d %H:%M} {d.outlet}: {d.title[:70]}" for d in e][:2] for g, e in events.items()}})
    splits.sort(key=lambda e: -e["stories"] * e["articles"])
    merges.sort(key=lambda e: -e["story_articles"])
    return {"splits": len(splits), "merges": len(merges), "split_examples": splits[:limit],
            "merge_examples": merges[:limit]}


def window_ceiling(docs: Sequence[Doc], window_hours: float = 72.0) -> dict[str, str]:
    """The best any stream clusterer with a ±window can do: each gold event cut wherever
    its articles are more than the window apart (a follow-up weeks later starts anew)."""
    by_gold: dict[str, list[Doc]] = defaultdict(list)
    for d in docs:
        by_gold[d.gold].append(d)
    pred = {}
    for g, ds in by_gold.items():
        part, last = 0, None
        for d in sorted(ds, key=lambda d: d.time):
            if last is not None and (d.time - last).total_seconds() > window_hours * 3600:
                part += 1
            pred[d.doc_id], last = f"{g}/{part}", d.time
    return pred


# --- the TF-IDF baseline ----------------------------------------------------------------

def baseline(docs: Sequence[Doc], thresholds: Sequence[float], window_hours: float = 72.0,
             fit_on: Sequence[Doc] | None = None) -> dict[float, dict[str, int]]:
    """Single pass in publication order: each article joins the story, among those with a
    member within ±window, whose members it resembles most on average (cosine of
    ``TfidfVectorizer(sublinear_tf=True, stop_words="english")`` over title + body), if that
    mean is ≥ the threshold; else it starts a story. Fitted on ``fit_on`` (default: the docs)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english")
    vec.fit([d.title + "\n" + d.body for d in (fit_on or docs)])
    x = vec.transform([d.title + "\n" + d.body for d in docs])
    sim = (x @ x.T).toarray()
    times = np.array([d.time.timestamp() for d in docs])
    out = {}
    for th in thresholds:
        story = np.full(len(docs), -1)
        n = 0
        for i in range(len(docs)):
            near = [j for j in range(i) if abs(times[i] - times[j]) <= window_hours * 3600]
            best, best_s = -1, -1.0
            for s in sorted({int(story[j]) for j in near}):
                members = [j for j in near if story[j] == s]
                m = float(sim[i, members].mean())
                if m > best_s:
                    best, best_s = s, m
            if best >= 0 and best_s >= th:
                story[i] = best
            else:
                story[i] = n
                n += 1
        out[th] = {d.doc_id: int(story[i]) for i, d in enumerate(docs)}
    return out


# --- ours -------------------------------------------------------------------------------

def items(docs: Sequence[Doc], cfg: StoryConfig, embeddings: np.ndarray | None) -> list[Item]:
    outlets = {o: k for k, o in enumerate(sorted({d.outlet for d in docs}))}
    return [build_item(i, outlets[d.outlet], d.language, d.time, d.title, None, d.body, cfg,
                       embeddings[i] if embeddings is not None else None)
            for i, d in enumerate(docs)]


def embed(docs: Sequence[Doc], cfg: StoryConfig, cache: Path = Path("/tmp/newsetl-story-embeddings")) -> np.ndarray | None:
    """The encoder over every lead, in one call per set, cached on disk by text hash."""
    texts = [features.lead(d.title, None, d.body, cfg.lead_chars) for d in docs]
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]
    path = cache / f"{key}.npy"
    if path.exists():
        return np.load(path)
    vecs = features.embed(texts)
    if vecs is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, vecs)
    return vecs


# training rows from the long reach's candidates too (eval_stories.py --reach-train): the model
# then changed and ECB+ lost 0.04 B3 F1 (docs/benchmarks.md); the shipped model is trained on
# the window's candidates, and the reach's stories are joined only at cfg.reach_probability
REACH_TRAIN = False
MERGE = True  # merge converged stories (as production does); eval_stories.py --no-merge turns it off


def sources(docs: Sequence[Doc]) -> list[tuple[int, str, str]]:
    """The outlets as the story stage's sources (id, slug, name), ids as :func:`items` gives them."""
    return [(k, o, o) for k, o in enumerate(sorted({d.outlet for d in docs}))]


_BANDS: dict[tuple[int, int], list[tuple[int, int]]] = {}


def _bands(its: Sequence[Item]) -> dict[int, list[tuple[int, int]]]:
    """MinHash bands by item id, computed once per text (the CV places each article many times)."""
    out = {}
    for it in its:
        key = (it.id, hash(it.body))
        if key not in _BANDS:
            _BANDS[key] = dedup.bands_for(it.body)
        out[it.id] = _BANDS[key]
    return out


def ours(docs: Sequence[Doc], its: Sequence[Item], cfg: StoryConfig, models: JoinModels | None) -> dict[str, int]:
    """The stories the production engine (``etl.stories.engine``) makes of the stream, on a
    memory repository: near-duplicates, attribution, the join decision, merges."""
    if not MERGE:
        cfg = replace(cfg, merge_probability=1.01)
    by_id = memory.cluster(list(its), cfg, models, sources=sources(docs), bands=_bands(its)).story_of()
    return {d.doc_id: by_id[it.id] for d, it in zip(docs, its, strict=True)}


def subset(docs: Sequence[Doc], its: Sequence[Item], groups: set[str], inside: bool) -> tuple[list[Doc], list[Item]]:
    keep = [i for i, d in enumerate(docs) if (d.group in groups) == inside]
    return [docs[i] for i in keep], [its[i] for i in keep]


def training_pairs(docs: Sequence[Doc], its: Sequence[Item], cfg: StoryConfig,
                   batch: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows (article, candidate story) and labels from an *oracle* pass: the stream
    in order, every article added to its gold story, each candidate the matcher would score
    labelled same-event or not."""
    window = timedelta(hours=cfg.window_hours)
    gold_id: dict[str, int] = {}
    profiles: dict[int, Profile] = {}
    rows, labels = [], []
    for start in range(0, len(its), batch):
        chunk = list(range(start, min(start + batch, len(its))))
        lo, hi = its[chunk[0]].time - window, its[chunk[-1]].time + window
        held = {k: p for k, p in profiles.items() if p.last >= lo and p.first <= hi}
        m = Matcher(held, cfg, models=_NO_MODELS, reach=reach_pool(profiles, lo, held, cfg),
                    languages=[its[i].language for i in chunk if its[i].language])
        for i in chunk:
            art, g = its[i], docs[i].gold
            cands = m.candidates(art) if REACH_TRAIN else m.active(art)
            if cands:
                rows.append(m.features(art, cands))
                labels.extend(1 if p.story_id == gold_id.get(g) else 0 for p in cands)
            if g in gold_id:
                if gold_id[g] not in m.profiles and not (m.reach and gold_id[g] in m.reach.profiles):
                    m.track(profiles[gold_id[g]])  # a follow-up beyond the reach
                m.add(gold_id[g], art)
            else:
                gold_id[g] = len(gold_id) + 1
                m.open(gold_id[g], art)
        profiles.update(m.profiles)
    x = np.vstack(rows) if rows else np.zeros((0, len(FEATURES)))
    return x, np.asarray(labels)


def stream_rows(docs: Sequence[Doc], its: Sequence[Item], cfg: StoryConfig, jm: JoinModels,
                batch: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows and labels of the decisions the engine itself makes on the stream with
    the model ``jm`` (not the oracle's, where the right story is always open): the first
    article of a new event meets only wrong stories, and its best candidate is what the
    model must learn to turn down. A candidate is labelled same-event when most of its
    members (at the time of the decision) report the article's event."""
    from etl.stories.engine import StoryEngine

    gold = {it.id: d.gold for d, it in zip(docs, its, strict=True)}
    seen: list[tuple[int, list[int], np.ndarray]] = []
    engine = StoryEngine(cfg, jm)
    engine.observe = lambda art, profs, x: seen.append((art.id, [p.story_id for p in profs], x))
    repo = memory.MemoryRepository(sources(docs))
    members: dict[int, list[int]] = defaultdict(list)
    rows, labels = [], []
    bands = _bands(its)
    for start in range(0, len(its), batch):
        chunk = list(its[start:start + batch])
        seen.clear()
        repo.add_articles(chunk)
        result = engine.step(repo, [memory.Prepared(it, bands[it.id]) for it in chunk])
        placed = {p.article_id: p.story_id for p in result.placements}
        decided = {aid: (sids, x) for aid, sids, x in seen}
        for it in sorted(chunk, key=lambda it: (it.time, it.id)):
            if it.id in decided:
                sids, x = decided[it.id]
                for sid, row in zip(sids, x, strict=True):
                    held = [gold[a] for a in members[sid]]
                    major = max(sorted(set(held)), key=held.count) if held else None  # (ties: the first by name)
                    rows.append(row)
                    labels.append(int(major == gold[it.id]))
            members[placed[it.id]].append(it.id)
        for gone, into in result.merges:
            members[into].extend(members.pop(gone, []))
    x = np.vstack(rows) if rows else np.zeros((0, len(FEATURES)))
    return x, np.asarray(labels)


def pair_rows(pairs: Sequence[Pair], cfg: StoryConfig, emb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of the clear pairs as the engine sees each pair alone: the second article
    against the story the first opened (when that story is a candidate at all: else the
    engine never scores it, and the pair is no training row)."""
    rows, labels = [], []
    for k, p in enumerate(pairs):
        if p.label is None:
            continue
        a, b = pair_items(p, cfg, emb[k] if emb is not None else None)
        m = Matcher({}, cfg, models=_NO_MODELS, languages=[p.lang1, p.lang2])
        m.open(1, a)
        cands = m.active(b)
        if cands:
            rows.append(m.features(b, cands))
            labels.append(p.label)
    x = np.vstack(rows) if rows else np.zeros((0, len(FEATURES)))
    return x, np.asarray(labels)


def fit(x: np.ndarray, y: np.ndarray, names: Sequence[str], threshold: float = 0.5, c: float = 1.0,
        weight: np.ndarray | None = None) -> dict:
    """A standardized logistic regression on the named feature columns, as the JSON
    :class:`etl.stories.model.JoinModel` reads."""
    from sklearn.linear_model import LogisticRegression

    cols = [FEATURES.index(n) for n in names]
    xs = x[:, cols]
    mean, scale = xs.mean(axis=0), xs.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit((xs - mean) / scale, y, sample_weight=weight)
    return {"features": list(names), "mean": [round(float(v), 6) for v in mean],
            "scale": [round(float(v), 6) for v in scale], "coef": [round(float(v), 6) for v in lr.coef_[0]],
            "intercept": round(float(lr.intercept_[0]), 6), "threshold": threshold}


# The features the shipped model uses: the "gap" features (this story vs the best other one on
# title/entities) and the candidate count made the grouped-CV scores worse (docs/benchmarks.md).
DEFAULT_FEATURES = ("title_cos", "lead_cos", "body_cos", "body_gap", "entity_cos", "entity_shared",
                    "number_cos", "embedding_cos", "time_gap", "same_outlet", "log_members", "cross")


PAIRS_WEIGHT = 1.0  # the SemEval pairs' total weight in the main fit (SPARSE off), against 1 per stream set
STREAM_ROUNDS = 1   # refits on the stream's own decisions (stream_rows) after the oracle fit
SPARSE = True       # the pairs fit the sparse model (a window holding only the candidate), not the main one
# the sparse model's features: what means the same with one story in the window (no gaps, no
# story frequencies to speak of, one candidate, a story of one article)
SPARSE_FEATURES = ("title_cos", "lead_cos", "body_cos", "entity_cos", "entity_shared", "number_cos",
                   "embedding_cos", "cross")


def fit_models(parts: Sequence[tuple[Sequence[Doc], Sequence[Item]]], cfg: StoryConfig,
               thresholds: Sequence[float], c: float = 1.0, names: Sequence[str] = DEFAULT_FEATURES,
               kinds: Sequence[str] = ("embedding", "lexical"), min_precision: float = 0.95,
               pairs: Sequence[Pair] = (), pair_emb: np.ndarray | None = None) -> tuple[dict, dict]:
    """Fits the models on the training data and picks their bars on the same training data.

    * ``embedding`` and ``lexical`` (the main ones): on the stream sets' oracle rows, then
      ``STREAM_ROUNDS`` times more on the stream's own decisions (each set weighing the same;
      the rated pairs too, at ``PAIRS_WEIGHT``, when ``SPARSE`` is off);
    * ``sparse`` (``SPARSE``, with pairs): on the rated pairs, each decided alone; its bar is
      the one with the best pairwise F1 on them.

    The main bars: the best mean F1 over the sets (B³ for a stream, pairwise for the pairs),
    among those with B³ precision ≥ ``min_precision`` on each stream when there is one.
    Returns (the JSON "models" object, the sweep)."""
    sets = [training_pairs(d, i, cfg) for d, i in parts]
    main_pairs = bool(pairs) and not SPARSE
    if main_pairs:
        sets.append(pair_rows(pairs, cfg, pair_emb))

    def weights(groups: Sequence[np.ndarray], pair_last: bool) -> np.ndarray:
        w = np.concatenate([np.full(len(ys), (PAIRS_WEIGHT if pair_last and k == len(groups) - 1 else 1.0)
                                    / max(1, len(ys))) for k, ys in enumerate(groups)])
        return w * (sum(len(ys) for ys in groups) / w.sum())

    x = np.vstack([xs for xs, _ in sets])
    groups = [ys for _, ys in sets]
    y, w = np.concatenate(groups), weights(groups, main_pairs)
    models = {"embedding": fit(x, y, names, c=c, weight=w),
              "lexical": fit(x, y, [n for n in names if n != "embedding_cos"], c=c, weight=w)}
    for _ in range(STREAM_ROUNDS):
        jm0 = model.parse_models({"version": "oracle", "models": {k: {**m, "threshold": 0.5} for k, m in models.items()}})
        extra = [stream_rows(d, i, cfg, jm0) for d, i in parts]
        ex = np.vstack([x] + [a for a, _ in extra])
        eg = groups + [b for _, b in extra]
        ey, ew = np.concatenate(eg), weights(eg, False)
        if main_pairs:  # (the pairs' rows stay in, at their weight, among the stream rounds' rows)
            ew = np.concatenate([w * len(y) / w.sum(), ew[len(y):]])
        models = {"embedding": fit(ex, ey, names, c=c, weight=ew),
                  "lexical": fit(ex, ey, [n for n in names if n != "embedding_cos"], c=c, weight=ew)}
    sweep: dict[str, dict[float, list[dict[str, float]]]] = {"embedding": {}, "lexical": {}, "sparse": {}}
    gold = [p.label for p in pairs]
    if pairs and SPARSE and pair_emb is not None:
        px, py = pair_rows(pairs, cfg, pair_emb)
        models["sparse"] = fit(px, py, SPARSE_FEATURES, c=c)
        for th in thresholds:
            jm = model.parse_models({"version": "cv", "models": {**models, "sparse": {**models["sparse"], "threshold": th}}})
            pr = pair_scores(pair_decisions(pairs, cfg, jm, pair_emb), gold)
            sweep["sparse"][th] = [{"b3_f1": pr["f1"], "b3_p": pr["p"], "pairs": True}]
        models["sparse"]["threshold"] = max(sweep["sparse"], key=lambda th: (sweep["sparse"][th][0]["b3_f1"], -th))
    for kind in kinds:
        for th in thresholds:
            m = dict(models)
            m[kind] = {**models[kind], "threshold": th}
            jm = model.parse_models({"version": "cv", "models": m})
            res = []
            for docs, its in parts:
                use = its if kind == "embedding" else [replace(it, embedding=None) for it in its]
                res.append(scores(ours(docs, use, cfg, jm), {d.doc_id: d.gold for d in docs}))
            if pairs:
                pe = pair_emb if kind == "embedding" else None
                pr = pair_scores(pair_decisions(pairs, cfg, jm, pe), gold)
                res.append({"b3_f1": pr["f1"], "b3_p": 1.0, "pair_f1": pr["f1"], "pairs": True})
            sweep[kind][th] = res
        ok = [th for th, res in sweep[kind].items() if all(r["b3_p"] >= min_precision for r in res)]
        pool = ok or list(sweep[kind])
        best = max(pool, key=lambda th: (np.mean([r["b3_f1"] for r in sweep[kind][th]]), -th))
        models[kind]["threshold"] = best
    return models, sweep


class _Unused:
    """Stands in for the models where only features are computed (training pairs)."""


_NO_MODELS = _Unused()  # type: ignore[assignment]


# --- MEANTIME: the four versions of an article ------------------------------------------------

def versions_together(pred: dict[str, object], docs: Sequence[Doc]) -> float:
    """The share of articles (gold clusters) whose versions all landed in one story."""
    by_gold: dict[str, set[object]] = defaultdict(set)
    for d in docs:
        by_gold[d.gold].add(pred[d.doc_id])
    return sum(len(s) == 1 for s in by_gold.values()) / len(by_gold)


def language_pair_errors(pred: dict[str, object], docs: Sequence[Doc]) -> dict[str, dict[str, int]]:
    """Per language pair: same-article pairs split apart, and pairs of different articles put
    in one story (the pairwise errors, by the two languages)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"split": 0, "merged": 0, "same_pairs": 0})
    for a, b in itertools.combinations(docs, 2):
        key = "-".join(sorted((a.language, b.language)))
        same_gold, same_pred = a.gold == b.gold, pred[a.doc_id] == pred[b.doc_id]
        out[key]["same_pairs"] += same_gold
        out[key]["split"] += same_gold and not same_pred
        out[key]["merged"] += same_pred and not same_gold
    return {k: v for k, v in sorted(out.items())}


# --- SemEval pairs: the join decision, one pair at a time ------------------------------------

@dataclass
class Pair:
    pair_id: str
    lang1: str
    lang2: str
    title1: str
    body1: str
    title2: str
    body2: str
    overall: float

    @property
    def label(self) -> int | None:
        """1: the same story (overall ≤ 1.5), 0: different (≥ 3.0), None: unclear."""
        return 1 if self.overall <= 1.5 else 0 if self.overall >= 3.0 else None

    @property
    def langs(self) -> str:
        return self.lang1 if self.lang1 == self.lang2 else f"{self.lang1}-{self.lang2}"


def _split(text: str) -> tuple[str, str]:
    title, _, body = text.partition("  ")
    return title.strip(), body.strip()


def load_pairs(clear_only: bool = True) -> list[Pair]:
    """The rated pairs (by default only the clear ones: same or different story)."""
    out = []
    for line in (DATA / PAIRS).open(encoding="utf-8"):
        r = json.loads(line)
        p = Pair(r["pair_id"], r["lang1"], r["lang2"], *_split(r["text1"]), *_split(r["text2"]), float(r["overall"]))
        if p.label is not None or not clear_only:
            out.append(p)
    return out


def pair_groups(pairs: Sequence[Pair]) -> list[int]:
    """A CV group per pair: the connected component of the articles they share (a pair id is
    the two article ids), so that no article is in a training and a scored pair."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        a, b = p.pair_id.split("_")
        parent[find(a)] = find(b)
    roots = sorted({find(p.pair_id.split("_")[0]) for p in pairs})
    index = {r: k for k, r in enumerate(roots)}
    return [index[find(p.pair_id.split("_")[0])] for p in pairs]


def pair_items(p: Pair, cfg: StoryConfig, emb: np.ndarray | None) -> list[Item]:
    """The pair as two articles of two outlets, a minute apart, the first placed first."""
    return [build_item(1, 1, p.lang1, BASE, p.title1, None, p.body1, cfg, emb[0] if emb is not None else None),
            build_item(2, 2, p.lang2, BASE + timedelta(minutes=1), p.title2, None, p.body2, cfg,
                       emb[1] if emb is not None else None)]


def pair_embeddings(pairs: Sequence[Pair], cfg: StoryConfig) -> np.ndarray | None:
    """(n, 2, dim) embeddings of the pairs' leads, as the pipeline embeds an article."""
    docs = [Doc(p.pair_id + f"/{k}", "", "", BASE, "", "", t, b) for p in pairs
            for k, (t, b) in enumerate(((p.title1, p.body1), (p.title2, p.body2)))]
    vecs = embed(docs, cfg)
    return None if vecs is None else vecs.reshape(len(pairs), 2, -1)


def pair_decisions(pairs: Sequence[Pair], cfg: StoryConfig, models: JoinModels | None,
                   emb: np.ndarray | None) -> list[int]:
    """1 when the engine (memory repository, the pair alone) puts the two in one story."""
    out = []
    for k, p in enumerate(pairs):
        its = pair_items(p, cfg, emb[k] if emb is not None else None)
        story = memory.cluster(its, cfg, models, sources=[(1, "outlet-a", "Outlet A"), (2, "outlet-b", "Outlet B")]
                               ).story_of()
        out.append(int(story[1] == story[2]))
    return out


def pair_scores(pred: Sequence[int], gold: Sequence[int]) -> dict[str, float]:
    tp = sum(1 for p, g in zip(pred, gold, strict=True) if p and g)
    fp = sum(1 for p, g in zip(pred, gold, strict=True) if p and not g)
    fn = sum(1 for p, g in zip(pred, gold, strict=True) if g and not p)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"p": prec, "r": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
            "same": sum(gold), "different": len(gold) - sum(gold)}


def best_cut(scores: Sequence[float], gold: Sequence[int]) -> tuple[float, dict[str, float]]:
    """The cut on a similarity that gives the best pairwise F1 on these pairs (chosen on the
    scored pairs themselves: an optimistic baseline)."""
    best: tuple[float, dict[str, float]] | None = None
    for cut in sorted(set(round(float(s), 3) for s in scores)):
        res = pair_scores([int(s >= cut) for s in scores], gold)
        if best is None or res["f1"] > best[1]["f1"]:
            best = (cut, res)
    return best if best is not None else (1.0, pair_scores([0] * len(gold), gold))


def pair_cosines(pairs: Sequence[Pair], emb: np.ndarray | None) -> list[float]:
    """The encoder's cosine of each pair's leads (the embeddings are L2-normalized)."""
    if emb is None:
        return [0.0] * len(pairs)
    return [float(emb[k, 0] @ emb[k, 1]) for k in range(len(pairs))]


def pair_tfidf(pairs: Sequence[Pair]) -> list[float]:
    """TF-IDF cosine of each pair (``TfidfVectorizer(sublinear_tf=True)`` fitted on every text
    of the set, no stop list: the languages are many)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [t for p in pairs for t in (p.title1 + "\n" + p.body1, p.title2 + "\n" + p.body2)]
    x = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    return [float((x[2 * k] @ x[2 * k + 1].T).toarray()[0, 0]) for k in range(len(pairs))]
