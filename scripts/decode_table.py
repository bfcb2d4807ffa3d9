"""Score multi-corpus models on dev and test with several ``max_positive`` values.

    python scripts/decode_table.py OUTPUT_DIR NAME=MODEL [NAME=MODEL ...]
        [--corpora bc5cdr bc2gm jnlpba linnaeus ncbi_disease] [--corpus-dir corpus]
        [--splits dev test] [--max-positive 1 0] [--rounds] [--force] [--gpu-id -1]

For every model, split and value, runs ``python -m spacy_sru_ner evaluate``'s
scoring (each corpus on its own labels, the label maps and prefixes of the
model's training config) with ``max_positive`` set at decoding time (0: every
label above the threshold; for corpus-prefixed labels the limit holds per
corpus), and writes ``OUTPUT_DIR/<NAME>_<split>_mp<value>.json`` and
``OUTPUT_DIR/summary.md``: F per corpus and the macro-F over corpora. The
decoding setting is meant to be chosen on dev and reported on test.

With ``--rounds``, each MODEL is a ``train-rounds`` folder and stands for the
``model-last`` of each of its rounds, named ``<NAME>_<updates>`` (the round's
end step in its ``rounds.json``): one table of a run's rounds, which can grow
a round at a time. A score file that is already in OUTPUT_DIR is read back
instead of decoding again (``--force`` decodes everything).
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Tuple

from spacy_sru_ner.named_args import named_path


def round_models(name: str, run_dir: Path) -> List[Tuple[str, str]]:
    """``(NAME_<updates>, path)`` for the model-last of each round of a train-rounds folder."""
    from spacy_sru_ner.resume import round_models as recorded_rounds

    models = []
    for record, model in recorded_rounds(run_dir):
        if not model.exists():
            raise ValueError(f"{model}: round {record['round']} of {run_dir} has no model-last")
        models.append((f"{name}_{record['end_step']}", str(model)))
    if not models:
        raise ValueError(f"{run_dir}: no finished round")
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("models", nargs="+", help="NAME=MODEL_PATH")
    parser.add_argument("--corpora", nargs="+", default=["bc5cdr", "bc2gm", "jnlpba", "linnaeus", "ncbi_disease"])
    parser.add_argument("--corpus-dir", type=Path, default=Path("corpus"))
    parser.add_argument("--splits", nargs="+", default=["dev", "test"])
    parser.add_argument("--max-positive", nargs="+", type=int, default=[1, 0])
    parser.add_argument("--rounds", action="store_true", help="MODEL paths are train-rounds folders: one row per round")
    parser.add_argument("--force", action="store_true", help="decode again even where OUTPUT_DIR has the score file")
    parser.add_argument("--gpu-id", type=int, default=-1)
    args = parser.parse_args()

    from spacy_sru_ner.evaluate import evaluate_cli_main

    models: List[Tuple[str, str]] = []
    for item in args.models:
        try:
            name, model_path = named_path(item, what="NAME=MODEL_PATH", title_required=True)
        except ValueError as err:
            parser.error(str(err))
        path = str(model_path)
        if not model_path.exists():
            parser.error(f"{path}: model not found")
        if args.rounds:
            try:
                models.extend(round_models(name, Path(path)))
            except ValueError as err:
                parser.error(str(err))
        else:
            models.append((name, path))
    for split in args.splits:
        for corpus in args.corpora:
            path = args.corpus_dir / corpus / f"{split}.spacy"
            if not path.exists():
                parser.error(f"{path}: file not found")
    args.output.mkdir(parents=True, exist_ok=True)
    rows: List[Dict] = []
    for name, path in models:
        for split in args.splits:
            files = [args.corpus_dir / corpus / f"{split}.spacy" for corpus in args.corpora]
            for value in args.max_positive:
                out = args.output / f"{name}_{split}_mp{value}.json"
                if out.exists() and not args.force:
                    print(f"ℹ {out}: scored before, read back (--force to decode again)")
                    results = json.loads(out.read_text(encoding="utf-8"))
                else:
                    results = evaluate_cli_main(path, files, output=out, max_positive=value, gpu_id=args.gpu_id)
                rows.append({"name": name, "split": split, "max_positive": value, "results": results})
    corpora = list(rows[0]["results"]["corpora"]) if rows else []
    lines = [
        "| model | split | max_positive | " + " | ".join(corpora) + " | macro-F |",
        "|---" * (len(corpora) + 4) + "|",
    ]
    for row in rows:
        scores = row["results"]["corpora"]
        cells = [f"{100 * scores[c]['f']:.1f}" if c in scores else "" for c in corpora]
        value = row["max_positive"] or "none"
        macro = 100 * row["results"]["macro"]["f"]
        lines.append(f"| {row['name']} | {row['split']} | {value} | " + " | ".join(cells) + f" | **{macro:.2f}** |")
    table = "\n".join(lines) + "\n"
    (args.output / "summary.md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
