"""Evaluate every trained model of the project, per corpus and per label.

    python scripts/evaluate.py training metrics [--only sru_ner|baselines|all] [--gpu-id -1]
    python scripts/evaluate.py training/rounds metrics/rounds --rounds [--corpus-dir corpus] [--force]

Finds the models trained by scripts/train.py (``project_model.json`` in
TRAINING/{single/*,multi,multi_transformer,nested,transformer,baselines/ner/*,baselines/spancat/*}), scores each on its test files with spacy_sru_ner's per-corpus
evaluation (each corpus only on the labels it annotates; the label maps of a
multi-corpus model's training config are applied), and writes

* ``METRICS/<model>.json`` (e.g. ``single_bc5cdr.json``, ``multi.json``,
  ``baselines_ner_bc5cdr.json``): micro and per-label P/R/F per corpus;
* ``METRICS/summary.json`` and ``METRICS/summary.md``: F1 per model and corpus,
  over all metrics files present.

A model whose metrics file is newer than the model is not scored again
(``--force`` scores it anyway), so the command can run as models finish.

With ``--rounds``, the models are those of ``train-rounds`` (``rounds.json`` in
TRAINING/<name>: ``multi``, ``single_<corpus>``, ``ner_<corpus>``, ``spancat_<corpus>``,
``heldout_<corpus>`` (scored on the corpus it was trained without), or an sru_ner
model named after its corpus, e.g. ``genia_fm``), each scored from its
``model-best`` on the test sets of its corpora, and the summary adds
one row per kind of single-corpus model: its models' F per corpus and their
macro-F, to set against the multi-corpus model's.

Baseline ``ner`` models write ``doc.ents``: their entities are copied to
``doc.spans["sru_ner"]`` before scoring, so every model is scored the same way.
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

INFO_FILE = "project_model.json"
SPANS_KEY = "sru_ner"
ENTS_TO_SPANS = "project_ents_to_spans"
# where scripts/train.py puts its models (other folders, e.g. training/smoke, are ignored)
MODEL_FOLDERS = ("single/*", "multi", "multi_transformer", "nested", "transformer", "baselines/ner/*", "baselines/spancat/*")


def find_models(training_dir: Path, only: str = "all") -> List[Dict[str, Any]]:
    """The ``project_model.json`` records under ``training_dir`` (sorted by folder)."""
    models = []
    info_paths = sorted(p for pattern in MODEL_FOLDERS for p in training_dir.glob(f"{pattern}/{INFO_FILE}"))
    for info_path in info_paths:
        info = json.loads(info_path.read_text(encoding="utf8"))
        is_baseline = str(info.get("kind", "")).startswith("baseline")
        if only == "baselines" and not is_baseline or only == "sru_ner" and is_baseline:
            continue
        info["name"] = "_".join(info_path.parent.relative_to(training_dir).parts)
        models.append(info)
    return models


ROUNDS_MULTI_CORPORA = ("bc5cdr", "bc2gm", "jnlpba", "linnaeus", "ncbi_disease")


ROUND_KINDS = ("single", "ner", "spancat", "heldout")


def _round_kind(name: str):
    """``(kind, corpus)`` of a train-rounds folder: ``multi`` -> ("multi", None),
    ``single_bc2gm`` -> ("single", "bc2gm"), ``heldout_bc2gm`` (scored on the corpus
    it was trained without), ``genia_fm`` -> ("sru_ner", "genia_fm")."""
    if name == "multi":
        return "multi", None
    kind, _, corpus = name.partition("_")
    if kind in ROUND_KINDS and corpus:
        return kind, corpus
    return "sru_ner", name


def find_round_models(rounds_dir: Path, corpus_dir: Path) -> List[Dict[str, Any]]:
    """The ``train-rounds`` outputs under ``rounds_dir`` as evaluate_model records."""
    models = []
    for state_path in sorted(rounds_dir.glob("*/rounds.json")):
        folder = state_path.parent
        state = json.loads(state_path.read_text(encoding="utf8"))
        kind, corpus = _round_kind(folder.name)
        corpora = [corpus] if corpus else list(ROUNDS_MULTI_CORPORA)
        tests = [str(corpus_dir / c / "test.spacy") for c in corpora]
        last = state["rounds"][-1] if state["rounds"] else {}
        models.append({"name": folder.name, "kind": kind, "corpus": corpora, "model": str(folder / "model-best"),
                       "tests": tests, "max_steps": last.get("end_step"), "best_step": state.get("best_step"),
                       "converged": state.get("converged")})
    return models


def _register_ents_to_spans() -> None:
    from spacy.language import Language
    from spacy.tokens import SpanGroup

    if ENTS_TO_SPANS in Language.factories:
        return

    @Language.component(ENTS_TO_SPANS)
    def ents_to_spans(doc):
        doc.spans[SPANS_KEY] = SpanGroup(doc, name=SPANS_KEY, spans=list(doc.ents))
        return doc


def evaluate_model(info: Dict[str, Any], metrics_dir: Path, *, gpu_id: int = -1) -> Optional[Dict[str, Any]]:
    import spacy
    import srsly
    from spacy_sru_ner.evaluate import evaluate_corpora, format_results, model_label_settings

    tests = [t for t in info.get("tests", []) if Path(t).is_file()]
    if not tests:
        print(f"⚠ skipping {info['name']}: no test file (looked for {info.get('tests')})")
        return None
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(info["model"])
    if SPANS_KEY not in {getattr(pipe, "key", None) for _, pipe in nlp.pipeline} and "ner" in nlp.pipe_names:
        _register_ents_to_spans()
        nlp.add_pipe(ENTS_TO_SPANS, last=True)
    maps, prefix, _ = model_label_settings(nlp)
    results = evaluate_corpora(
        nlp, tests, spans_key=SPANS_KEY, corpus_label_maps=maps, prefix_labels=prefix
    )
    results = {"model": info["model"], "kind": info.get("kind"), "trained_on": info.get("corpus"),
               "max_steps": info.get("max_steps"),
               **{k: info[k] for k in ("best_step", "converged") if k in info}, **results}
    print(f"\n===== {info['name']} ({info['model']})")
    print(format_results(results))
    for warning in results["warnings"]:
        print(f"⚠ {warning}")
    metrics_dir.mkdir(parents=True, exist_ok=True)
    out = metrics_dir / f"{info['name']}.json"
    srsly.write_json(out, results)
    print(f"✔ Saved {out}")
    return results


def _up_to_date(info: Dict[str, Any], metrics_dir: Path) -> bool:
    """Whether ``METRICS/<name>.json`` is newer than the model and its rounds.json (whose
    updates and convergence the metrics record), so that it is not scored again."""
    out, model = metrics_dir / f"{info['name']}.json", Path(info["model"])
    if not out.is_file() or not model.exists():
        return False
    state = model.parent / "rounds.json"
    newest = max(p.stat().st_mtime for p in [model, *model.rglob("*"), *([state] if state.is_file() else [])])
    if out.stat().st_mtime <= newest:
        return False
    print(f"ℹ {info['name']}: {out} is newer than {model}; not scored again (--force to score it)")
    return True


def write_summary(metrics_dir: Path) -> Dict[str, Any]:
    """F1 (%) per model and corpus over every ``METRICS/*.json`` with results."""
    rows: Dict[str, Dict[str, float]] = {}
    for path in sorted(metrics_dir.glob("*.json")):
        if path.name == "summary.json":
            continue
        data = json.loads(path.read_text(encoding="utf8"))
        if "corpora" not in data:
            continue
        rows[path.stem] = {name: round(100 * c["f"], 2) for name, c in data["corpora"].items()}
        rows[path.stem]["(macro)"] = round(100 * data["macro"]["f"], 2)
    # train-rounds single-corpus models (single_<corpus>, ner_<corpus>): one row per kind
    for kind in ("single", "ner"):
        members = {name: r for name, r in rows.items() if name.startswith(f"{kind}_") and len(r) == 2}
        if members:
            combined = {c: f for r in members.values() for c, f in r.items() if c != "(macro)"}
            combined["(macro)"] = round(sum(combined.values()) / len(combined), 2)
            rows[f"{kind} (one model per corpus)"] = combined
    corpora = sorted({c for r in rows.values() for c in r if c != "(macro)"}) + ["(macro)"]
    lines = ["| model | " + " | ".join(corpora) + " |", "|---" * (len(corpora) + 1) + "|"]
    for model, scores in rows.items():
        lines.append(f"| {model} | " + " | ".join(f"{scores[c]:.2f}" if c in scores else "" for c in corpora) + " |")
    table = "\n".join(lines) + "\n"
    (metrics_dir / "summary.md").write_text("F1 (%) on the test sets\n\n" + table, encoding="utf8")
    summary = {"f1": rows}
    (metrics_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    print("\nF1 (%) on the test sets\n" + table)
    return summary


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("training_dir", type=Path)
    parser.add_argument("metrics_dir", type=Path)
    parser.add_argument("--only", choices=("all", "sru_ner", "baselines"), default="all")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--rounds", action="store_true", help="evaluate the train-rounds models in TRAINING_DIR")
    parser.add_argument("--corpus-dir", type=Path, default=Path("corpus"), help="--rounds: converted corpora")
    parser.add_argument("--force", action="store_true", help="also evaluate models whose metrics file is newer than the model")
    args = parser.parse_args(argv)
    if args.rounds:
        models = find_round_models(args.training_dir, args.corpus_dir) if args.training_dir.is_dir() else []
    else:
        models = find_models(args.training_dir, args.only) if args.training_dir.is_dir() else []
    if not models:
        print(f"⚠ no trained model found under {args.training_dir} ({args.only}): nothing evaluated")
    if not args.force:
        models = [m for m in models if not _up_to_date(m, args.metrics_dir)]
    done = [m for m in models if evaluate_model(m, args.metrics_dir, gpu_id=args.gpu_id) is not None]
    print(f"✔ evaluated {len(done)} model(s) into {args.metrics_dir}")
    if args.metrics_dir.is_dir():
        write_summary(args.metrics_dir)


if __name__ == "__main__":
    main()
