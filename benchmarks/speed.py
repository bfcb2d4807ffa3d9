"""Inference speed of sru_ner against spaCy's ner with the same tok2vec, in one run.

Trains both components briefly on the bundled GENIA sample (speed does not need a
good model, but sru_ner's decoding length depends on what it predicts, so it is
trained a little), then times ``nlp.pipe`` over the sample's texts at several batch
sizes and prints a table: words/s of each, their ratio, and sru_ner's decoder share.

    python benchmarks/speed.py [--steps 200] [--repeat 3] [--threads 1]
"""
import argparse
import random
import time
from typing import Dict, List

import spacy
import torch
from spacy.training import Example
from spacy.util import filter_spans

from spacy_sru_ner.demo import load_demo_docs

TOK2VEC = {
    "@architectures": "spacy.Tok2Vec.v2",
    "embed": {
        "@architectures": "spacy.MultiHashEmbed.v2",
        "width": 96,
        "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
        "rows": [5000, 1000, 2500, 2500],
        "include_static_vectors": False,
    },
    "encode": {
        "@architectures": "spacy.MaxoutWindowEncoder.v2",
        "width": 96,
        "depth": 4,
        "window_size": 1,
        "maxout_pieces": 3,
    },
}


def build(factory: str, docs, steps: int) -> spacy.Language:
    nlp = spacy.blank("en")
    if factory == "sru_ner":
        nlp.add_pipe("sru_ner", config={"model": {"tok2vec": TOK2VEC}})
    else:
        nlp.add_pipe("ner", config={"model": {"tok2vec": TOK2VEC}})
    examples = []
    for doc in docs:
        ref = doc.copy()
        if factory == "ner":
            ref.ents = filter_spans(list(doc.spans["sru_ner"]))
        examples.append(Example(nlp.make_doc(doc.text), ref))
    optimizer = nlp.initialize(lambda: examples)
    for step in range(steps):
        batch = random.sample(examples, 16)
        nlp.update(batch, sgd=optimizer)
    return nlp


def words_per_second(nlp: spacy.Language, texts: List[str], batch_size: int, repeat: int) -> float:
    n_words = sum(len(nlp.make_doc(t)) for t in texts)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=batch_size):
            pass
        best = min(best, time.perf_counter() - start)
    return n_words / best


def decoder_share(nlp: spacy.Language, texts: List[str], batch_size: int) -> float:
    """Fraction of sru_ner's pipe time spent in the PyTorch decoder."""
    decoder = nlp.get_pipe("sru_ner").model.get_ref("decoder").shims[0]._model
    spent = [0.0]
    original = decoder.forward_predict

    def timed(batch):
        start = time.perf_counter()
        out = original(batch)
        spent[0] += time.perf_counter() - start
        return out

    decoder.forward_predict = timed
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    total = time.perf_counter() - start
    decoder.forward_predict = original
    return spent[0] / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="training updates per component")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--batch-sizes", default="1,32,256")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    random.seed(0)
    spacy.util.fix_random_seed(0)
    train = load_demo_docs("train")
    texts = [d.text for d in load_demo_docs("dev")] + [d.text for d in train]
    models = {name: build(name, train, args.steps) for name in ("sru_ner", "ner")}
    rows: List[Dict] = []
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        speeds = {name: words_per_second(nlp, texts, batch_size, args.repeat) for name, nlp in models.items()}
        share = decoder_share(models["sru_ner"], texts, batch_size)
        rows.append({"batch": batch_size, **speeds, "share": share})
    n_words = sum(len(models["ner"].make_doc(t)) for t in texts)
    print(f"{len(texts)} texts, {n_words} words (GENIA sample); torch threads {args.threads}; same tok2vec (MultiHashEmbed 96 + CNN depth 4)")
    print(f"| batch size | sru_ner words/s | ner words/s | sru_ner / ner | decoder share of sru_ner time |")
    print(f"|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch']} | {r['sru_ner']:,.0f} | {r['ner']:,.0f} | {r['sru_ner'] / r['ner']:.2f} | {100 * r['share']:.0f}% |")


if __name__ == "__main__":
    main()
