"""Inference speed of trained pipelines on the same texts, side by side, in one run.

    python benchmarks/pipeline_speed.py corpus/genia_fm/test.spacy \\
        "sru_ner, depth 4=training/genia_seeds/seed_0/genia_fm/model-best" \\
        "sru_ner, depth 8=training/genia_encoder/depth_8_seed_0/genia_fm/model-best" \\
        [--batch-size 128] [--repeat 3] [--output speed.md]

Each pipeline runs ``nlp.pipe`` over the corpus's texts ``--repeat`` times after one
warm-up batch; the table gives the median words/s (and the slowest and fastest run).
Pin the threads yourself (``OMP_NUM_THREADS=1 taskset -c 0 ...``) so that runs compare.
"""
import argparse
import statistics
import time
from pathlib import Path
from typing import List, Optional, Tuple

from spacy_sru_ner.named_args import named_path


def read_texts(path: Path) -> Tuple[List[str], int]:
    """The texts of a .spacy corpus and their number of words."""
    import spacy
    from spacy.tokens import DocBin

    if not path.is_file():
        raise FileNotFoundError(f"pipeline_speed: no corpus at {path}")
    docs = list(DocBin().from_disk(path).get_docs(spacy.blank("en").vocab))
    if not docs:
        raise ValueError(f"pipeline_speed: {path} holds no documents")
    return [doc.text for doc in docs], sum(len(doc) for doc in docs)


def words_per_second(model: Path, texts: List[str], batch_size: int, repeat: int) -> List[float]:
    """words/s of ``nlp.pipe`` over ``texts``, once per repeat (the tokenizer's words)."""
    import spacy

    nlp = spacy.load(model)
    n_words = sum(len(doc) for doc in nlp.tokenizer.pipe(texts))
    list(nlp.pipe(texts[:batch_size], batch_size=batch_size))  # warm-up
    speeds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in nlp.pipe(texts, batch_size=batch_size):
            pass
        speeds.append(n_words / (time.perf_counter() - start))
    return speeds


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="a .spacy file whose texts are annotated")
    parser.add_argument("models", nargs="+", help="TITLE=PATH of a pipeline folder")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    try:
        models = [named_path(arg) for arg in args.models]
    except ValueError as err:
        parser.error(str(err))
    texts, n_words = read_texts(args.corpus)
    import torch

    lines = [
        f"{len(texts):,} texts, {n_words:,} words of {args.corpus}; batch size {args.batch_size}; "
        f"median of {args.repeat} runs; torch threads {torch.get_num_threads()}",
        "",
        "| pipeline | words/s (median) | slowest / fastest run |",
        "|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for title, path in models:
        speeds = words_per_second(path, texts, args.batch_size, args.repeat)
        lines.append(f"| {title} | {statistics.median(speeds):,.0f} | {min(speeds):,.0f} / {max(speeds):,.0f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text, encoding="utf8")


if __name__ == "__main__":
    main()
