"""What a model says on the gold mentions it misses: for each gold span of CORPUS (its
test file) that the model does not predict with LABEL, whether it predicts the same span
with other labels (counted per label set), a LABEL span overlapping it (a boundary error),
or nothing there.

    python scripts/missed_labels.py MODEL corpus/bc2gm/test.spacy --label Gene [--output X.json]

Written for the five-corpus model on BC2GM: does it miss genes, or call them DNA or
Chemical as JNLPBA's and BC5CDR's guidelines would?
"""
import argparse
import collections
import json
from pathlib import Path

import spacy
from spacy.tokens import Doc, DocBin


def missed_labels(model: Path, path: Path, label: str, spans_key: str = "sru_ner") -> dict:
    nlp = spacy.load(model)
    golds = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    if not golds:
        raise ValueError(f"{path}: no documents")
    texts = (Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in golds)
    counts = {"gold": 0, "found": 0, "same_span_other_labels": collections.Counter(), "overlapping": 0, "nothing": 0}
    for gold, pred in zip(golds, nlp.pipe(texts)):
        spans = gold.spans[spans_key] if spans_key in gold.spans else gold.ents
        by_span = collections.defaultdict(set)
        for span in pred.spans[spans_key]:
            by_span[(span.start, span.end)].add(span.label_)
        found = {key for key, labels in by_span.items() if label in labels}
        for span in spans:
            key = (span.start, span.end)
            counts["gold"] += 1
            if key in found:
                counts["found"] += 1
            elif key in by_span:
                counts["same_span_other_labels"][",".join(sorted(by_span[key]))] += 1
            elif any(start < key[1] and key[0] < end for start, end in found):
                counts["overlapping"] += 1
            else:
                counts["nothing"] += 1
    counts["same_span_other_labels"] = dict(counts["same_span_other_labels"].most_common())
    return counts


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
