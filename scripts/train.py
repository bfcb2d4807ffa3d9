"""Train the project's models with ``spacy train`` (in-process, one after the other).

    python scripts/train.py single      [common options] [--corpora all]
    python scripts/train.py multi       [common options]
    python scripts/train.py multi-transformer [common options] --encoder NAME_OR_DIR
    python scripts/train.py nested      [common options]
    python scripts/train.py transformer [common options] --encoder NAME_OR_DIR [--corpus bc5cdr]
    python scripts/train.py baselines   [common options] [--corpora all]

common options: --corpus-dir corpus --output-dir training --max-steps N --gpu-id -1 [--smoke]

* single: configs/single_cpu.cfg on every converted flat corpus -> OUT/single/<corpus>
* multi: configs/multi_corpus_cpu.cfg over the six biomedical corpora (absent ones
  are left out) -> OUT/multi
* multi-transformer: configs/multi_corpus_transformer.cfg (the same corpora on a
  transformer) -> OUT/multi_transformer (skipped when --encoder is empty)
* nested: configs/genia_nested_bilstm_cpu.cfg (the GENIA config with a BiLSTM encoder)
  on GENIA (F&M/Ju split) -> OUT/nested
* transformer: configs/transformer.cfg on one corpus -> OUT/transformer
  (skipped with a message when --encoder is empty)
* baselines: spaCy `ner` on every flat corpus -> OUT/baselines/ner/<corpus>, and
  `spancat` on GENIA (configs/baseline_spancat_bilstm_cpu.cfg) -> OUT/baselines/spancat/genia_fm;
  same tok2vec and steps.

A corpus whose train or dev file was not converted is skipped with a message.
--smoke shrinks every model (widths 16, one encoder layer, small hash tables) so that
a few steps run in seconds. Every model folder gets ``project_model.json`` naming
the test files that ``scripts/evaluate.py`` scores it on.
"""
import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from project_corpora import FLAT_CORPORA, GENIA_FM, GENIA_YAN, MULTI_CORPORA
from project_corpora import converted, parse_names

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
INFO_FILE = "project_model.json"
SMOKE_TOK2VEC = {
    "tok2vec.embed.width": 16,
    "tok2vec.embed.rows": [500, 100, 250, 250],
    "tok2vec.encode.width": 16,
    "tok2vec.encode.depth": 1,
}


def smoke_overrides(component: str, kind: str) -> Dict[str, Any]:
    """Overrides that make ``component`` tiny (kind: sru_ner, ner, spancat, transformer)."""
    base = f"components.{component}.model"
    overrides: Dict[str, Any] = {}
    if kind != "transformer":
        overrides.update({f"{base}.{key}": value for key, value in SMOKE_TOK2VEC.items()})
    if kind in ("sru_ner", "transformer"):
        overrides[f"{base}.hidden_width"] = 16
    elif kind == "ner":
        overrides[f"{base}.hidden_width"] = 16
    elif kind == "spancat":
        overrides[f"{base}.reducer.hidden_size"] = 16
    if kind == "transformer":
        overrides["components.transformer.model.get_spans.window"] = 32
        overrides["components.transformer.model.get_spans.stride"] = 24
        overrides["training.optimizer.learn_rate.warmup_steps"] = 1
    return overrides


def best_model(output: Path) -> Path:
    """``model-best`` if training saved one, else ``model-last``."""
    best = output / "model-best"
    return best if best.is_dir() else output / "model-last"


