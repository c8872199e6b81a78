"""Fits the shipped join models (``etl/stories/join_model.json``) on the story dev sets.

    .venv/bin/python bench/eval_stories.py --write-model     # CV scores, then this, in one run
    .venv/bin/python bench/train_stories.py --cv-report /tmp/stories-cv.json   # the same, in two

The main models (with the embedding feature, and the lexical fallback) are fitted on every
article of ``ecbplus-dev.jsonl`` and ``gvc-train.jsonl`` (the oracle pass of
``stories_dev.training_pairs``, then the stream's own decisions, ``stories_dev.stream_rows``),
the sparse model on every clear pair of ``semeval-pairs-dev.jsonl``; each threshold picked on
the same data by the rule the CV uses. The file records the command, the data hashes, the scikit-learn version, the
in-sample scores and — from ``--cv-report`` — the grouped cross-validated scores, which are
the honest ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sklearn  # noqa: E402
import stories_dev as sd  # noqa: E402

from etl.config import StoryConfig  # noqa: E402
from etl.stories.model import MODEL_FILE  # noqa: E402

THRESHOLDS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def write_model(parts: dict[str, tuple], cfg: StoryConfig, out: Path, command: str, rep: dict | None,
                c: float = 1.0, min_precision: float = 0.95, pairs: list | None = None,
                pair_emb: object = None) -> dict:
    """Fits the models on every article of ``parts`` (set name → (docs, items); and the
    sparse one on every clear pair) and writes the JSON the package loads."""
    models, sweep = sd.fit_models(list(parts.values()), cfg, THRESHOLDS, c=c, min_precision=min_precision,
                                  pairs=pairs or [], pair_emb=pair_emb)  # type: ignore[arg-type]
    trained_on = list(parts) + (["pairs"] if pairs else [])
    in_sample = {kind: {name: {k: round(v, 4) for k, v in r.items() if isinstance(v, float)}
                        for name, r in zip(trained_on if kind != "sparse" else ["pairs"], res, strict=True)}
                 for kind, res in ((k, sweep[k][models[k]["threshold"]]) for k in models if sweep.get(k))}
    cv = None
    if rep is not None:
        cv = {"folds": rep["config"]["folds"], "embedding": rep["config"]["embedding"],
              "merge": rep["config"].get("merge", True),
              "train_sets": rep["config"].get("train_sets"), "train_pairs": rep["config"].get("train_pairs"),
              "sparse": rep["config"].get("sparse"), "stream_rounds": rep["config"].get("stream_rounds"),
              "reach": {k: rep["config"].get(k) for k in ("reach_days", "reach_max_stories", "reach_probability",
                                                          "reach_train")},
              **{n: {k: round(v, 4) for k, v in s["ours_cv"].items()} for n, s in rep["sets"].items()},
              "pairs": {lp: {k: round(v, 4) for k, v in r["ours_cv"].items()} for lp, r in rep["pairs"].items()},
              "best_baseline": {n: {"threshold": s["best_baseline_fold_streams"],
                                    **{k: round(v, 4) for k, v in
                                       s["baseline_fold_streams"][str(s["best_baseline_fold_streams"])].items()}}
                                for n, s in rep["sets"].items()}}
    doc = {
        "version": datetime.now(UTC).strftime("%Y%m%d") + "-lr3",
        "command": command,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sklearn": sklearn.__version__,
        "trained_on": [sd.SETS.get(n, sd.PAIRS) for n in trained_on],
        "data_sha256": {sd.SETS.get(n, n): sd.data_hash(n) for n in [*sd.SETS, sd.PAIRS]},
        "cv_scores": cv,
        "in_sample_scores": in_sample,
        "features": list(models["embedding"]["features"]),
        "models": models,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return doc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cv-report", type=Path, help="JSON written by eval_stories.py --json")
    ap.add_argument("--c", type=float, default=1.0)
    ap.add_argument("--min-precision", type=float, default=0.95)
    ap.add_argument("--out", type=Path, default=ROOT / "etl" / "stories" / MODEL_FILE)
    ap.add_argument("--train-sets", default="ecbplus,gvc", help="the stream sets the main models are fitted on")
    args = ap.parse_args()
    cfg = StoryConfig()
    parts = {}
    for name in args.train_sets.split(","):
        docs = sd.load(name)
        parts[name] = (docs, sd.items(docs, cfg, sd.embed(docs, cfg)))
    pairs = sd.load_pairs()
    command = ("bench/train_stories.py" + (f" --c {args.c}" if args.c != 1.0 else "")
               + (f" --min-precision {args.min_precision}" if args.min_precision != 0.95 else ""))
    rep = json.loads(args.cv_report.read_text()) if args.cv_report else None
    doc = write_model(parts, cfg, args.out, command, rep, args.c, args.min_precision, pairs,
                      sd.pair_embeddings(pairs, cfg))
    print(json.dumps({k: doc[k] for k in ("version", "cv_scores", "in_sample_scores")}, indent=1))
    print({k: m["threshold"] for k, m in doc["models"].items()})


if __name__ == "__main__":
    main()
