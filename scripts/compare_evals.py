"""Side-by-side test scores of several evaluations (``python -m spacy_sru_ner
evaluate ... --output X.json``) as one markdown table: a row per model, a
column per corpus (P / R / F, or F only), and the macro-F over the corpora.

    python scripts/compare_evals.py "round 0=metrics/labels/gene_shared.json" \\
        "bc2gm weight 2=metrics/ablations/bc2gm_weight2.json" [--f-only] [--output table.md]

Each argument is ``TITLE=PATH`` (or a bare PATH, titled by its file name);
``TITLE=PATH,PATH,...`` joins the corpora of several evaluations into one row
(e.g. one single-corpus model per corpus). The columns are the corpora of the
first evaluation, in its order; a corpus that a later evaluation lacks is "–".

With ``--per-label`` the table turns around: a row per corpus and label (the
labels each corpus is scored on), a column per evaluation; ``--label-maps
CONFIG`` renames the labels of every evaluation with the config's
``[corpora.train.label_maps]`` (e.g. single-corpus models' ``GENE`` and
``protein`` to the multi-corpus model's ``Gene``).

With ``--nesting``: a row per run and corpus, its test P / R / F and its recall
of gold mentions by where they sit (flat, outer, inside another label's
mention, inside a mention of their own label; the ``errors.nesting`` counts of
``evaluate``).

With ``--seeds``, the commas of ``TITLE=PATH,PATH,...`` separate runs of one model
that differ only in their seed (each an evaluation on the same corpora): a row per
title with every run's macro-F and the mean P / R / F over the runs, with the sample
standard deviation of F. There ``+`` joins the evaluations of one run (one
single-corpus model per corpus: ``TITLE=a0+b0,a1+b1``), and ``--per-corpus`` adds
each corpus's mean F over the runs.
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from spacy_sru_ner.contract import label_prefix, strip_prefix
from spacy_sru_ner.named_args import named_path


def _load(title: str, path: Path) -> Dict:
    """The evaluation at ``path``; a path with commas joins the corpora of several."""
    corpora: Dict[str, Dict] = {}
    for part in str(path).split(","):
        part_path = Path(part)
        if not part_path.exists():
            raise FileNotFoundError(f"compare_evals: no evaluation at {part_path} (row {title!r})")
        data = json.loads(part_path.read_text(encoding="utf8"))
        if "corpora" not in data:
            raise ValueError(f"compare_evals: {part_path} has no 'corpora' (not an `evaluate` output)")
        corpora.update(data["corpora"])
    return {"corpora": corpora}


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
    loaded = [(title, _load(title, path)) for title, path in runs]
    corpora = list(loaded[0][1]["corpora"])
    header = "| model | " + " | ".join(corpora) + " | macro-F |"
    lines = [header, "|" + "---|" * (len(corpora) + 2)]
    for title, data in loaded:
        cells = [_cell(data["corpora"].get(name), f_only) for name in corpora]
        scores = [data["corpora"][name]["f"] for name in corpora if name in data["corpora"]]
        macro = f"**{100 * sum(scores) / len(scores):.1f}**" if len(scores) == len(corpora) else "–"
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {macro} |")
    return "\n".join(lines) + "\n"


def read_label_maps(config_path: Path) -> Dict[str, Dict[str, str]]:
    """``{corpus: {label: new label}}`` from a training config's ``[corpora.train.label_maps]``."""
    from spacy.util import load_config

    config = load_config(config_path, interpolate=False)
    maps = config.get("corpora", {}).get("train", {}).get("label_maps")
    if not maps:
        raise ValueError(f"compare_evals: {config_path} has no [corpora.train.label_maps]")
    return {corpus: dict(table) for corpus, table in maps.items() if isinstance(table, dict)}


