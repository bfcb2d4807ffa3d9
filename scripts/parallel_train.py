"""Train several spaCy pipelines at once (one process each) and score each model-best on its test sets.

    python scripts/parallel_train.py OUT --encoder ENCODER --gpu-id 0 --deadline 330 \
        --run multi=configs/multi_corpus_transformer.cfg@2000 \
        --run single_ncbi_disease=configs/transformer.cfg@400 \
        --run ner_ncbi_disease=configs/baseline_ner_transformer.cfg@400 \
        --set '*:training.optimizer.learn_rate.initial_rate=0.0001'

For one lent GPU: every run is ``python -m spacy train CONFIG --output OUT/NAME``
for ``STEPS`` updates (``--training.max_steps``; the learning-rate schedule ends
there), logged by ``spacy_sru_ner.CurveLogger.v1`` into ``OUT/NAME/curve.jsonl``
(dev score every ``--eval-every`` updates, or ``--eval-every-multi`` for a run
named ``multi``). Run names say what a run is trained and scored on, as in
``scripts/evaluate.py --rounds``: ``multi`` (the five corpora of the config, scored
on their five test sets), ``single_<corpus>`` / ``ner_<corpus>`` (``--paths.train``
and ``--paths.dev`` set to ``CORPUS_DIR/<corpus>/{train,dev}.spacy``, scored on its
test set). ``--max-parallel N`` trains at most N runs at a time, the others
waiting in order (e.g. 1 on a CPU whose memory holds one transformer run).
Runs still going at ``--deadline`` seconds are stopped (runs not started by
then are skipped); their
``model-best`` (saved at their best evaluation so far) is scored all the same,
and ``OUT/summary.json`` records how far each got. Each model's test P/R/F per
corpus and per label: ``OUT/metrics/NAME.json`` (scripts/evaluate.py's format).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

from evaluate import ROUNDS_MULTI_CORPORA  # scripts/evaluate.py, beside this script

from spacy_sru_ner.curves import read_curve

SCRIPTS = Path(__file__).resolve().parent
LOGGER = "spacy_sru_ner.CurveLogger.v1"


def parse_run(text: str) -> Tuple[str, str, int]:
    """``NAME=CONFIG@STEPS`` -> (name, config, steps)."""
    name, sep, rest = text.partition("=")
    config, at, steps = rest.rpartition("@")
    if not sep or not at or not steps.isdigit():
        raise SystemExit(f"--run takes NAME=CONFIG@STEPS, got {text!r}")
    return name, config, int(steps)


def corpus_of(name: str) -> str:
    kind, _, corpus = name.partition("_")
    return corpus if kind in ("single", "ner") and corpus else ""


def train_command(name: str, config: str, steps: int, out: Path, args: argparse.Namespace) -> List[str]:
    every = args.eval_every_multi if name == "multi" and args.eval_every_multi else args.eval_every
    cmd = [sys.executable, "-m", "spacy", "train", config, "--output", str(out / name), "--gpu-id", str(args.gpu_id),
           "--training.max_steps", str(steps), "--training.eval_frequency", str(every),
           "--training.logger.@loggers", LOGGER, "--training.logger.path", str(out / name / "curve.jsonl"),
           "--training.logger.progress_bar", "false"]
    if args.encoder:
        cmd += ["--paths.encoder", args.encoder]
    corpus = corpus_of(name)
    if corpus:
        cmd += ["--paths.train", str(Path(args.corpus_dir) / corpus / "train.spacy"),
                "--paths.dev", str(Path(args.corpus_dir) / corpus / "dev.spacy")]
    for item in args.set:
        target, _, setting = item.partition(":")
        key, eq, value = setting.partition("=")
        if not eq:
            raise SystemExit(f"--set takes NAME:KEY=VALUE (NAME * for every run), got {item!r}")
        if target in ("*", name):
            cmd += [f"--{key}", value]
    return cmd


def last_and_best(path: Path) -> Tuple[Dict, Dict]:
    """The last evaluation of a run's curve and its best by training score (the one
    model-best holds); ``({}, {})`` for a run stopped before its first evaluation."""
    if not path.exists() or not path.read_text(encoding="utf8").strip():
        return {}, {}
    rows = read_curve(path)
    return rows[-1], max(rows, key=lambda r: r["score"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--run", action="append", required=True, help="NAME=CONFIG@STEPS")
    parser.add_argument("--set", action="append", default=[], help="NAME:KEY=VALUE (NAME * for every run)")
    parser.add_argument("--encoder", default=None, help="--paths.encoder of every run")
    parser.add_argument("--corpus-dir", default="corpus")
    parser.add_argument("--eval-every", type=int, required=True)
    parser.add_argument("--eval-every-multi", type=int, default=0)
    parser.add_argument("--deadline", type=float, required=True, help="seconds; runs still going are stopped")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--max-parallel", type=int, default=0, help="most runs training at once (0: all)")
    parser.add_argument("--score-only", action="store_true", help="score the model-best folders already there")
    args = parser.parse_args()
    runs = [parse_run(r) for r in args.run]
    args.out.mkdir(parents=True, exist_ok=True)
    summary: Dict[str, Dict] = {}
    start = time.time()
    if not args.score_only:
        procs = {}
        started: Dict[str, float] = {}
        waiting = list(runs)

        def start_waiting() -> None:
            while waiting and (not args.max_parallel
                               or sum(p.poll() is None for p, _ in procs.values()) < args.max_parallel):
                name, config, steps = waiting.pop(0)
                (args.out / name).mkdir(parents=True, exist_ok=True)
                cmd = train_command(name, config, steps, args.out, args)
                print("$", " ".join(cmd), flush=True)
                log = (args.out / name / "train.log").open("w", encoding="utf8")
                procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True), log)
                started[name] = round(time.time() - start, 1)

        start_waiting()
        stopped = set()
        while waiting or any(p.poll() is None for p, _ in procs.values()):
            start_waiting()
            if time.time() - start > args.deadline:
                waiting.clear()
                for name, (proc, _) in procs.items():
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGTERM)
                        stopped.add(name)
                for proc, _ in procs.values():
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(2)
        for name, config, steps in runs:
            if name not in procs:
                print(f"⚠ {name}: not started before the deadline", flush=True)
                continue
            proc, log = procs[name]
            log.close()
            last, best = last_and_best(args.out / name / "curve.jsonl")
            summary[name] = {"config": config, "max_steps": steps, "reached_step": last.get("step"),
                             "train_seconds": last.get("train_seconds"), "best_step": best.get("step"),
                             "best_dev": best.get("score"), "stopped_at_deadline": name in stopped,
                             "returncode": proc.returncode, "start_seconds": started[name],
                             "wall_seconds": round(time.time() - start, 1)}
            print(f"{name}: {summary[name]}", flush=True)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    # score every model-best, each in its own process, all at once (--max-parallel at a time)
    scorers = []

    def finish(scorer: Tuple[str, subprocess.Popen, object]) -> None:
        name, proc, log = scorer
        proc.wait()
        log.close()
        print(f"scored {name}: exit {proc.returncode} ({time.time() - start:.0f} s)", flush=True)

    for name, _, _ in runs:
        model = args.out / name / "model-best"
        if not model.is_dir():
            print(f"⚠ {name}: no model-best", flush=True)
            continue
        corpus = corpus_of(name)
        corpora = [corpus] if corpus else list(ROUNDS_MULTI_CORPORA)
        info = {"name": name, "kind": name.partition("_")[0], "corpus": corpora, "model": str(model),
                "tests": [str(Path(args.corpus_dir) / c / "test.spacy") for c in corpora],
                "max_steps": summary.get(name, {}).get("reached_step"),
                "best_step": summary.get(name, {}).get("best_step")}
        code = ("import json, sys; from pathlib import Path; sys.path.insert(0, %r); import evaluate; "
                "evaluate.evaluate_model(json.loads(%r), Path(%r), gpu_id=%d)"
                % (str(SCRIPTS), json.dumps(info), str(args.out / "metrics"), args.gpu_id))
        if args.max_parallel and len(scorers) >= args.max_parallel:
            finish(scorers.pop(0))
        log = (args.out / name / "score.log").open("w", encoding="utf8")
        scorers.append((name, subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT), log))
    for scorer in scorers:
        finish(scorer)


if __name__ == "__main__":
    main()
