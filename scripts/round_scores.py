"""Score the pipeline at the end of every train-rounds round on some corpora, per corpus.

    python scripts/round_scores.py training/rounds/multi corpus/bc5cdr/dev.spacy corpus/bc2gm/dev.spacy \
        --output metrics/rounds/multi_round_dev.json

A multi-corpus model's dev score is one micro F over all dev mentions, dominated by the
corpora with the most mentions; this shows each corpus's F after each round
(``rounds/NNN/model-last``), with the round's updates and learning-rate scale, as JSON
and as a markdown table (printed, and next to the JSON as ``.md``).
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence


def round_scores(output_dir: Path, paths: Sequence[Path]) -> List[Dict[str, Any]]:
    """Per recorded round: its updates, learning-rate scale and the test/dev F per corpus."""
    import spacy
    from spacy_sru_ner.evaluate import evaluate_corpora, model_label_settings
    from spacy_sru_ner.resume import RoundsError, round_models

    try:
        recorded = round_models(output_dir)
    except RoundsError as err:
        raise SystemExit(str(err)) from None
    rows = []
    for record, model in recorded:
        if not model.is_dir():
            print(f"⚠ round {record['round']}: no {model}, skipped")
            continue
        nlp = spacy.load(model)
        maps, prefix, _ = model_label_settings(nlp)
        results = evaluate_corpora(nlp, list(paths), corpus_label_maps=maps, prefix_labels=prefix)
        rows.append({
            "round": record["round"], "end_step": record["end_step"], "lr_scale": record.get("lr_scale", 1.0),
            "f": {name: corpus["f"] for name, corpus in results["corpora"].items()},
            "macro_f": results["macro"]["f"], "micro_f": results["micro"]["f"],
        })
        print(f"✔ round {record['round']} (update {record['end_step']:,}): macro F {100 * results['macro']['f']:.1f}")
    return rows


def markdown(rows: List[Dict[str, Any]]) -> str:
    corpora = sorted({name for row in rows for name in row["f"]})
    lines = ["| round | update | learning rate (× config's) | " + " | ".join(corpora) + " | macro-F | micro-F |",
             "|---" * (len(corpora) + 5) + "|"]
    for row in rows:
        cells = [f"{100 * row['f'][c]:.1f}" if c in row["f"] else "" for c in corpora]
        lines.append(f"| {row['round']} | {row['end_step']:,} | {row['lr_scale']:g} | " + " | ".join(cells)
                     + f" | {100 * row['macro_f']:.1f} | {100 * row['micro_f']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", type=Path, help="a train-rounds output folder (rounds.json, rounds/NNN)")
    parser.add_argument("paths", type=Path, nargs="+", help=".spacy files to score, one corpus each")
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write (and .md next to it)")
    args = parser.parse_args(argv)
    rows = round_scores(args.output_dir, args.paths)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf8")
    table = markdown(rows)
    args.output.with_suffix(".md").write_text(table, encoding="utf8")
    print(table)


if __name__ == "__main__":
    main()
