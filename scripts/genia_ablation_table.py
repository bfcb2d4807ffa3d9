"""One-change ablations of the GENIA ``sru_ner`` model as one markdown table.

Each argument is ``TITLE=MODEL``, a trained pipeline (for a ``train-rounds`` run,
``<run>/rounds/<nnn>/model-last`` is the model after round ``nnn``: its update and
training seconds are read from ``<run>/rounds.json``). Every model is scored on the
dev and test splits twice, with every label above the threshold and with one label
per span (``max_positive`` 0 and 1), and the scores are written as JSON to
``--output-dir`` (``<slug>.<split>.<all|one>.json``) next to ``table.md``:

    python scripts/genia_ablation_table.py \
        "baseline=training/rounds_avg/genia_fm/rounds/001/model-last" \
        "positive_weight 3=training/genia_ablations/positive_weight_3/rounds/001/model-last" \
        --dev corpus/genia_fm/dev.spacy --test corpus/genia_fm/test.spacy \
        --output-dir metrics/genia_ablations/table
"""
import argparse
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import spacy

from spacy_sru_ner.evaluate import evaluate_corpora, set_max_positive

MODES = (("all", 0), ("one", 1))


def slug(title: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_").lower()


def round_info(model: Path) -> Tuple[Optional[int], Optional[float]]:
    """(update, training seconds) at the end of the round that saved ``model``;
    for ``<run>/model-best``, the update of the best dev score (seconds unknown)."""
    if model.name == "model-best" and (model.parent / "rounds.json").exists():
        return json.loads((model.parent / "rounds.json").read_text(encoding="utf8")).get("best_step"), None
    match = re.fullmatch(r"\d+", model.parent.name)
    log = model.parent.parent.parent / "rounds.json"
    if model.parent.parent.name != "rounds" or not match or not log.exists():
        return None, None
    for entry in json.loads(log.read_text(encoding="utf8")).get("rounds", []):
        if entry.get("round") == int(model.parent.name):
            return entry.get("end_step"), entry.get("end_train_seconds")
    return None, None


def score(model: Path, splits: Dict[str, Path], out_dir: Path, name: str) -> Dict[str, Dict[str, Any]]:
    nlp = spacy.load(model)
    scores: Dict[str, Dict[str, Any]] = {}
    for mode, max_positive in MODES:
        set_max_positive(nlp, max_positive)
        for split, path in splits.items():
            result = {"model": str(model), "max_positive": max_positive or None, **evaluate_corpora(nlp, [path])}
            (out_dir / f"{name}.{split}.{mode}.json").write_text(json.dumps(result, indent=2), encoding="utf8")
            scores[f"{split}.{mode}"] = result
    return scores


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def table(rows: List[Tuple[str, Path, Dict[str, Dict[str, Any]]]]) -> str:
    first = rows[0][2]["test.one"]
    labels = list(next(iter(first["corpora"].values()))["labels"])
    head = (
        "| model | updates | training s | dev F (every label / one per span) | test P / R / F (one per span) "
        f"| test F (every label) | {' / '.join(labels)} (test F, one per span) |"
    )
    lines = [head, "|" + "---|" * 7]
    for title, model, scores in rows:
        step, seconds = round_info(model)
        test = scores["test.one"]["micro"]
        per_type = next(iter(scores["test.one"]["corpora"].values()))["per_type"]
        lines.append(
            f"| {title} | {f'{step:,}' if step is not None else '–'} | {f'{seconds:,.0f}' if seconds else '–'} "
            f"| {pct(scores['dev.all']['micro']['f'])} / {pct(scores['dev.one']['micro']['f'])} "
            f"| {pct(test['p'])} / {pct(test['r'])} / **{pct(test['f'])}** | {pct(scores['test.all']['micro']['f'])} "
            f"| {' / '.join(pct(per_type[label]['f']) if label in per_type else '–' for label in labels)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="TITLE=MODEL")
    parser.add_argument("--dev", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--output-dir", type=Path, required=True)
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in args.runs:
        title, sep, model = run.partition("=")
        if not sep or not model:
            parser.error(f"{run!r}: expected TITLE=MODEL")
        if not Path(model).exists():
            parser.error(f"{model}: no such pipeline")
        print(f"ℹ {title}: {model}", flush=True)
        rows.append((title, Path(model), score(Path(model), {"dev": args.dev, "test": args.test}, args.output_dir, slug(title))))
    text = table(rows)
    (args.output_dir / "table.md").write_text(text, encoding="utf8")
    print(text)


if __name__ == "__main__":
    main()
