"""Pick spaCy ``spancat``'s threshold on dev data, as ``tune-threshold`` does for ``sru_ner``.

    python scripts/tune_spancat_threshold.py MODEL DEV.spacy [...] --output DIR

The baseline of a tuned ``sru_ner``: the span scores are computed once, every
threshold of the grid (0.10 .. 0.90, and the current one) is applied to them
(``SpanCategorizer.set_annotations`` reads ``cfg["threshold"]``), scored with
the same exact-match scorer, and the best (micro F) is saved with the pipeline
in DIR, with the scores in DIR/threshold.json. spancat has one threshold for
every label, so there is no per-label variant.
"""
import argparse
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import spacy
import srsly
from spacy.pipeline import SpanCategorizer

from spacy_sru_ner.evaluate import load_eval_examples
from spacy_sru_ner.threshold import DEFAULT_GRID, best_threshold, run_upstream, sweep_thresholds


def find_spancat(nlp) -> Tuple[str, SpanCategorizer]:
    """The pipeline's one spancat component and its name (as tune-threshold's find_component)."""
    found = [(name, pipe) for name, pipe in nlp.pipeline if isinstance(pipe, SpanCategorizer)]
    if len(found) != 1:
        raise SystemExit(f"✘ expected one spancat component in the pipeline {nlp.pipe_names}, found {len(found)}")
    return found[0]


def tune(nlp, paths: Sequence[Path], grid: Sequence[float] = DEFAULT_GRID, batch_size: int = 64) -> Dict[str, Any]:
    """Score each threshold of ``grid`` on the dev files and set the best in the pipeline."""
    name, pipe = find_spancat(nlp)
    examples = [eg for path in paths for group in load_eval_examples(nlp, path, spans_key=pipe.key).values() for eg in group]
    if not examples:
        raise SystemExit(f"✘ no dev examples in {[str(p) for p in paths]}")
    docs = run_upstream(nlp, name, [eg.predicted for eg in examples], batch_size)
    batches = [docs[i : i + batch_size] for i in range(0, len(docs), batch_size)]
    predictions = [pipe.predict(batch) for batch in batches]

    def annotate(threshold: float) -> None:
        pipe.cfg["threshold"] = threshold
        for batch, prediction in zip(batches, predictions):
            pipe.set_annotations(batch, prediction)

    previous = round(float(pipe.cfg["threshold"]), 6)
    prefix = f"spans_{pipe.key}"
    results = sweep_thresholds(examples, docs, pipe.key, [round(float(t), 6) for t in grid] + [previous], annotate)
    scores = {t: {k: float(r[f"{prefix}_{k}"]) for k in ("p", "r", "f")} for t, r in results.items()}
    best = best_threshold({t: s["f"] for t, s in scores.items()}, previous)
    pipe.cfg["threshold"] = best
    nlp.get_pipe_config(name)["threshold"] = best
    return {"component": name, "threshold": best, "previous": previous, "scores": scores}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a trained pipeline with one spancat component")
    parser.add_argument("data", type=Path, nargs="+", help="dev .spacy files")
    parser.add_argument("--output", type=Path, required=True, help="where to save the pipeline with the chosen threshold")
    args = parser.parse_args(argv)
    nlp = spacy.load(args.model)
    result = tune(nlp, args.data)
    for threshold, prf in result["scores"].items():
        mark = " <- chosen" if threshold == result["threshold"] else ""
        print(f"{threshold:.2f}  P {100 * prf['p']:5.1f}  R {100 * prf['r']:5.1f}  F {100 * prf['f']:5.1f}{mark}")
    nlp.to_disk(args.output)
    srsly.write_json(args.output / "threshold.json", {"model": str(args.model), "data": [str(p) for p in args.data], **{
        k: ({f"{t:.2f}": v for t, v in result[k].items()} if k == "scores" else result[k]) for k in result}})
    print(f"✔ threshold {result['previous']} -> {result['threshold']}: {args.output}")


if __name__ == "__main__":
    main()
