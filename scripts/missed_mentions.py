"""Which mentions one model misses that another finds, by mention text: several
models decode the same corpus (on its own tokens), each scored on one label, and
for every pair of models the lower-cased texts of the gold mentions that the first
misses more often than the second (and of its spurious spans) are counted.

    python scripts/missed_mentions.py corpus/linnaeus/dev.spacy \\
        "five-corpus=training/.../multi/model-best:Species" \\
        "single=training/.../single_linnaeus/model-best:Species" [--top 15] [--output X.json]

Each model is ``TITLE=MODEL:LABEL``: the model's spans of LABEL count, and with a
plain LABEL its corpus-prefixed spans too (``Species`` matches ``linnaeus$Species``;
a model that writes one label under two corpus prefixes has both counted). The gold
label is not checked, so use it on a corpus with one label.
Written for LINNAEUS, where a handful of names repeated through one article decide
a model's score.
"""
import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from missed_labels import gold_and_predicted
from spacy_sru_ner.contract import strip_prefix
from spacy_sru_ner.named_args import named_path


def _model_spec(value: str) -> Tuple[str, Path, str]:
    title, path = named_path(value)
    model, sep, label = str(path).rpartition(":")
    if not sep or not model or not label:
        raise ValueError(f"expected TITLE=MODEL:LABEL, got {value!r}")
    return title, Path(model), label


def decode(model: Path, label: str, corpus: Path, spans_key: str = "sru_ner") -> Dict:
    """Gold and predicted ``label`` mentions (corpus prefix or not) of ``model`` on ``corpus``:
    counts and texts."""
    missed: Counter = Counter()
    spurious: Counter = Counter()
    tp = 0
    for gold, pred, spans in gold_and_predicted(model, corpus, spans_key):
        gold_set = {(s.start, s.end) for s in spans}
        pred_set = {(s.start, s.end) for s in pred.spans[spans_key] if label in (s.label_, strip_prefix(s.label_))}
        for start, end in gold_set - pred_set:
            missed[gold[start:end].text.lower()] += 1
        for start, end in pred_set - gold_set:
            spurious[gold[start:end].text.lower()] += 1
        tp += len(gold_set & pred_set)
    fp, fn = sum(spurious.values()), sum(missed.values())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"model": str(model), "label": label, "tp": tp, "fp": fp, "fn": fn, "p": p, "r": r, "f": f,
            "missed": missed, "spurious": spurious}


def compare(results: Dict[str, Dict], top: int = 15) -> Dict:
    """Per model its counts; per ordered pair the texts the first misses (or adds) more often."""
    out: Dict = {"models": {}, "pairs": {}}
    for title, res in results.items():
        out["models"][title] = {k: res[k] for k in ("model", "label", "tp", "fp", "fn", "p", "r", "f")}
    for a, res_a in results.items():
        for b, res_b in results.items():
            if a == b:
                continue
            out["pairs"][f"{a} vs {b}"] = {
                "missed_more": (res_a["missed"] - res_b["missed"]).most_common(top),
                "spurious_more": (res_a["spurious"] - res_b["spurious"]).most_common(top),
            }
    return out


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("models", nargs="+", help="TITLE=MODEL:LABEL")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--spans-key", default="sru_ner")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        specs = [_model_spec(value) for value in args.models]
    except ValueError as err:
        parser.error(str(err))
    results = {title: decode(model, label, args.corpus, args.spans_key) for title, model, label in specs}
    out = compare(results, args.top)
    out["corpus"] = str(args.corpus)
    for title, res in out["models"].items():
        print(f"{title}: P {100 * res['p']:.1f} R {100 * res['r']:.1f} F {100 * res['f']:.1f} "
              f"(found {res['tp']}, spurious {res['fp']}, missed {res['fn']})")
    for pair, diff in out["pairs"].items():
        print(f"{pair}: missed more often: " + ", ".join(f"{text} ({n})" for text, n in diff["missed_more"]))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(out, indent=2), encoding="utf8")


if __name__ == "__main__":
    main()
