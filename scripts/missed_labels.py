"""What a model says on a corpus's gold mentions, every predicted label counted
(``evaluate`` counts only the labels the corpus annotates): each gold span of
PATH, given the model's LABEL, is sorted as
:func:`spacy_sru_ner.confusion.classify_mentions` sorts mentions (correct;
wrong_label: the same span with other labels; wrong_boundary: a LABEL span
overlapping it; wrong_both: only spans of other labels overlapping it; missed),
and ``wrong_label_as`` counts the labels of the wrong_label spans (a span with
two labels counts for both).

    python scripts/missed_labels.py MODEL corpus/bc2gm/test.spacy --label Gene [--output X.json]

Written for the five-corpus model on BC2GM: does it miss genes, or call them DNA or
Chemical as JNLPBA's and BC5CDR's guidelines would?
"""
import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Iterator, List, Tuple

import spacy
from spacy.tokens import Doc, DocBin, Span

from spacy_sru_ner.confusion import ERROR_KINDS, classify_mentions


def gold_and_predicted(model: Path, path: Path, spans_key: str = "sru_ner") -> Iterator[Tuple[Doc, Doc, List[Span]]]:
    """Each document of the corpus ``path`` with ``model``'s annotation of its own tokens,
    and its gold spans (``spans_key``, else its entities)."""
    nlp = spacy.load(model)
    golds = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    if not golds:
        raise ValueError(f"{path}: no documents")
    texts = (Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in golds)
    for gold, pred in zip(golds, nlp.pipe(texts)):
        yield gold, pred, list(gold.spans[spans_key] if spans_key in gold.spans else gold.ents)


def missed_labels(model: Path, path: Path, label: str, spans_key: str = "sru_ner") -> dict:
    counts: Counter = Counter()
    confusions: Counter = Counter()
    for gold, pred, spans in gold_and_predicted(model, path, spans_key):
        doc_counts, doc_confusions = classify_mentions(
            [(s.start, s.end, label) for s in spans], [(s.start, s.end, s.label_) for s in pred.spans[spans_key]]
        )
        counts.update(doc_counts)
        confusions.update(doc_confusions)
    kinds = {kind: counts[(label, kind)] for kind in ERROR_KINDS if kind != "spurious"}
    wrong_label_as = Counter({pred: n for (_, pred), n in confusions.items()})
    return {"gold": sum(kinds.values()), **kinds, "wrong_label_as": dict(wrong_label_as.most_common())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("path", type=Path, help="a corpus file (.spacy) whose gold spans are all of LABEL")
    parser.add_argument("--label", required=True, help="the model's label for the corpus's mentions")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    counts = missed_labels(args.model, args.path, args.label)
    text = json.dumps(counts, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n", encoding="utf8")


if __name__ == "__main__":
    main()
