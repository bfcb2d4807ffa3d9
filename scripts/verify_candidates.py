"""Would a span classifier fix ``sru_ner``'s precision? An offline test.

    python scripts/verify_candidates.py SRU_MODEL SPANCAT_MODEL DATA.spacy --output DIR

``sru_ner``'s spans (at decision thresholds ``--thresholds``), with or without
their boundary variants (start and end moved by up to ``--variants`` words),
are handed to a trained ``spancat`` as its only candidates, and a candidate is
kept with every label whose ``spancat`` probability reaches ``--keep``: the
decoder proposes, the span classifier decides. Scored with exact match
(micro P/R/F over the data's spans) beside each model alone, into
DIR/verify.json and DIR/summary.md. If the pair did not beat ``spancat``
alone, a span-level rescoring head inside ``sru_ner`` is not worth building.
"""
import argparse
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy
import spacy
import srsly
from spacy.scorer import PRFScore
from spacy.tokens import Doc, DocBin
from thinc.types import Ragged

from spacy_sru_ner.contract import gold_spans
from spacy_sru_ner.pipe import SlotNER

Labelled = Set[Tuple[int, int, str]]


def prf(pred: Sequence[Labelled], gold: Sequence[Labelled]) -> Dict[str, float]:
    """Exact-match micro P/R/F over the docs (spaCy's PRFScore, as the project's scorer)."""
    score = PRFScore()
    for p, g in zip(pred, gold):
        score.score_set(p, g)
    return score.to_dict()


def spancat_scores(spancat, docs: List[Doc], candidates: List[List[Tuple[int, int]]], batch: int = 256) -> List[numpy.ndarray]:
    """``spancat``'s label probabilities of the given (start, end) candidates, per doc."""
    out: List[numpy.ndarray] = []
    for i in range(0, len(docs), batch):
        cands = candidates[i : i + batch]
        lengths = numpy.array([len(c) for c in cands], dtype="int32")
        data = numpy.array([s for c in cands for s in c], dtype="int32").reshape(-1, 2)
        if not len(data):
            out += [numpy.zeros((0, len(spancat.labels)), dtype="float32")] * len(cands)
            continue
        ops = spancat.model.ops
        scores = ops.to_numpy(spancat.model.predict((docs[i : i + batch], Ragged(ops.asarray2i(data), ops.asarray1i(lengths)))))
        out += numpy.split(scores, numpy.cumsum(lengths)[:-1])
    return out


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sru_model", type=Path)
    parser.add_argument("spancat_model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.2])
    parser.add_argument("--keep", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--variants", type=int, default=1)
    args = parser.parse_args(argv)
    sru = spacy.load(args.sru_model)
    spc = spacy.load(args.spancat_model)
    found = [(name, proc) for name, proc in sru.pipeline if isinstance(proc, SlotNER)]
    if len(found) != 1:
        raise SystemExit(f"✘ expected one sru_ner component in {args.sru_model}, found {len(found)}")
    (sru_name, pipe), spancat = found[0], spc.get_pipe("spancat")
    references = list(DocBin().from_disk(args.data).get_docs(sru.vocab))
    if not references:
        raise SystemExit(f"✘ no docs in {args.data}")
    gold = [{(s.start, s.end, s.label_) for s in gold_spans(doc, pipe.key)} for doc in references]
    words = [[t.text for t in doc] for doc in references]
    sru_docs = [Doc(sru.vocab, words=w) for w in words]
    for name, proc in sru.pipeline[: sru.pipe_names.index(sru_name)]:
        sru_docs = list(proc.pipe(sru_docs))
    probs = [window for i in range(0, len(sru_docs), 256) for window in pipe.predict_probs(sru_docs[i : i + 256])]
    spc_docs = list(spc.pipe([Doc(spc.vocab, words=w) for w in words], disable=["spancat"]))
    labels = list(spancat.labels)
    size = max(int(n) for n in (spc.get_pipe_config("spancat").get("suggester", {}).get("sizes") or [8]))
    ngrams = [[(s, e) for s in range(len(w)) for e in range(s + 1, min(len(w), s + size) + 1)] for w in words]

    def kept(cands, scores, keep: float) -> List[Labelled]:
        return [{(s, e, labels[j]) for (s, e), row in zip(c, sc) for j in numpy.flatnonzero(row >= keep)} for c, sc in zip(cands, scores)]

    result: Dict[str, Dict] = {"spancat alone": prf(kept(ngrams, spancat_scores(spancat, spc_docs, ngrams), float(spancat.cfg["threshold"])), gold)}
    for threshold in args.thresholds:
        spans = pipe.spans_from_probs(probs, threshold)
        result[f"sru_ner alone, threshold {threshold}"] = prf([{(s, e, l) for s, e, l, _ in sp} for sp in spans], gold)
        for variants in sorted({0, args.variants}):
            cands = []
            for sp, w in zip(spans, words):
                found = {(s + a, e + b) for s, e, _, _ in sp for a in range(-variants, variants + 1) for b in range(-variants, variants + 1)}
                cands.append(sorted((s, e) for s, e in found if 0 <= s < e <= len(w)))
            scores = spancat_scores(spancat, spc_docs, cands)
            reach = prf([{(s, e, l) for s, e in c for l in labels} for c in cands], gold)["r"]
            for keep in args.keep:
                key = f"sru_ner threshold {threshold}, variants ±{variants} (unlabelled recall {100 * reach:.1f}), spancat keeps >= {keep}"
                result[key] = prf(kept(cands, scores, keep), gold)
    args.output.mkdir(parents=True, exist_ok=True)
    srsly.write_json(args.output / "verify.json", result)
    lines = [f"{args.data}: micro P / R / F", "", "| candidates and decision | P / R / F |", "|---|---|"]
    lines += [f"| {k} | {100 * v['p']:.1f} / {100 * v['r']:.1f} / **{100 * v['f']:.1f}** |" for k, v in result.items()]
    (args.output / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
