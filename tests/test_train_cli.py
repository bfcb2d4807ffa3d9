"""`spacy train` / `spacy evaluate` end to end on the bundled demo config."""
import json
import subprocess
import sys

import spacy

from spacy_sru_ner.convert import convert_file
from spacy_sru_ner.demo import DEMO_CONFIG, DEMO_DEV, DEMO_TRAIN

TINY = [
    "--components.sru_ner.model.hidden_width=32",
    "--components.sru_ner.model.tok2vec.embed.width=32",
    "--components.sru_ner.model.tok2vec.encode.width=32",
    "--components.sru_ner.model.tok2vec.encode.depth=1",
    "--training.max_steps=12",
    "--training.eval_frequency=6",
]


def _run(args, cwd):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_spacy_train_and_evaluate_end_to_end(tmp_path):
    train, dev = tmp_path / "train.spacy", tmp_path / "dev.spacy"
    stats = convert_file(DEMO_TRAIN, train, "genia", limit=40)
    assert stats.written.docs == 40
    convert_file(DEMO_DEV, dev, "genia", limit=20)
    out = _run(
        [sys.executable, "-m", "spacy", "train", str(DEMO_CONFIG), "--output", str(tmp_path / "out"),
         "--paths.train", str(train), "--paths.dev", str(dev), *TINY],
        tmp_path,
    )
    assert "LOSS SRU_NER" in out and "SPANS_SRU_" in out
    model_dir = tmp_path / "out" / "model-last"
    meta = json.loads((model_dir / "meta.json").read_text())
    assert "spans_sru_ner_f" in meta["performance"]
    nlp = spacy.load(model_dir)
    assert nlp.pipe_names == ["sru_ner"]
    assert len(nlp.get_pipe("sru_ner").labels) == 5
    doc = nlp("IL-2 gene expression requires NF-kappa B activation in T cells .")
    assert "sru_ner" in doc.spans
    out = _run(
        [sys.executable, "-m", "spacy", "evaluate", str(model_dir), str(dev), "--spans-key", "sru_ner",
         "--output", str(tmp_path / "scores.json")],
        tmp_path,
    )
    assert "SPAN F" in out
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert set(scores["spans_sru_ner_per_type"]) <= {"DNA", "RNA", "protein", "cell_line", "cell_type"}