def label_table(
    runs: List[Tuple[str, Path]], f_only: bool = False, label_maps: Optional[Dict[str, Dict[str, str]]] = None
) -> str:
    """A row per corpus and label of the first evaluation, a column per run (P / R / F);
    ``label_maps`` ({corpus: {label: new label}}) renames every run's labels first, and a
    corpus-prefixed label of the corpus's own row (``bc2gm$Gene`` on BC2GM) reads as its plain one."""
    if not runs:
        raise ValueError("compare_evals: give at least one TITLE=PATH")
    loaded = [(title, _load(title, path)) for title, path in runs]
    for _, data in loaded:
        for corpus, scores in data["corpora"].items():
            rename = (label_maps or {}).get(corpus, {})
            scores["per_type"] = {
                (strip_prefix(l) if label_prefix(l) == corpus else rename.get(l, l)): v
                for l, v in scores.get("per_type", {}).items()
            }
    lines = ["| corpus | label | " + " | ".join(title for title, _ in loaded) + " |", "|" + "---|" * (len(loaded) + 2)]
    for corpus, first in loaded[0][1]["corpora"].items():
        for label in first.get("per_type", {}):
            cells = [_cell(data["corpora"].get(corpus, {}).get("per_type", {}).get(label), f_only) for _, data in loaded]
            lines.append(f"| {corpus} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


NESTING_COLUMNS = (
    ("flat", "flat"), ("outer", "outer"), ("inner_other_label", "inside another label's"),
    ("inner_same_label", "inside its own label's"),
)


def nesting_table(runs: List[Tuple[str, Path]]) -> str:
    """A row per run and corpus: P / R / F, then recall (found / gold) per nesting kind."""
    header = ["model", "corpus", "P / R / F"] + [f"recall: {title}" for _, title in NESTING_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for title, path in runs:
        for corpus, scores in _load(title, path)["corpora"].items():
            nesting = (scores.get("errors") or {}).get("nesting")
            if nesting is None:
                raise ValueError(f"compare_evals: {path} has no errors.nesting for {corpus} (evaluate it again)")
            cells = [_cell(scores, False)]
            for kind, _ in NESTING_COLUMNS:
                n = nesting.get(kind, {"gold": 0, "found": 0})
                cells.append(f"{100 * n['found'] / n['gold']:.1f} ({n['found']}/{n['gold']})" if n["gold"] else "–")
            lines.append(f"| {title} | {corpus} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _macro(data: Dict) -> Dict[str, float]:
    scores = list(data["corpora"].values())
    return {key: sum(score[key] for score in scores) / len(scores) for key in ("p", "r", "f")}


def seed_table(runs: List[Tuple[str, Path]], per_corpus: bool = False) -> str:
    """A row per title: each seed's macro-F, then mean P / R / F and the F's standard deviation;
    with ``per_corpus``, each corpus's mean F over the seeds too. In a title's path commas
    separate the seeds and ``+`` joins the evaluations of one seed."""
    import statistics

    rows = []
    for title, path in runs:
        seeds = [_load(title, Path(part.replace("+", ","))) for part in str(path).split(",")]
        corpora = [sorted(data["corpora"]) for data in seeds]
        if any(names != corpora[0] for names in corpora):
            raise ValueError(f"compare_evals: the runs of {title!r} are scored on different corpora: {corpora}")
        rows.append((title, seeds))
    most = max(len(seeds) for _, seeds in rows)
    columns: List[str] = []
    if per_corpus:
        for _, seeds in rows:
            columns.extend(name for name in seeds[0]["corpora"] if name not in columns)
    header = ["model"] + [f"run {i + 1} F" for i in range(most)] + [f"{name} F" for name in columns]
    header += ["mean P / R / F", "sd of F"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for title, seeds in rows:
        scores = [_macro(data) for data in seeds]
        cells = [f"{100 * score['f']:.2f}" for score in scores] + ["–"] * (most - len(scores))
        for name in columns:
            fs = [data["corpora"][name]["f"] for data in seeds if name in data["corpora"]]
            cells.append(f"{100 * statistics.fmean(fs):.1f}" if fs else "–")
        mean = {key: statistics.fmean(score[key] for score in scores) for key in ("p", "r", "f")}
        sd = f"{100 * statistics.stdev(score['f'] for score in scores):.2f}" if len(scores) > 1 else "–"
        cells.append(f"{100 * mean['p']:.1f} / {100 * mean['r']:.1f} / **{100 * mean['f']:.2f}**")
        lines.append(f"| {title} | " + " | ".join(cells + [sd]) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="TITLE=PATH of an `evaluate` JSON")
    parser.add_argument("--f-only", action="store_true", help="F per corpus instead of P / R / F")
    parser.add_argument("--per-label", action="store_true", help="a row per corpus and label, a column per run")
    parser.add_argument("--label-maps", type=Path, default=None, help="--per-label: rename labels with this config's [corpora.train.label_maps]")
    parser.add_argument("--nesting", action="store_true", help="recall by nesting kind, a row per run and corpus")
    parser.add_argument("--seeds", action="store_true", help="commas separate runs of one model (seeds): their mean and sd")
    parser.add_argument("--per-corpus", action="store_true", help="--seeds: each corpus's mean F over the runs too")
    parser.add_argument("--output", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    try:
        runs = [named_path(arg) for arg in args.runs]
    except ValueError as err:
        parser.error(str(err))
    if args.seeds:
        text = seed_table(runs, per_corpus=args.per_corpus)
    elif args.nesting:
        text = nesting_table(runs)
    elif args.per_label:
        maps = read_label_maps(args.label_maps) if args.label_maps else None
        text = label_table(runs, f_only=args.f_only, label_maps=maps)
    else:
        text = table(runs, f_only=args.f_only)
    print(text, end="")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf8")


if __name__ == "__main__":
    main()
