"""scripts/parallel_train.py: several `spacy train` runs at once, a shared deadline, each model-best scored."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

from spacy_sru_ner.convert import convert_file
from spacy_sru_ner.demo import DEMO_CONFIG, DEMO_DEV, DEMO_TRAIN

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "components.sru_ner.model.hidden_width=32",
    "components.sru_ner.model.tok2vec.embed.width=32",
    "components.sru_ner.model.tok2vec.encode.width=32",
    "components.sru_ner.model.tok2vec.encode.depth=1",
]


def test_runs_in_parallel_stop_at_the_deadline_and_are_scored(tmp_path):
    corpus = tmp_path / "corpus"
    for name in ("demo", "long"):
        (corpus / name).mkdir(parents=True)
    convert_file(DEMO_TRAIN, corpus / "demo" / "train.spacy", "genia", limit=40)
    convert_file(DEMO_DEV, corpus / "demo" / "dev.spacy", "genia", limit=20)
    shutil.copy(corpus / "demo" / "dev.spacy", corpus / "demo" / "test.spacy")
    for split in ("train", "dev", "test"):
        shutil.copy(corpus / "demo" / f"{split}.spacy", corpus / "long" / f"{split}.spacy")
    out = tmp_path / "out"
    args = [sys.executable, str(ROOT / "scripts" / "parallel_train.py"), str(out), "--corpus-dir", str(corpus),
            "--eval-every", "6", "--deadline", "45",
            "--run", f"single_demo={DEMO_CONFIG}@12", "--run", f"single_long={DEMO_CONFIG}@100000",
            *[f"--set=*:{item}" for item in TINY], "--set=single_long:training.dropout=0.2"]
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    # the override for one run reaches that run only
    assert result.stdout.count("--training.dropout 0.2") == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["single_demo"]["reached_step"] == 12 and not summary["single_demo"]["stopped_at_deadline"]
    assert summary["single_demo"]["returncode"] == 0
    assert summary["single_long"]["stopped_at_deadline"] and summary["single_long"]["reached_step"] >= 6
    for name in ("single_demo", "single_long"):
        curve = [json.loads(line) for line in (out / name / "curve.jsonl").read_text().splitlines()]
        assert summary[name]["best_dev"] == max(row["score"] for row in curve)
        metrics = json.loads((out / "metrics" / f"{name}.json").read_text())
        corpus_name = name.partition("_")[2]
        assert list(metrics["corpora"]) == [corpus_name]
        assert metrics["corpora"][corpus_name]["gold"] > 0
        assert metrics["max_steps"] == summary[name]["reached_step"]


def test_bad_run_argument_is_reported(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "parallel_train.py"), str(tmp_path), "--eval-every", "6",
         "--deadline", "10", "--run", "single_demo=configs/x.cfg"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "NAME=CONFIG@STEPS" in result.stderr


def test_max_parallel_runs_one_at_a_time_and_skips_runs_past_the_deadline(tmp_path):
    corpus = tmp_path / "corpus"
    for name in ("demo", "long", "never"):
        (corpus / name).mkdir(parents=True)
    convert_file(DEMO_TRAIN, corpus / "demo" / "train.spacy", "genia", limit=40)
    convert_file(DEMO_DEV, corpus / "demo" / "dev.spacy", "genia", limit=20)
    shutil.copy(corpus / "demo" / "dev.spacy", corpus / "demo" / "test.spacy")
    for name in ("long", "never"):
        for split in ("train", "dev", "test"):
            shutil.copy(corpus / "demo" / f"{split}.spacy", corpus / name / f"{split}.spacy")
    out = tmp_path / "out"
    args = [sys.executable, str(ROOT / "scripts" / "parallel_train.py"), str(out), "--corpus-dir", str(corpus),
            "--eval-every", "6", "--deadline", "60", "--max-parallel", "1",
            "--run", f"single_demo={DEMO_CONFIG}@12", "--run", f"single_long={DEMO_CONFIG}@100000",
            "--run", f"single_never={DEMO_CONFIG}@12", *[f"--set=*:{item}" for item in TINY]]
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["single_demo"]["reached_step"] == 12 and summary["single_long"]["stopped_at_deadline"]
    # the second run started once the first had finished (after at least the first's training time)
    assert summary["single_long"]["start_seconds"] >= summary["single_demo"]["train_seconds"] > 0
    assert "single_never" not in summary and "single_never: not started before the deadline" in result.stdout
    metrics = {p.name for p in (out / "metrics").iterdir()}
    assert "single_demo.json" in metrics and "single_never.json" not in metrics
