import random
from pathlib import Path

import pytest
import spacy
import torch

torch.set_num_threads(1)  # tiny tensors: one thread is faster and avoids contention
from spacy.training import Example

from spacy_sru_ner.demo import load_demo_docs

SMALL_MODEL = {
    "hidden_width": 64,
    "dropout_positions": 0.0,
    "dropout_queries": 0.0,
    "dropout_mlp": 0.0,
    "tok2vec": {
        "@architectures": "spacy.HashEmbedCNN.v2",
        "width": 64,
        "depth": 2,
        "embed_size": 2000,
        "window_size": 1,
        "maxout_pieces": 3,
        "subword_features": True,
        "pretrained_vectors": None,
    },
}


def nested_docs(n: int = 20, max_len: int = 30):
    """``n`` short demo sentences, preferring ones with nested entities."""
    docs = [d for d in load_demo_docs("train") if len(d) <= max_len and len(d.spans["sru_ner"])]

    def nested(doc):
        spans = list(doc.spans["sru_ner"])
        return any(a != b and a.start <= b.start and b.end <= a.end for a in spans for b in spans)

    docs.sort(key=lambda d: (not nested(d), len(d)))
    return docs[:n]


def make_examples(nlp, docs):
    return [Example(nlp.make_doc(doc.text), doc) for doc in docs]


def train_nlp(docs, n_iter: int = 300, config=None, seed: int = 0, target_f: float = 1.0):
    """Train a blank pipeline with sru_ner on ``docs`` via nlp.update."""
    random.seed(seed)
    torch.manual_seed(seed)
    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, **(config or {})})
    examples = make_examples(nlp, docs)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.003
    scores = {}
    for i in range(n_iter):
        random.shuffle(examples)
        for start in range(0, len(examples), 8):
            nlp.update(examples[start : start + 8], sgd=optimizer)
        if i % 10 == 9:
            scores = nlp.evaluate(examples)
            if scores["spans_sru_ner_f"] >= target_f:
                break
    return nlp, examples, scores


@pytest.fixture(scope="session")
def trained():
    """(nlp, examples, scores) of sru_ner overfitted on 20 nested sentences."""
    return train_nlp(nested_docs(20))


def project_script(name: str):
    """Import scripts/<name>.py as a module (with scripts/ on sys.path while it
    loads, as ``python scripts/<name>.py`` has it)."""
    import importlib.util
    import sys

    scripts = Path(__file__).resolve().parent.parent / "scripts"
    spec = importlib.util.spec_from_file_location(f"project_{name}", scripts / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(scripts))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(scripts))
    return module
