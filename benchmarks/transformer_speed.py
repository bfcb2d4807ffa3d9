"""Speed of sru_ner against spaCy's ner on the same transformer, in one run.

Loads a trained ``transformer`` + ``sru_ner`` pipeline, builds a ``transformer`` +
``ner`` pipeline on the same encoder checkpoint (briefly trained on the same docs:
``ner``'s speed does not depend on how good it is), and times on the same texts:

* inference words/s of ``nlp.pipe`` at each batch size, and of the transformer
  alone (so the decoder's share of the time is known);
* training updates/s and words/s of ``nlp.update`` on fixed batches.

    python benchmarks/transformer_speed.py MODEL ENCODER corpus/bc5cdr/test.spacy ... \\
        [--gpu-id 0] [--n-docs 2000] [--batch-sizes 32,256] [--train-batch 32] [--json out.json]

MODEL: a trained pipeline folder (``spacy train`` with configs/transformer.cfg or
configs/multi_corpus_transformer.cfg); ENCODER: the checkpoint it was trained from.
"""
import argparse
import json
import time
from typing import Dict, List

import spacy
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import filter_spans
from thinc.api import Adam

from spacy_sru_ner.corpora import cached_msgpack_decoders, gold_spans


def sync() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
    except ImportError:
        pass


def words_per_second(nlp, texts: List[str], n_words: int, batch_size: int, disable=()) -> float:
    with nlp.select_pipes(disable=list(disable)):
        list(nlp.pipe(texts[: 2 * batch_size], batch_size=batch_size))  # warm-up
        sync()
        start = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=batch_size):
            pass
        sync()
    return n_words / (time.perf_counter() - start)


def updates_per_second(nlp, batches: List[List[Example]], optimizer) -> Dict[str, float]:
    nlp.update(batches[0], sgd=optimizer)  # warm-up
    sync()
    start = time.perf_counter()
    for batch in batches[1:]:
        nlp.update(batch, sgd=optimizer)
    sync()
    seconds = time.perf_counter() - start
    words = sum(len(eg.reference) for batch in batches[1:] for eg in batch)
    return {"updates_per_s": (len(batches) - 1) / seconds, "words_per_s": words / seconds}


def ner_pipeline(encoder: str, docs, steps: int):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config={"model": {"name": encoder}})
    nlp.add_pipe(
        "ner",
        config={
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2",
                "state_type": "ner",
                "hidden_width": 64,
                "maxout_pieces": 2,
                "use_upper": False,
                "tok2vec": {
                    "@architectures": "spacy-transformers.TransformerListener.v1",
                    "grad_factor": 1.0,
                    "pooling": {"@layers": "reduce_max.v1"},
                },
            }
        },
    )
    examples = []
    for doc in docs:
        ref = doc.copy()
        ref.ents = filter_spans(list(gold_spans(doc, "sru_ner")))
        examples.append(Example(nlp.make_doc(doc.text), ref))
    optimizer = nlp.initialize(lambda: examples[:200])
    for step in range(steps):
        nlp.update(examples[step * 16 : (step + 1) * 16], sgd=optimizer)
    return nlp, examples, optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("encoder")
    parser.add_argument("docs", nargs="+", help=".spacy files with the texts (and gold spans for training)")
    parser.add_argument("--gpu-id", type=int, default=-1)
    parser.add_argument("--n-docs", type=int, default=2000)
    parser.add_argument("--batch-sizes", default="32,256")
    parser.add_argument("--train-batch", type=int, default=32, help="docs per update")
    parser.add_argument("--train-updates", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    device = "GPU" if args.gpu_id >= 0 else "CPU"
    vocab = spacy.blank("en").vocab
    per_file = max(1, args.n_docs // len(args.docs))
    docs = []
    with cached_msgpack_decoders():
        for path in args.docs:
            docs.extend([d for d in DocBin().from_disk(path).get_docs(vocab) if len(d)][:per_file])
    texts = [d.text for d in docs]
    n_words = sum(len(d) for d in docs)
    print(f"{len(docs)} docs, {n_words} words, {device}")

    sru = spacy.load(args.model)
    ner, ner_examples, ner_opt = ner_pipeline(args.encoder, docs, steps=10)
    results: Dict[str, Dict] = {"device": device, "docs": len(docs), "words": n_words, "inference": {}, "training": {}}
    rows = []
    for size in [int(s) for s in args.batch_sizes.split(",")]:
        trf = words_per_second(sru, texts, n_words, size, disable=["sru_ner"])
        s = words_per_second(sru, texts, n_words, size)
        n = words_per_second(ner, texts, n_words, size)
        share = max(0.0, 1 - s / trf)
        results["inference"][size] = {"sru_ner": s, "ner": n, "transformer_only": trf, "decoder_share": share}
        rows.append((f"nlp.pipe, batch {size}", s, n, f"{share:.0%}"))

    def sru_examples():
        # docs whose gold labels the model knows (a multi-corpus model renames
        # some corpora's labels, e.g. BC2GM's GENE -> Gene)
        labels = set(sru.get_pipe("sru_ner").labels)
        out = []
        for doc in docs:
            if all(span.label_ in labels for span in gold_spans(doc, "sru_ner")):
                out.append(Example(sru.make_doc(doc.text), doc))
        return out

    size = args.train_batch
    n_batches = args.train_updates + 1
    sru_eg = sru_examples()
    sru_batches = [sru_eg[i * size : (i + 1) * size] for i in range(n_batches)]
    ner_batches = [ner_examples[i * size : (i + 1) * size] for i in range(n_batches)]
    sru_train = updates_per_second(sru, sru_batches, Adam(0.00005))
    ner_train = updates_per_second(ner, ner_batches, ner_opt)
    results["training"] = {"batch_docs": size, "sru_ner": sru_train, "ner": ner_train}
    print()
    print(f"| {device} | sru_ner words/s | ner words/s | sru_ner / ner | decoder share of sru_ner time |")
    print("|---|---|---|---|---|")
    for name, s, n, share in rows:
        print(f"| {name} | {s:,.0f} | {n:,.0f} | {s / n:.2f} | {share} |")
    print(
        f"| nlp.update, {size} docs | {sru_train['words_per_s']:,.0f} ({sru_train['updates_per_s']:.2f} updates/s)"
        f" | {ner_train['words_per_s']:,.0f} ({ner_train['updates_per_s']:.2f} updates/s)"
        f" | {sru_train['words_per_s'] / ner_train['words_per_s']:.2f} | |"
    )
    if args.json:
        with open(args.json, "w", encoding="utf8") as file_:
            json.dump(results, file_, indent=2)


if __name__ == "__main__":
    main()
