"""End to end: train sru_ner with ``spacy train`` on two corpora with disjoint
label sets (MultiCorpus reader, loss masking) and evaluate it per corpus."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from typer.testing import CliRunner

from spacy_sru_ner.cli import app
from spacy_sru_ner.contract import parse_corpus_label_map, set_annotated_labels
from spacy_sru_ner.evaluate import default_corpus_name, evaluate_corpora

CHEMICALS = ["aspirin", "cisplatin", "caffeine", "morphine", "lithium", "heparin", "cocaine", "nicotine"]
DISEASES = ["asthma", "hepatitis", "diabetes", "anemia", "psoriasis", "epilepsy", "migraine", "arthritis"]
TEMPLATES = [
    "{c} induced {d} in rats .",
    "patients with {d} received {c} .",
    "{c} may worsen {d} .",
    "we treated {d} with {c} daily .",
    "{d} after {c} exposure was rare .",
]

CONFIG = """
[paths]
chem_train = null
dis_train = null
chem_dev = null
dis_dev = null

[system]
seed = 0
gpu_allocator = null

[nlp]
lang = "en"
pipeline = ["sru_ner"]
batch_size = 64

[components]

[components.sru_ner]
factory = "sru_ner"
spans_key = "sru_ner"
masking = true

[components.sru_ner.model]
@architectures = "spacy_sru_ner.SlotDecoder.v1"
hidden_width = 64
dropout_positions = 0.0
dropout_queries = 0.0
dropout_mlp = 0.0

