"""Side-by-side test scores of several evaluations (``python -m spacy_sru_ner
evaluate ... --output X.json``) as one markdown table: a row per model, a
column per corpus (P / R / F, or F only), and the macro-F over the corpora.

    python scripts/compare_evals.py "round 0=metrics/labels/gene_shared.json" \\
        "bc2gm weight 2=metrics/ablations/bc2gm_weight2.json" [--f-only] [--output table.md]

Each argument is ``TITLE=PATH`` (or a bare PATH, titled by its file name). The
columns are the corpora of the first evaluation, in its order; a corpus that a
later evaluation lacks is "–".
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple


def _parse(arg: str) -> Tuple[str, Path]:
    title, sep, path = arg.rpartition("=")
    return (title, Path(path)) if sep else (Path(arg).stem, Path(arg))


def _cell(score: Optional[Dict[str, float]], f_only: bool) -> str:
    if not score:
        return "–"
    if f_only:
        return f"{100 * score['f']:.1f}"
    return f"{100 * score['p']:.1f} / {100 * score['r']:.1f} / {100 * score['f']:.1f}"


def table(runs: List[Tuple[str, Path]], f_only: bool = False) -> str:
    """The markdown table of ``runs`` ((title, evaluation JSON) pairs)."""
    if not runs:
        raise ValueError("compare_evals: give at least one TITLE=PATH")
    loaded = []
    for title, path in runs:
        if not path.exists():
            raise FileNotFoundError(f"compare_evals: no evaluation at {path} (row {title!r})")
        data = json.loads(path.read_text(encoding="utf8"))
        if "corpora" not in data:
            raise ValueError(f"compare_evals: {path} has no 'corpora' (not an `evaluate` output)")
        loaded.append((title, data))
    corpora = list(loaded[0][1]["corpora"])
    header = "| model | " + " | ".join(corpora) + " | macro-F |"
    lines = [header, "|" + "---|" * (len(corpora) + 2)]
    for title, data in loaded:
        cells = [_cell(data["corpora"].get(name), f_only) for name in corpora]
        scores = [data["corpora"][name]["f"] for name in corpora if name in data["corpora"]]
        macro = f"**{100 * sum(scores) / len(scores):.1f}**" if len(scores) == len(corpora) else "–"
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {macro} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="TITLE=PATH of an `evaluate` JSON")
    parser.add_argument("--f-only", action="store_true", help="F per corpus instead of P / R / F")
    parser.add_argument("--output", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    text = table([_parse(arg) for arg in args.runs], f_only=args.f_only)
    print(text, end="")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf8")


if __name__ == "__main__":
    main()
