"""Story clustering on the two dev sets, honestly: grouped cross-validation of the learned
join decision beside the TF-IDF baseline, in one invocation.

    .venv/bin/python bench/eval_stories.py [--folds 5] [--no-embedding] [--json out.json]

For each set (``ecbplus-dev.jsonl``: folds by ECB+ topic; ``gvc-train.jsonl``: folds by GVC
incident), with the datasets' own dates (see ``bench/stories_dev.py``):

* **baseline** — the TF-IDF single pass (``stories_dev.baseline``), its threshold swept, on the
  whole set and on the same per-fold streams as ours (the best threshold is chosen *on the
  scored data*: an optimistic baseline);
* **ours** — for each fold k, both models (with/without the embedding) are fitted on the
  other folds of *both* sets, their thresholds picked on those other folds, and the fold's
  articles are placed as their own stream by the production story engine
  (``etl.stories.engine`` on a memory repository: near-duplicates, attribution, the join
  decision, merges); the folds' stories are pooled and scored against the gold events;
* B³ and pairwise P/R/F1, and the error listing (splits, merges) of ours.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import stories_dev as sd  # noqa: E402

from etl.config import StoryConfig  # noqa: E402
from etl.stories import model  # noqa: E402

BASELINE_TH = [round(0.05 * k, 2) for k in range(1, 11)]
OURS_TH = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
# (reach days, join bar) candidates for --select-reach; (0, ·) is no reach at all
REACH_GRID = [(0.0, 1.0), (30.0, 0.6), (30.0, 0.75), (30.0, 0.9), (90.0, 0.6), (90.0, 0.75), (90.0, 0.9),
              (180.0, 0.6), (180.0, 0.75), (180.0, 0.9)]


def select_reach(parts: list, cfg: StoryConfig, jm: model.JoinModels, min_precision: float) -> StoryConfig:
    """The reach settings that cluster the *training* parts best (mean B³ F1 over them, among
    the settings with B³ precision ≥ ``min_precision`` on each, when there is one): chosen
    without looking at the scored fold. The model does not depend on them (it is trained on
    the window's candidates)."""
    results = {}
    for days, bar in REACH_GRID:
        c = replace(cfg, reach_days=days, reach_probability=bar)
        results[(days, bar)] = [sd.scores(sd.ours(docs, its if cfg.use_embedding else
                                                  [replace(it, embedding=None) for it in its], c, jm),
                                          {d.doc_id: d.gold for d in docs}) for docs, its in parts]
    ok = [g for g, res in results.items() if all(r["b3_p"] >= min_precision for r in res)]
    best = max(ok or list(results), key=lambda g: (sum(r["b3_f1"] for r in results[g]) / len(parts), -g[0]))
    return replace(cfg, reach_days=best[0], reach_probability=best[1])


def pooled(preds: list[dict[str, int]]) -> dict[str, str]:
    return {doc: f"{k}:{sid}" for k, pred in enumerate(preds) for doc, sid in pred.items()}


def pair_report(pairs: list, pred: list[int], emb) -> dict:  # noqa: ANN001
    """Per language pair and overall: ours (cross-validated), the encoder's cosine alone at its
    best cut on the scored pairs (optimistic), at the shipped 0.6, and TF-IDF at its best cut."""
    gold = [p.label for p in pairs]
    cos, tfidf = sd.pair_cosines(pairs, emb), sd.pair_tfidf(pairs)
    out = {}
    groups = {"all": list(range(len(pairs)))}
    for lp in sorted({p.langs for p in pairs}):
        groups[lp] = [i for i, p in enumerate(pairs) if p.langs == lp]
    for name, ix in groups.items():
        g = [gold[i] for i in ix]
        enc_cut, enc = sd.best_cut([cos[i] for i in ix], g)
        tf_cut, tf = sd.best_cut([tfidf[i] for i in ix], g)
        out[name] = {"ours_cv": sd.pair_scores([pred[i] for i in ix], g),
                     "encoder_best": {"cut": enc_cut, **enc},
                     "encoder_0.6": sd.pair_scores([int(cos[i] >= 0.6) for i in ix], g),
                     "tfidf_best": {"cut": tf_cut, **tf}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--no-embedding", action="store_true")
    ap.add_argument("--c", type=float, default=1.0, help="inverse regularization of the logistic regression")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--features", default=",".join(sd.DEFAULT_FEATURES), help="comma-separated subset of FEATURES")
    ap.add_argument("--min-precision", type=float, default=0.95,
                    help="thresholds are picked among those reaching this B3 precision on every training part")
    ap.add_argument("--reach-days", type=float, default=StoryConfig.reach_days,
                    help="the long reach (days; 0: off): older stories sharing a rare name stay candidates")
    ap.add_argument("--reach-max-stories", type=int, default=StoryConfig.reach_max_stories,
                    help="a name is rare when at most this many stories of the window and the reach hold it")
    ap.add_argument("--reach-probability", type=float, default=StoryConfig.reach_probability,
                    help="join bar for a story found by the long reach")
    ap.add_argument("--reach-train", action="store_true",
                    help="training rows from the long reach's candidates too (default: the window's only)")
    ap.add_argument("--select-reach", action="store_true",
                    help="pick the reach's days and join bar per fold on the training folds (nested), "
                         f"from {REACH_GRID}, instead of using the settings")
    ap.add_argument("--no-merge", action="store_true", help="do not merge converged stories")
    ap.add_argument("--train-sets", default="ecbplus,gvc",
                    help="the stream sets whose training folds fit the model (all are scored)")
    ap.add_argument("--no-train-pairs", action="store_true",
                    help="fit on the stream sets only (default: the SemEval pairs of the training folds too)")
    ap.add_argument("--no-sparse", action="store_true",
                    help="no sparse model: the pairs (unless --no-train-pairs) join the main model's fit")
    ap.add_argument("--stream-rounds", type=int, default=sd.STREAM_ROUNDS,
                    help="refit on the engine's own decisions on the training streams this many times")
    ap.add_argument("--pairs-weight", type=float, default=sd.PAIRS_WEIGHT,
                    help="the pairs' total weight in the fit, against 1 for each stream set")
    ap.add_argument("--write-model", action="store_true",
                    help="then fit on every article and write etl/stories/join_model.json with these CV scores")
    args = ap.parse_args()
    sd.MERGE = not args.no_merge
    sd.PAIRS_WEIGHT = args.pairs_weight
    sd.STREAM_ROUNDS = args.stream_rounds
    sd.SPARSE = not args.no_sparse
    cfg = StoryConfig(use_embedding=not args.no_embedding, reach_days=args.reach_days,
                      reach_max_stories=args.reach_max_stories, reach_probability=args.reach_probability)
    sd.REACH_TRAIN = args.reach_train
    t0 = time.process_time()
    sets = {}
    for name in sd.SETS:
        docs = sd.load(name)
        emb = sd.embed(docs, cfg) if cfg.use_embedding else None
        sets[name] = (docs, sd.items(docs, cfg, emb), sd.folds(docs, args.folds))
    stress = {}
    for name in sd.STRESS:  # scored with each fold's model on the fold's MEANTIME articles
        docs = sd.load(name)
        emb = sd.embed(docs, cfg) if cfg.use_embedding else None
        stress[name] = (docs, sd.items(docs, cfg, emb), sets["meantime"][2])
    pairs = sd.load_pairs()
    pair_emb = sd.pair_embeddings(pairs, cfg) if cfg.use_embedding else None
    pair_fold = [g % args.folds for g in sd.pair_groups(pairs)]
    pair_pred: list[int] = [0] * len(pairs)
    report: dict = {"config": {"folds": args.folds, "embedding": cfg.use_embedding, "c": args.c,
                               "features": args.features.split(","), "min_precision": args.min_precision,
                               "merge": sd.MERGE, "train_pairs": not args.no_train_pairs,
                               "pairs_weight": sd.PAIRS_WEIGHT, "train_sets": args.train_sets.split(","), "stream_rounds": sd.STREAM_ROUNDS, "sparse": sd.SPARSE,
                               "window_hours": cfg.window_hours, "reach_days": cfg.reach_days,
                               "reach_max_stories": cfg.reach_max_stories,
                               "reach_probability": cfg.reach_probability, "reach_train": sd.REACH_TRAIN},
                    "data_sha256": {n: sd.data_hash(n) for n in [*sd.SETS, sd.PAIRS]}, "sets": {}}
    # ours: grouped CV, training on the other folds of both sets
    cv_preds: dict[str, list[dict[str, int]]] = {n: [] for n in sets}
    chosen = []
    sparse_chosen: list[float | None] = []
    reach_chosen: list[tuple[float, float]] = []
    for k in range(args.folds):
        parts = [sd.subset(docs, its, fs[k], inside=False) for name, (docs, its, fs) in sets.items()
                 if name in args.train_sets.split(",")]
        kind = "embedding" if cfg.use_embedding else "lexical"
        train = [i for i, f in enumerate(pair_fold) if f != k] if not args.no_train_pairs else []
        models, _sweep = sd.fit_models(parts, cfg, OURS_TH, c=args.c, names=args.features.split(","),
                                       kinds=[kind], min_precision=args.min_precision,
                                       pairs=[pairs[i] for i in train],
                                       pair_emb=pair_emb[train] if pair_emb is not None and train else None)
        jm = model.parse_models({"version": f"cv-{k}", "models": models})
        chosen.append(models[kind]["threshold"])
        sparse_chosen.append(models["sparse"]["threshold"] if "sparse" in models else None)
        fold_cfg = select_reach(parts, cfg, jm, args.min_precision) if args.select_reach else cfg
        reach_chosen.append((fold_cfg.reach_days, fold_cfg.reach_probability))
        for name, (docs, its, fs) in sets.items():
            tdocs, tits = sd.subset(docs, its, fs[k], inside=True)
            if not cfg.use_embedding:
                tits = [replace(it, embedding=None) for it in tits]
            cv_preds[name].append(sd.ours(tdocs, tits, fold_cfg, jm))
        for name, (docs, its, fs) in stress.items():
            tdocs, tits = sd.subset(docs, its, fs[k], inside=True)
            if not cfg.use_embedding:
                tits = [replace(it, embedding=None) for it in tits]
            cv_preds.setdefault(name, []).append(sd.ours(tdocs, tits, fold_cfg, jm))
        scored = [i for i, f in enumerate(pair_fold) if f == k]
        for i, d in zip(scored, sd.pair_decisions([pairs[i] for i in scored], fold_cfg, jm,
                                                  pair_emb[scored] if pair_emb is not None else None), strict=True):
            pair_pred[i] = d
    for name, (docs, _its, fs) in {**sets, **stress}.items():
        gold = {d.doc_id: d.gold for d in docs}
        ours = pooled(cv_preds[name])
        base_full = sd.baseline(docs, BASELINE_TH, cfg.window_hours)
        base_folds: dict[float, list[dict[str, int]]] = {th: [] for th in BASELINE_TH}
        for k in range(args.folds):
            tdocs = [d for d in docs if d.group in fs[k]]
            for th, pred in sd.baseline(tdocs, BASELINE_TH, cfg.window_hours, fit_on=docs).items():
                base_folds[th].append(pred)
        full = {th: sd.scores(p, gold) for th, p in base_full.items()}
        per_fold = {th: sd.scores(pooled(ps), gold) for th, ps in base_folds.items()}
        report["sets"][name] = {
            "articles": len(docs), "events": len({d.gold for d in docs}),
            "ours_cv": sd.scores(ours, gold), "thresholds_chosen": chosen, "sparse_thresholds_chosen": sparse_chosen,
            "reach_chosen": reach_chosen, "reach_selected_per_fold": args.select_reach,
            "window_ceiling": sd.scores(sd.window_ceiling(docs, cfg.window_hours), gold),
            "baseline_fold_streams": {str(th): s for th, s in per_fold.items()},
            "baseline_whole_set": {str(th): s for th, s in full.items()},
            "best_baseline_fold_streams": max(per_fold.items(), key=lambda kv: kv[1]["b3_f1"])[0],
            "best_baseline_whole_set": max(full.items(), key=lambda kv: kv[1]["b3_f1"])[0],
            "errors": sd.errors(ours, docs)}
        report["sets"][name]["stress"] = name in stress
        if name.startswith("meantime"):
            report["sets"][name]["versions_together"] = sd.versions_together(ours, docs)
            report["sets"][name]["baseline_versions_together"] = sd.versions_together(
                pooled(base_folds[report["sets"][name]["best_baseline_fold_streams"]]), docs)
            report["sets"][name]["language_pairs"] = sd.language_pair_errors(ours, docs)
    report["pairs"] = pair_report(pairs, pair_pred, pair_emb)
    report["cpu_s"] = round(time.process_time() - t0, 1)
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    if args.write_model:
        import train_stories

        full_cfg = StoryConfig()  # every model is fitted (embeddings on), whatever this run scored
        parts = {name: (docs, sd.items(docs, full_cfg, sd.embed(docs, full_cfg)))
                 for name, (docs, _its, _fs) in sets.items() if name in args.train_sets.split(",")}
        command = "bench/eval_stories.py --write-model" + "".join(f" {a}" for a in sys.argv[1:] if a != "--write-model")
        doc = train_stories.write_model(parts, full_cfg, ROOT / "etl" / "stories" / model.MODEL_FILE, command,
                                        report, args.c, args.min_precision,
                                        pairs=[] if args.no_train_pairs else pairs,
                                        pair_emb=None if args.no_train_pairs else sd.pair_embeddings(pairs, full_cfg))
        print("wrote etl/stories/join_model.json", doc["version"],
              {k: m["threshold"] for k, m in doc["models"].items()}, json.dumps(doc["in_sample_scores"]))


def print_table(report: dict) -> None:
    def row(label: str, s: dict) -> str:
        return (f"  {label:<34} B3 P {s['b3_p']:.3f} R {s['b3_r']:.3f} F1 {s['b3_f1']:.3f} | "
                f"pairwise P {s['pair_p']:.3f} R {s['pair_r']:.3f} F1 {s['pair_f1']:.3f} | {s['stories']} stories")
    for name, r in report["sets"].items():
        print(f"{name}: {r['articles']} articles, {r['events']} events"
              + (" (stress line, synthetic dates: scored, never trained on)" if r.get("stress") else ""))
        print(row(f"ours, {report['config']['folds']}-fold grouped CV", r["ours_cv"]))
        bf, bw = r["best_baseline_fold_streams"], r["best_baseline_whole_set"]
        print(row(f"baseline th {bf} (fold streams, best)", r["baseline_fold_streams"][str(bf)]))
        print(row(f"baseline th {bw} (whole set, best)", r["baseline_whole_set"][str(bw)]))
        print(row("ceiling of a ±window stream", r["window_ceiling"]))
        sweep = "  ".join(f"{th}:{s['b3_p']:.2f}/{s['b3_r']:.2f}/{s['b3_f1']:.3f}"
                          for th, s in r["baseline_fold_streams"].items())
        print(f"  baseline sweep (fold streams, P/R/F1): {sweep}")
        if "versions_together" in r:
            print(f"  all four versions in one story: ours {r['versions_together']:.3f}, "
                  f"baseline {r['baseline_versions_together']:.3f}; pairwise errors by language pair:")
            print("    " + "  ".join(f"{lp} split {v['split']}/{v['same_pairs']} merged {v['merged']}"
                                     for lp, v in r["language_pairs"].items()))
        e = r["errors"]
        print(f"  ours: {e['splits']} events split, {e['merges']} stories merging events; thresholds {r['thresholds_chosen']}"
              f"; reach (days, bar) {r['reach_chosen']}{' picked per fold' if r['reach_selected_per_fold'] else ''}")
        for s in e["split_examples"][:6]:
            print(f"    split {s['event']} ({s['articles']} articles → {s['stories']} stories): "
                  + " || ".join(p[0] for p in s["parts"]))
        for m in e["merge_examples"][:6]:
            print(f"    merge ({m['story_articles']} articles): "
                  + " || ".join(f"{g}: {v[0]}" for g, v in m["events"].items()))
    print("semeval pairs (clear ones; each pair alone): pairwise P/R/F1")
    for lp, r in report["pairs"].items():
        o, e, e6, t = r["ours_cv"], r["encoder_best"], r["encoder_0.6"], r["tfidf_best"]
        print(f"  {lp:<6} {o['same']:>3} same {o['different']:>3} diff | ours {o['p']:.2f}/{o['r']:.2f}/{o['f1']:.3f}"
              f" | encoder best cut {e['cut']:.2f}: {e['p']:.2f}/{e['r']:.2f}/{e['f1']:.3f}"
              f" | encoder 0.6: {e6['f1']:.3f} | tfidf best {t['cut']:.2f}: {t['f1']:.3f}")
    print(f"cpu {report['cpu_s']} s")


if __name__ == "__main__":
    main()