def run_train(
    config: Path,
    output: Path,
    overrides: Dict[str, Any],
    *,
    max_steps: int,
    gpu_id: int,
    info: Dict[str, Any],
) -> Path:
    """``spacy train CONFIG --output OUTPUT`` with overrides; writes project_model.json."""
    from spacy.cli.train import train as spacy_train
    from spacy.util import load_config

    cfg = load_config(config)
    eval_frequency = int(cfg["training"]["eval_frequency"])
    overrides = {
        "training.max_steps": max_steps,
        "training.eval_frequency": max(1, min(eval_frequency, max_steps)),
        **overrides,
    }
    print(f"\n=== spacy train {config} --output {output} " + " ".join(f"--{k} {v}" for k, v in overrides.items()))
    output.mkdir(parents=True, exist_ok=True)
    spacy_train(config, output, use_gpu=gpu_id, overrides=overrides)
    model = best_model(output)
    info = {**info, "config": str(config), "model": str(model), "max_steps": max_steps, "overrides": overrides}
    (output / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf8")
    print(f"✔ trained {model}")
    return model


def _train_dev(corpus_dir: Path, name: str) -> Optional[Dict[str, str]]:
    train, dev = converted(corpus_dir, name, "train"), converted(corpus_dir, name, "dev")
    if train is None or dev is None:
        missing = " and ".join(s for s, p in (("train", train), ("dev", dev)) if p is None)
        print(f"⚠ skipping {name}: no converted {missing} file in {corpus_dir / name}")
        return None
    return {"paths.train": str(train), "paths.dev": str(dev)}


def _tests(corpus_dir: Path, names: List[str]) -> List[str]:
    return [str(p) for p in (converted(corpus_dir, n, "test") for n in names) if p is not None]


def flat_corpora(corpus_dir: Path, corpora: Optional[str]) -> List[str]:
    """The flat corpora to train on: the named ones, or ("all") every converted one."""
    names = parse_names(corpora, [])
    unknown = [n for n in names if n not in FLAT_CORPORA]
    if unknown:
        raise SystemExit(f"✘ unknown flat corpus name(s) {unknown}: use {list(FLAT_CORPORA)}")
    if names:
        return names
    names = [n for n in FLAT_CORPORA if (corpus_dir / n).is_dir()]
    absent = [n for n in FLAT_CORPORA if n not in names]
    if absent:
        print(f"ℹ not converted, left out: {', '.join(absent)}")
    return names


def train_single(args: argparse.Namespace) -> List[Path]:
    models = []
    config = CONFIGS / "single_cpu.cfg"
    for name in flat_corpora(args.corpus_dir, args.corpora):
        paths = _train_dev(args.corpus_dir, name)
        if paths is None:
            continue
        overrides = {**paths, **(smoke_overrides("sru_ner", "sru_ner") if args.smoke else {})}
        info = {"kind": "single", "corpus": name, "tests": _tests(args.corpus_dir, [name])}
        models.append(run_train(config, args.output_dir / "single" / name, overrides,
                                max_steps=args.max_steps, gpu_id=args.gpu_id, info=info))
    if not models:
        print("⚠ no flat corpus converted: nothing trained")
    return models


def train_multi(args: argparse.Namespace, transformer: bool = False) -> List[Path]:
    if transformer and not args.encoder:
        print("⚠ skipping the multi-corpus transformer model: no encoder given (--encoder)")
        return []
    overrides: Dict[str, Any] = {"paths.encoder": args.encoder} if transformer else {}
    present = []
    for name in MULTI_CORPORA:
        train, dev = converted(args.corpus_dir, name, "train"), converted(args.corpus_dir, name, "dev")
        overrides[f"paths.train_{name}"] = str(train) if train else None
        overrides[f"paths.dev_{name}"] = str(dev) if dev else None
        if train is None:
            print(f"⚠ multi: leaving out {name}: no converted train file in {args.corpus_dir / name}")
        else:
            present.append(name)
    if not present:
        print("⚠ multi: none of the six biomedical corpora is converted: nothing trained")
        return []
    if not any(overrides[f"paths.dev_{name}"] for name in MULTI_CORPORA):
        print("⚠ multi: no dev file for any corpus: nothing trained")
        return []
    if args.smoke:
        overrides.update(smoke_overrides("sru_ner", "transformer" if transformer else "sru_ner"))
    kind = "multi-transformer" if transformer else "multi"
    info = {"kind": kind, "corpus": present, "tests": _tests(args.corpus_dir, present)}
    if transformer:
        info["encoder"] = args.encoder
    config = "multi_corpus_transformer.cfg" if transformer else "multi_corpus_cpu.cfg"
    return [run_train(CONFIGS / config, args.output_dir / kind.replace("-", "_"), overrides,
                      max_steps=args.max_steps, gpu_id=args.gpu_id, info=info)]


def train_multi_transformer(args: argparse.Namespace) -> List[Path]:
    return train_multi(args, transformer=True)


def train_nested(args: argparse.Namespace) -> List[Path]:
    paths = _train_dev(args.corpus_dir, GENIA_FM)
    if paths is None:
        return []
    overrides = {**paths, **(smoke_overrides("sru_ner", "sru_ner") if args.smoke else {})}
    info = {"kind": "nested", "corpus": GENIA_FM, "tests": _tests(args.corpus_dir, [GENIA_FM, GENIA_YAN])}
    return [run_train(CONFIGS / "genia_nested_bilstm_cpu.cfg", args.output_dir / "nested", overrides,
                      max_steps=args.max_steps, gpu_id=args.gpu_id, info=info)]


def train_transformer(args: argparse.Namespace) -> List[Path]:
    if not args.encoder:
        print("⚠ skipping the transformer model: no encoder given (--encoder / vars.smoke_encoder)")
        return []
    paths = _train_dev(args.corpus_dir, args.corpus)
    if paths is None:
        return []
    overrides: Dict[str, Any] = {**paths, "paths.encoder": args.encoder}
    if args.smoke:
        overrides.update(smoke_overrides("sru_ner", "transformer"))
    tests = _tests(args.corpus_dir, [args.corpus] + ([GENIA_YAN] if args.corpus == GENIA_FM else []))
    info = {"kind": "transformer", "corpus": args.corpus, "encoder": args.encoder, "tests": tests}
    return [run_train(CONFIGS / "transformer.cfg", args.output_dir / "transformer", overrides,
                      max_steps=args.max_steps, gpu_id=args.gpu_id, info=info)]


def train_baselines(args: argparse.Namespace) -> List[Path]:
    models = []
    for name in flat_corpora(args.corpus_dir, args.corpora):
        paths = _train_dev(args.corpus_dir, name)
        if paths is None:
            continue
        overrides = {**paths, **(smoke_overrides("ner", "ner") if args.smoke else {})}
        info = {"kind": "baseline-ner", "corpus": name, "tests": _tests(args.corpus_dir, [name])}
        models.append(run_train(CONFIGS / "baseline_ner_cpu.cfg", args.output_dir / "baselines" / "ner" / name,
                                overrides, max_steps=args.max_steps, gpu_id=args.gpu_id, info=info))
    paths = _train_dev(args.corpus_dir, GENIA_FM)
    if paths is not None:
        overrides = {**paths, **(smoke_overrides("spancat", "spancat") if args.smoke else {})}
        info = {"kind": "baseline-spancat", "corpus": GENIA_FM,
                "tests": _tests(args.corpus_dir, [GENIA_FM, GENIA_YAN])}
        models.append(run_train(CONFIGS / "baseline_spancat_bilstm_cpu.cfg",
                                args.output_dir / "baselines" / "spancat" / GENIA_FM,
                                overrides, max_steps=args.max_steps, gpu_id=args.gpu_id, info=info))
    return models


COMMANDS = {
    "single": train_single,
    "multi": train_multi,
    "multi-transformer": train_multi_transformer,
    "nested": train_nested,
    "transformer": train_transformer,
    "baselines": train_baselines,
}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=list(COMMANDS))
    parser.add_argument("--corpus-dir", type=Path, default=Path("corpus"))
    parser.add_argument("--output-dir", type=Path, default=Path("training"))
    parser.add_argument("--max-steps", type=int, default=20000)
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--corpora", default="all", help="single/baselines: flat corpora to train on, or 'all'")
    parser.add_argument("--encoder", default="", help="transformer: HF model name or local checkpoint folder")
    parser.add_argument("--corpus", default="bc5cdr", help="transformer: the corpus to train on")
    parser.add_argument("--smoke", action="store_true", help="tiny models (for the smoke workflow)")
    args = parser.parse_args(argv)
    if args.max_steps < 1:
        parser.error("--max-steps must be at least 1")
    models = COMMANDS[args.what](args)
    print(f"✔ {args.what}: {len(models)} model(s) trained" + "".join(f"\n  {m}" for m in models))


if __name__ == "__main__":
    main()
