"""Fits the shipped join model (``etl/stories/join_model.json``) on both story dev sets.

    .venv/bin/python bench/eval_stories.py --write-model     # CV scores, then this, in one run
    .venv/bin/python bench/train_stories.py --cv-report /tmp/stories-cv.json   # the same, in two

Both models (with the embedding feature, and the lexical fallback) are fitted on every
article of ``ecbplus-dev.jsonl`` and ``gvc-train.jsonl`` (oracle pass, see
``stories_dev.training_pairs``), each threshold picked on the same data by the rule the CV
uses. The file records the command, the data hashes, the scikit-learn version, the
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


def write_model(parts: list, cfg: StoryConfig, out: Path, command: str, rep: dict | None,
                c: float = 1.0, min_precision: float = 0.95) -> dict:
    """Fits both models on every article of ``parts`` and writes the JSON the package loads."""
    models, sweep = sd.fit_models(parts, cfg, THRESHOLDS, c=c, min_precision=min_precision)
    in_sample = {kind: {name: {k: round(v, 4) for k, v in res[names].items()}
                        for names, name in enumerate(sd.SETS)}
                 for kind, res in ((k, sweep[k][models[k]["threshold"]]) for k in models)}
    cv = None
    if rep is not None:
        cv = {"folds": rep["config"]["folds"], "embedding": rep["config"]["embedding"],
              "merge": rep["config"].get("merge", True),
              "reach": {k: rep["config"].get(k) for k in ("reach_days", "reach_max_stories", "reach_probability",
                                                          "reach_train")},
              **{n: {k: round(v, 4) for k, v in s["ours_cv"].items()} for n, s in rep["sets"].items()},
              "best_baseline": {n: {"threshold": s["best_baseline_fold_streams"],
                                    **{k: round(v, 4) for k, v in
                                       s["baseline_fold_streams"][str(s["best_baseline_fold_streams"])].items()}}
                                for n, s in rep["sets"].items()}}
    doc = {
        "version": datetime.now(UTC).strftime("%Y%m%d") + "-lr1",
        "command": command,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sklearn": sklearn.__version__,
        "data_sha256": {sd.SETS[n]: sd.data_hash(n) for n in sd.SETS},
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
    args = ap.parse_args()
    cfg = StoryConfig()
    parts = []
    for name in sd.SETS:
        docs = sd.load(name)
        parts.append((docs, sd.items(docs, cfg, sd.embed(docs, cfg))))
    command = ("bench/train_stories.py" + (f" --c {args.c}" if args.c != 1.0 else "")
               + (f" --min-precision {args.min_precision}" if args.min_precision != 0.95 else ""))
    rep = json.loads(args.cv_report.read_text()) if args.cv_report else None
    doc = write_model(parts, cfg, args.out, command, rep, args.c, args.min_precision)
    print(json.dumps({k: doc[k] for k in ("version", "cv_scores", "in_sample_scores")}, indent=1))
    print({k: m["threshold"] for k, m in doc["models"].items()})


if __name__ == "__main__":
    main()
