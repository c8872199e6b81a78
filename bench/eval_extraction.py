"""Extraction quality on the Zyte article-extraction benchmark pages (181 real pages).

    python -m bench.eval_extraction            # NEWSETL_SHARED_DATA=/path/to/shared/data if needed

Scores, measured in the same run over the same pages:
- ``trafilatura``: bare_extraction alone, with the settings the issue names (metadata on,
  comments off, tables on, links/images off, dedup off);
- ``trafilatura+precision``: the same with favor_precision;
- ``ours``: the pipeline's extraction stage (``etl.parse.pool`` workers → extract_page with its
  fallbacks → normalize_text), with the FAVOR_PRECISION setting of etl/extract.py;
- ``ours+precision`` / ``ours-precision``: ours with that setting flipped, to decide it.

Body metric (the issue's): per page, precision/recall of the bag of whitespace tokens of the
extracted body against ``articleBody``; precision and recall are averaged over pages (pages
with no prediction count 0 recall and are left out of precision, as the benchmark's own
evaluate.py does) and F1 is taken from the two means. The benchmark's published metric
(4-gram shingles of \\w+ tokens, same aggregation) is printed next to it for comparison with
published figures (trafilatura ≈ 0.958). Coverage: share of pages with a title, a date, a date
with a time of day, a language, and a language that agrees with py3langid run on the gold body.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(os.environ.get("NEWSETL_SHARED_DATA") or Path(__file__).resolve().parent.parent.parent / "shared" / "data")
DATA = SHARED / "extraction" / "zyte-aeb"


@dataclass
class Out:
    body: str
    title: str | None = None
    date: str | None = None
    language: str | None = None
    status: str = "ok"


# ---------------------------------------------------------------- extractors (run in workers)

def trafilatura_alone(html: bytes, url: str, favor_precision: bool = False) -> Out:
    import trafilatura

    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                      include_tables=True, include_images=False, include_links=False,
                                      deduplicate=False, favor_precision=favor_precision)
    if doc is None:
        return Out("", status="none")
    return Out(doc.text or "", doc.title, doc.date, doc.language)


def trafilatura_precision(html: bytes, url: str) -> Out:
    return trafilatura_alone(html, url, favor_precision=True)


def page_fn_flipped(html: bytes | str, url: str | None, max_bytes: int | None):
    """extract_page with FAVOR_PRECISION flipped (set in the worker process only)."""
    import etl.parse.extract

    etl.parse.extract.FAVOR_PRECISION = os.environ.get("_EVAL_FLIP_TO", "1") == "1"
    return etl.parse.extract.extract_page(html, url, max_bytes)


def run_ours(pages: list[tuple[str, bytes, str]], flipped: bool) -> list[Out]:
    from etl.parse.extract import FAVOR_PRECISION, extract_page, with_feed_fallback
    from etl.parse.normalize import detect_language, normalize_text
    from etl.parse.pool import ExtractionPool, PageJob

    os.environ["_EVAL_FLIP_TO"] = "0" if FAVOR_PRECISION else "1"
    fn = page_fn_flipped if flipped else extract_page
    with ExtractionPool(workers=2, timeout=20, max_tasks=200, max_bytes=3 * 1024 * 1024, page_fn=fn) as pool:
        results = pool.extract_pages([PageJob(html, url) for _, html, url in pages])
    outs = []
    for res in results:
        ext = with_feed_fallback(res, None)
        body = normalize_text(ext.text) or ""
        outs.append(Out(body if ext.status != "failed" else "", ext.title, ext.date,
                        ext.language or detect_language(body), ext.status))
    return outs


# ---------------------------------------------------------------- scoring

def _prf(true_tokens: list, pred_tokens: list) -> tuple[float, float, float]:
    t, p = Counter(true_tokens), Counter(pred_tokens)
    tp = sum((t & p).values())
    fp = sum(p.values()) - tp
    fn = sum(t.values()) - tp
    s = tp + fp + fn
    return (tp / s, fp / s, fn / s) if s else (0.0, 0.0, 0.0)


def _scores(tp_fp_fns: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    def prec(tp, fp, fn):
        return 1.0 if fp == fn == 0 else (0.0 if tp == fp == 0 else tp / (tp + fp))

    def rec(tp, fp, fn):
        return 1.0 if fp == fn == 0 else (0.0 if tp == fn == 0 else tp / (tp + fn))

    p = statistics.mean(prec(*x) for x in tp_fp_fns if x[0] + x[1] > 0)
    r = statistics.mean(rec(*x) for x in tp_fp_fns if x[0] + x[2] > 0)
    return p, r, 2 * p * r / (p + r)


_WORD = re.compile(r"\w+", re.UNICODE)


def _shingles(text: str, n: int = 4) -> list[tuple[str, ...]]:
    toks = _WORD.findall(text or "")
    return [tuple(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1)) if toks[i:i + n]]


def evaluate(gold: list[str], outs: list[Out], gold_langs: list[str | None]) -> dict[str, float]:
    ws = _scores([_prf(g.split(), o.body.split()) for g, o in zip(gold, outs)])
    sh = _scores([_prf(_shingles(g), _shingles(o.body)) for g, o in zip(gold, outs)])
    n = len(outs)
    timed = sum(1 for o in outs if o.date and len(o.date) > 10 and o.date[10:] not in ("T00:00:00",))
    return {
        "P": ws[0], "R": ws[1], "F1": ws[2], "shingle_F1": sh[2],
        "title": sum(1 for o in outs if o.title) / n,
        "date": sum(1 for o in outs if o.date) / n,
        "date_time": timed / n,
        "language": sum(1 for o in outs if o.language) / n,
        "language_ok": sum(1 for o, g in zip(outs, gold_langs) if o.language and g
                           and o.language.split("-")[0].lower() == g) / n,
        "empty": sum(1 for o in outs if not o.body) / n * n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    from etl.parse.extract import FAVOR_PRECISION
    from etl.parse.normalize import detect_language

    truth = json.loads((args.data / "ground-truth.json").read_text(encoding="utf-8"))
    keys = sorted(truth)
    pages = [(k, gzip.decompress((args.data / "html" / f"{k}.html.gz").read_bytes()), truth[k]["url"]) for k in keys]
    gold = [truth[k]["articleBody"] for k in keys]
    gold_langs = [detect_language(g) for g in gold]

    runs: dict[str, list[Out]] = {}
    with ProcessPoolExecutor(2) as ex:
        runs["trafilatura"] = list(ex.map(trafilatura_alone, [p[1] for p in pages], [p[2] for p in pages]))
        runs["trafilatura+precision"] = list(ex.map(trafilatura_precision, [p[1] for p in pages], [p[2] for p in pages]))
    runs[f"ours (favor_precision={FAVOR_PRECISION})"] = run_ours(pages, flipped=False)
    runs[f"ours (favor_precision={not FAVOR_PRECISION})"] = run_ours(pages, flipped=True)

    print(f"{len(pages)} pages from {args.data}")
    print(f"{'extractor':<34} {'P':>6} {'R':>6} {'F1':>6} {'shingleF1':>9} {'title':>6} {'date':>6} "
          f"{'d+time':>6} {'lang':>6} {'lang ok':>7} {'empty':>5}  statuses")
    for name, outs in runs.items():
        m = evaluate(gold, outs, gold_langs)
        statuses = dict(Counter(o.status for o in outs))
        print(f"{name:<34} {m['P']:6.3f} {m['R']:6.3f} {m['F1']:6.3f} {m['shingle_F1']:9.3f} "
              f"{m['title']:6.2f} {m['date']:6.2f} {m['date_time']:6.2f} {m['language']:6.2f} "
              f"{m['language_ok']:7.2f} {int(m['empty']):5d}  {statuses}")


if __name__ == "__main__":
    main()