[components.sru_ner.model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
width = 64
depth = 2
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
pretrained_vectors = null

[corpora]

[corpora.train]
@readers = "spacy_sru_ner.MultiCorpus.v1"
sampling = "uniform"
seed = ${system.seed}

[corpora.train.paths]
chem = ${paths.chem_train}
dis = ${paths.dis_train}

[corpora.dev]
@readers = "spacy_sru_ner.MultiCorpus.v1"
sampling = "proportional"
shuffle = false

[corpora.dev.paths]
chem = ${paths.chem_dev}
dis = ${paths.dis_dev}

[training]
seed = ${system.seed}
gpu_allocator = ${system.gpu_allocator}
dropout = 0.0
max_epochs = -1
max_steps = 200
eval_frequency = 100
patience = 0

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 8

[training.optimizer]
@optimizers = "Adam.v1"
learn_rate = 0.003

[training.logger]
@loggers = "spacy.ConsoleLogger.v1"
progress_bar = false

[initialize]

[initialize.components]

[initialize.components.sru_ner]
labels = ["Chemical", "Disease"]
"""


# One thread per process: on a small, shared machine torch's default of one
# OpenMP thread per core makes the tiny model many times slower under load.
SINGLE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic_corpus(path: Path, n: int, annotated: str, seed: int) -> Path:
    """``n`` sentences, each with a chemical and a disease word; only the
    ``annotated`` label's mentions are marked (the other kind is left unmarked)."""
    rng = random.Random(seed)
    vocab = spacy.blank("en").vocab
    words_of = {"Chemical": set(CHEMICALS), "Disease": set(DISEASES)}
    doc_bin = DocBin(store_user_data=True)
    for _ in range(n):
        text = rng.choice(TEMPLATES).format(c=rng.choice(CHEMICALS), d=rng.choice(DISEASES))
        doc = Doc(vocab, words=text.split())
        spans = [Span(doc, i, i + 1, label=annotated) for i, t in enumerate(doc) if t.text in words_of[annotated]]
        doc.spans["sru_ner"] = spans
        doc.set_ents(spans, default="outside")
        set_annotated_labels(doc, [annotated])
        doc_bin.add(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc_bin.to_disk(path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model path, {corpus: dev file}) of a pipeline trained by ``spacy train``."""
    root = tmp_path_factory.mktemp("multicorpus")
    paths = {
        "chem_train": synthetic_corpus(root / "train" / "chem.spacy", 30, "Chemical", 1),
        "dis_train": synthetic_corpus(root / "train" / "dis.spacy", 30, "Disease", 2),
        "chem_dev": synthetic_corpus(root / "dev" / "chem.spacy", 10, "Chemical", 3),
        "dis_dev": synthetic_corpus(root / "dev" / "dis.spacy", 10, "Disease", 4),
    }
    config = root / "config.cfg"
    config.write_text(CONFIG, encoding="utf-8")
    output = root / "output"
    command = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(output)]
    for name, path in paths.items():
        command += [f"--paths.{name}", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=SINGLE_THREAD_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    return output / "model-last", {"chem": paths["chem_dev"], "dis": paths["dis_dev"]}


def predicted(nlp, text: str) -> List[tuple]:
    doc = nlp(text)
    return sorted((s.text, s.label_) for s in doc.spans["sru_ner"])


def test_merged_model_predicts_both_labels(trained):
    model, _ = trained
    nlp = spacy.load(model)
    # corpus chem never marks diseases and corpus dis never marks chemicals
    assert predicted(nlp, "cisplatin induced asthma in rats .") == [("asthma", "Disease"), ("cisplatin", "Chemical")]
    texts = [t.format(c=c, d=d) for t in TEMPLATES for c in CHEMICALS for d in DISEASES]
    correct = 0
    for doc in nlp.pipe(texts):
        words = doc.text.split()
        gold = {(w, "Chemical") for w in words if w in CHEMICALS} | {(w, "Disease") for w in words if w in DISEASES}
        correct += {(s.text, s.label_) for s in doc.spans["sru_ner"]} == gold
    assert correct / len(texts) > 0.7


def test_evaluate_cli_per_corpus_json(trained, tmp_path):
    model, dev = trained
    scores = tmp_path / "scores.json"
    command = [sys.executable, "-m", "spacy_sru_ner", "evaluate", str(model), str(dev["chem"]), str(dev["dis"])]
    result = subprocess.run(
        command + ["--output", str(scores)], capture_output=True, text=True, timeout=120, env=SINGLE_THREAD_ENV
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== chem" in result.stdout and "macro" in result.stdout
    data = json.loads(scores.read_text())
    assert set(data["corpora"]) == {"chem", "dis"}
    chem, dis = data["corpora"]["chem"], data["corpora"]["dis"]
    # each corpus is scored on its own label only, so the (correct) predictions
    # of the other label do not count as false positives
    assert chem["labels"] == ["Chemical"] and set(chem["per_type"]) == {"Chemical"}
    assert dis["labels"] == ["Disease"] and set(dis["per_type"]) == {"Disease"}
    assert chem["docs"] == dis["docs"] == 10 and chem["gold"] == dis["gold"] == 10
    for corpus in (chem, dis):
        assert corpus["f"] >= 0.8 and corpus["file"].endswith(".spacy")
    for key in ("p", "r", "f"):
        assert data["macro"][key] == pytest.approx((chem[key] + dis[key]) / 2)
        assert 0.0 <= data["micro"][key] <= 1.0
    assert data["warnings"] == []


def test_evaluate_cli_errors(trained, tmp_path):
    model, dev = trained
    runner = CliRunner()
    missing = tmp_path / "missing.spacy"
    result = runner.invoke(app, ["evaluate", str(model), str(dev["chem"]), str(missing)])
    assert result.exit_code == 1
    assert f"{missing}: file not found" in result.output
    empty = tmp_path / "empty.spacy"
    DocBin().to_disk(empty)
    result = runner.invoke(app, ["evaluate", str(model), str(empty)])
    assert result.exit_code == 1
    assert f"{empty}: contains no documents" in result.output
    result = runner.invoke(app, ["evaluate", str(model), str(dev["chem"]), "--label-map", "oops"])
    assert result.exit_code == 1 and "OLD=NEW" in result.output


def test_evaluate_label_map_and_names(trained, tmp_path):
    model, dev = trained
    runner = CliRunner()
    out = tmp_path / "s.json"
    # rename the gold label: the model's Chemical predictions no longer match
    result = runner.invoke(
        app, ["evaluate", str(model), str(dev["chem"]), "--label-map", "chem:Chemical=Drug", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["corpora"]["chem"]["labels"] == ["Drug"] and data["corpora"]["chem"]["f"] == 0.0
    assert len(data["warnings"]) == 1 and "Drug" in data["warnings"][0]


def test_evaluate_max_positive(trained, tmp_path):
    """--max-positive decodes with another label limit than the model's, and says so in the JSON."""
    from spacy_sru_ner.evaluate import set_max_positive

    model, dev = trained
    nlp = spacy.load(model)
    assert nlp.get_pipe("sru_ner").cfg["max_positive"] is None
    set_max_positive(nlp, 1)
    assert nlp.get_pipe("sru_ner").cfg["max_positive"] == 1
    pipe = nlp.get_pipe("sru_ner")
    # at a threshold of 1e-5 spans get both labels; the limit keeps one per span

    def repeated_bounds():
        texts = [t.format(c=c, d=d) for t in TEMPLATES for c in CHEMICALS[:2] for d in DISEASES[:2]]
        bounds = [[(s.start, s.end) for s in doc.spans["sru_ner"]] for doc in nlp.pipe(texts)]
        return sum(len(b) - len(set(b)) for b in bounds)

    pipe.cfg["threshold"] = 1e-5
    assert repeated_bounds() == 0
    set_max_positive(nlp, 0)
    assert pipe.cfg["max_positive"] is None
    assert repeated_bounds() > 0
    # a saved pipeline keeps the setting
    set_max_positive(nlp, 2)
    nlp.to_disk(tmp_path / "limited")
    assert spacy.load(tmp_path / "limited").get_pipe("sru_ner").cfg["max_positive"] == 2
    with pytest.raises(ValueError, match="no sru_ner component"):
        set_max_positive(spacy.blank("en"), 1)
    out = tmp_path / "s.json"
    result = CliRunner().invoke(app, ["evaluate", str(model), str(dev["chem"]), "--max-positive", "0", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["max_positive"] is None


def test_decode_table_script(trained, tmp_path):
    """scripts/decode_table.py scores a model per corpus with each max_positive and writes a table."""
    import shutil

    model, dev = trained
    corpus_dir = tmp_path / "corpus"
    for name, path in dev.items():
        (corpus_dir / name).mkdir(parents=True)
        shutil.copy(path, corpus_dir / name / "dev.spacy")
    out = tmp_path / "out"
    script = Path(__file__).resolve().parents[1] / "scripts" / "decode_table.py"
    command = [sys.executable, str(script), str(out), f"m={model}", "--corpora", "chem", "dis"]
    command += ["--corpus-dir", str(corpus_dir), "--splits", "dev", "--max-positive", "1", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=SINGLE_THREAD_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    one, every = (json.loads((out / f"m_dev_mp{v}.json").read_text()) for v in (1, 0))
    assert one["max_positive"] == 1 and every["max_positive"] is None
    assert set(one["corpora"]) == set(every["corpora"]) == {"chem", "dis"}
    table = (out / "summary.md").read_text().splitlines()
    assert table[0].startswith("| model | split | max_positive | chem | dis | macro-F |")
    assert len(table) == 4 and "| m | dev | none |" in table[3]
    assert f"**{100 * every['macro']['f']:.2f}**" in table[3]
    bad = subprocess.run(command[:3] + ["m=missing/model"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "model not found" in bad.stderr
    # --rounds: a train-rounds folder stands for its rounds' model-last, named by updates;
    # score files already written are read back, not decoded again
    run = tmp_path / "run"
    shutil.copytree(model, run / "rounds" / "000" / "model-last")
    (run / "rounds.json").write_text(json.dumps({"rounds": [{"round": 0, "end_step": 40}]}))
    shutil.copy(out / "m_dev_mp1.json", out / "r_40_dev_mp1.json")
    rounds = subprocess.run(
        command[:3] + [f"r={run}", "--rounds"] + command[4:], capture_output=True, text=True, timeout=300, env=SINGLE_THREAD_ENV
    )
    assert rounds.returncode == 0, rounds.stdout + rounds.stderr
    assert "r_40_dev_mp1.json: scored before, read back" in rounds.stdout
    assert json.loads((out / "r_40_dev_mp0.json").read_text())["corpora"] == every["corpora"]
    assert any(line.startswith("| r_40 | dev | none |") for line in (out / "summary.md").read_text().splitlines())
    no_rounds = subprocess.run(command[:3] + [f"r={model}", "--rounds"], capture_output=True, text=True, timeout=60)
    assert no_rounds.returncode != 0 and "rounds.json: not found" in no_rounds.stderr


def test_evaluate_helpers():
    assert parse_corpus_label_map("GENE=Gene, bc5cdr:Disease=Dis,x:y=") == (
        {"GENE": "Gene"},
        {"bc5cdr": {"Disease": "Dis"}, "x": {"y": ""}},
    )
    with pytest.raises(ValueError):
        parse_corpus_label_map("GENE")
    assert default_corpus_name("corpus/bc5cdr/test.spacy") == "bc5cdr"
    assert default_corpus_name("data/ncbi_test.spacy") == "ncbi_test"


@Language.component("test_multicorpus_prefixed_lookup")
def prefixed_lookup(doc: Doc) -> Doc:
    """A stand-in for a model trained with prefix_labels: looks words up."""
    labels = {**{w: "chem$Chemical" for w in CHEMICALS}, **{w: "dis$Disease" for w in DISEASES}}
    doc.spans["sru_ner"] = [Span(doc, t.i, t.i + 1, label=labels[t.text]) for t in doc if t.text in labels]
    return doc


def test_evaluate_prefixed_labels(tmp_path):
    files = [
        synthetic_corpus(tmp_path / "chem.spacy", 5, "Chemical", 5),
        synthetic_corpus(tmp_path / "dis.spacy", 5, "Disease", 6),
    ]
    nlp = spacy.blank("en")
    nlp.add_pipe("test_multicorpus_prefixed_lookup")
    for options in ({"prefix_labels": True}, {"strip_prefixes": True}):
        results = evaluate_corpora(nlp, files, **options)
        assert results["macro"]["f"] == results["micro"]["f"] == 1.0
    prefixed = evaluate_corpora(nlp, files, prefix_labels=True)["corpora"]
    assert prefixed["chem"]["labels"] == ["chem$Chemical"] and prefixed["dis"]["labels"] == ["dis$Disease"]
    plain = evaluate_corpora(nlp, files)
    assert plain["macro"]["f"] == 0.0 and plain["corpora"]["chem"]["labels"] == ["Chemical"]


def test_span_scorer_per_corpus():
    """The span scorer adds P/R/F per corpus when the references name their corpus."""
    from spacy.training import Example

    from spacy_sru_ner.contract import set_corpus_name
    from spacy_sru_ner.scorer import score_spans

    nlp = spacy.blank("en")

    def example(corpus, gold, pred):
        reference, predicted = nlp.make_doc("aspirin induced asthma"), nlp.make_doc("aspirin induced asthma")
        reference.spans["sru_ner"] = [Span(reference, s, e, label=l) for s, e, l in gold]
        predicted.spans["sru_ner"] = [Span(predicted, s, e, label=l) for s, e, l in pred]
        if corpus is not None:
            set_corpus_name(reference, corpus)
        return Example(predicted, reference)

    examples = [
        example("chem", [(0, 1, "Chemical")], [(0, 1, "Chemical")]),
        example("dis", [(2, 3, "Disease")], [(1, 3, "Disease")]),
        example("dis", [(2, 3, "Disease")], [(2, 3, "Disease")]),
    ]
    scores = score_spans(examples, "sru_ner")
    assert scores["spans_sru_ner_per_corpus"]["chem"] == {"p": 1.0, "r": 1.0, "f": 1.0}
    assert scores["spans_sru_ner_per_corpus"]["dis"]["p"] == 0.5 and scores["spans_sru_ner_per_corpus"]["dis"]["r"] == 0.5
    assert scores["spans_sru_ner_p"] == pytest.approx(2 / 3) and scores["spans_sru_ner_r"] == pytest.approx(2 / 3)
    # macro over corpora: (1.0 + 0.5) / 2, where the micro-F is 2/3
    assert scores["spans_sru_ner_corpus_macro_f"] == pytest.approx(0.75)
    # without corpus names: no per-corpus scores, the same micro scores
    unnamed = score_spans([example(None, [(0, 1, "Chemical")], [(0, 1, "Chemical")])], "sru_ner")
    assert "spans_sru_ner_per_corpus" not in unnamed and "spans_sru_ner_corpus_macro_f" not in unnamed
    assert unnamed["spans_sru_ner_f"] == 1.0
