"""Speed and memory of sru_ner against spaCy's ner with the same tok2vec, in one run.

Trains both components briefly on the bundled GENIA sample (speed does not need a
good model, but sru_ner's decoding length depends on what it predicts, so it is
trained a little), then measures on the same texts and prints three tables:

* inference: ``nlp.pipe`` words/s at each batch size, the ratio, and the share of
  sru_ner's time spent in its PyTorch decoder;
* training: ``nlp.update`` updates/s and words/s on the same fixed batches;
* memory: peak resident memory added while annotating all texts at the largest
  batch size and during a long training run (``--memory-updates``, hundreds of
  updates, so that what grows over a run shows), each measured in a forked
  child, so one measurement's allocations do not hide the next one's.

    python benchmarks/speed.py [--steps 150] [--repeat 3] [--threads 1] [--batch-sizes 1,32,256]
        [--train-batch 16] [--train-updates 30] [--memory-updates 300] [--texts corpus/x/test.spacy]
        [--gpu-id 0]

``spacy benchmark speed MODEL DATA`` is a cross-check of the inference numbers on a
saved pipeline.
"""
import argparse
import os
import platform
import random
import time
from functools import partial
from typing import Callable, Dict, List

import spacy
import torch
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import filter_spans

from spacy_sru_ner.corpora import cached_msgpack_decoders
from spacy_sru_ner.demo import load_demo_docs

from memory import peak_memory_added  # benchmarks/memory.py, beside this script

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


def build(factory: str, docs, steps: int, hidden_width: int):
    """A blank pipeline with one component, trained ``steps`` updates of 16 docs."""
    nlp = spacy.blank("en")
    if factory == "sru_ner":
        nlp.add_pipe("sru_ner", config={"model": {"tok2vec": TOK2VEC, "hidden_width": hidden_width}})
    else:
        nlp.add_pipe("ner", config={"model": {"tok2vec": TOK2VEC}})
    examples = []
    for doc in docs:
        ref = doc.copy()
        if factory == "ner":
            ref.ents = filter_spans(list(doc.spans["sru_ner"]))
        examples.append(Example(nlp.make_doc(doc.text), ref))
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(0)
    for _ in range(steps):
        nlp.update(rng.sample(examples, 16), sgd=optimizer)
    return nlp, examples, optimizer


def pipe_seconds(nlp: spacy.Language, texts: List[str], batch_size: int) -> float:
    start = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=batch_size):
        pass
    return time.perf_counter() - start


def decoder_share(nlp: spacy.Language, texts: List[str], batch_size: int) -> float:
    """Fraction of sru_ner's pipe time spent in its decoder (the numpy path on
    CPU, ``forward_predict`` otherwise)."""
    decoder = nlp.get_pipe("sru_ner").model.get_ref("decoder").shims[0]._model
    spent = [0.0]
    originals = {name: getattr(decoder, name) for name in ("forward_predict", "predict_numpy")}

    def timed(original):
        def run(*args, **kwargs):
            start = time.perf_counter()
            out = original(*args, **kwargs)
            if getattr(getattr(out, "probs", None), "is_cuda", False):
                torch.cuda.synchronize()
            spent[0] += time.perf_counter() - start
            return out

        return run

    for name, original in originals.items():
        setattr(decoder, name, timed(original))
    try:
        total = pipe_seconds(nlp, texts, batch_size)
    finally:
        for name in originals:
            delattr(decoder, name)
    return spent[0] / total


def update_seconds(nlp: spacy.Language, batches: List[List[Example]], optimizer) -> float:
    start = time.perf_counter()
    for batch in batches:
        nlp.update(batch, sgd=optimizer)
    return time.perf_counter() - start


def best_of(repeat: int, timers: Dict[str, Callable[[], float]]) -> Dict[str, float]:
    """Best time of each timer over ``repeat`` rounds, the timers interleaved in
    each round so that a drift in machine speed affects all alike."""
    best = {name: float("inf") for name in timers}
    for _ in range(repeat):
        for name, timer in timers.items():
            best[name] = min(best[name], timer())
    return best


def load_texts(path: str) -> List[str]:
    if not path:
        return [d.text for d in load_demo_docs("dev")] + [d.text for d in load_demo_docs("train")]
    nlp = spacy.blank("en")
    with cached_msgpack_decoders():
        return [doc.text for doc in DocBin().from_disk(path).get_docs(nlp.vocab)]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as file_:
            for line in file_:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150, help="training updates per component before timing")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--batch-sizes", default="1,32,256")
    parser.add_argument("--train-batch", type=int, default=16, help="docs per timed training update")
    parser.add_argument("--train-updates", type=int, default=30, help="timed training updates")
    parser.add_argument("--memory-updates", type=int, default=300, help="training updates of the memory run")
    parser.add_argument("--hidden-width", type=int, default=128, help="sru_ner decoder width")
    parser.add_argument("--texts", default="", help=".spacy file whose texts are annotated (default: GENIA sample)")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to run both on (no memory table then)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    random.seed(0)
    spacy.util.fix_random_seed(0)
    train = load_demo_docs("train")
    texts = load_texts(args.texts)
    built = {name: build(name, train, args.steps, args.hidden_width) for name in ("sru_ner", "ner")}
    models = {name: nlp for name, (nlp, _, _) in built.items()}
    n_words = sum(len(models["ner"].make_doc(t)) for t in texts)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    inference: List[Dict] = []
    for batch_size in batch_sizes:
        seconds = best_of(args.repeat, {name: partial(pipe_seconds, nlp, texts, batch_size) for name, nlp in models.items()})
        share = decoder_share(models["sru_ner"], texts, batch_size)
        inference.append({"batch": batch_size, **{name: n_words / t for name, t in seconds.items()}, "share": share})

    rng = random.Random(1)
    picks = [rng.sample(range(len(train)), args.train_batch) for _ in range(args.train_updates)]
    timers = {}
    for name, (nlp, examples, optimizer) in built.items():
        batches = [[examples[i] for i in pick] for pick in picks]
        nlp.update(batches[0], sgd=optimizer)  # warm-up
        timers[name] = partial(update_seconds, nlp, batches, optimizer)
    train_words = sum(len(train[i]) for pick in picks for i in pick)
    training = {
        name: {"updates": len(picks) / t, "words": train_words / t} for name, t in best_of(args.repeat, timers).items()
    }

    largest = max(batch_sizes)
    memory = {}
    if args.gpu_id < 0:  # measured in forked children, and CUDA does not survive a fork
        memory_rng = random.Random(2)
        memory_picks = [memory_rng.sample(range(len(train)), args.train_batch) for _ in range(args.memory_updates)]
        for name, (nlp, examples, optimizer) in built.items():
            batches = [[examples[i] for i in pick] for pick in memory_picks]
            memory[name] = {
                "pipe": peak_memory_added(lambda: list(nlp.pipe(texts, batch_size=largest))),
                "train": peak_memory_added(lambda: [nlp.update(b, sgd=optimizer) for b in batches]),
            }

    source = args.texts or "GENIA sample"
    device = f"GPU {torch.cuda.get_device_name(args.gpu_id)}" if args.gpu_id >= 0 else f"torch threads {args.threads}"
    print(
        f"{len(texts)} texts, {n_words} words ({source}); {cpu_name()}, {os.cpu_count()} cores, "
        f"{device}; same tok2vec (MultiHashEmbed 96 + CNN depth 4); "
        f"sru_ner hidden_width {args.hidden_width}"
    )
    print()
    print("| batch size | sru_ner words/s | ner words/s | sru_ner / ner | decoder share of sru_ner time |")
    print("|---|---|---|---|---|")
    for r in inference:
        print(f"| {r['batch']} | {r['sru_ner']:,.0f} | {r['ner']:,.0f} | {r['sru_ner'] / r['ner']:.2f} | {100 * r['share']:.0f}% |")
    print()
    s, n = training["sru_ner"], training["ner"]
    print(f"| training ({args.train_batch} docs per update) | sru_ner | ner | sru_ner / ner |")
    print("|---|---|---|---|")
    print(f"| updates/s | {s['updates']:.2f} | {n['updates']:.2f} | {s['updates'] / n['updates']:.2f} |")
    print(f"| words/s | {s['words']:,.0f} | {n['words']:,.0f} | {s['words'] / n['words']:.2f} |")
    if not memory:
        return
    print()
    print("| peak memory added (MB) | sru_ner | ner |")
    print("|---|---|---|")
    print(f"| nlp.pipe, all texts, batch size {largest} | {memory['sru_ner']['pipe']:.0f} | {memory['ner']['pipe']:.0f} |")
    print(f"| {args.memory_updates} training updates | {memory['sru_ner']['train']:.0f} | {memory['ner']['train']:.0f} |")


if __name__ == "__main__":
    main()
