"""Exact-match span scoring (micro and per label), aware of annotated label sets."""
from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from spacy.scorer import PRFScore
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from .corpora import get_annotated_labels, get_corpus_name

SpanKey = Tuple[int, int, str]


def get_gold_spans(doc: Doc, spans_key: str) -> Iterable[Span]:
    """Gold spans of a reference doc: ``doc.spans[spans_key]``, else ``doc.ents``."""
    if spans_key in doc.spans:
        return doc.spans[spans_key]
    return doc.ents


def _example_spans(example: Example, spans_key: str) -> Tuple[Set[SpanKey], Set[SpanKey]]:
    """(gold, predicted) spans in the reference's token offsets, restricted to
    the labels the reference's corpus annotates."""
    gold = {(s.start, s.end, s.label_) for s in get_gold_spans(example.reference, spans_key)}
    pred_spans = list(example.predicted.spans.get(spans_key, []))
    aligned = example.get_aligned_spans_x2y(pred_spans, allow_overlap=True)
    pred = {(s.start, s.end, s.label_) for s in aligned}
    annotated = get_annotated_labels(example.reference)
    if annotated is not None:
        keep = set(annotated)
        gold = {s for s in gold if s[2] in keep}
        pred = {s for s in pred if s[2] in keep}
    return gold, pred


def score_spans(examples: Iterable[Example], spans_key: str = "sru_ner", **kwargs: Any) -> Dict[str, Any]:
    """Exact-match P/R/F of ``doc.spans[spans_key]`` against the gold spans.

    Returns spaCy's span score names: ``spans_{key}_p``, ``_r``, ``_f`` (micro)
    and ``spans_{key}_per_type`` ({label: {"p", "r", "f"}}). Predictions of
    labels that an example's corpus does not annotate are not scored.
    """
    micro = PRFScore()
    per_type: Dict[str, PRFScore] = defaultdict(PRFScore)
    for example in examples:
        gold, pred = _example_spans(example, spans_key)
        for span in pred:
            if span in gold:
                micro.tp += 1
                per_type[span[2]].tp += 1
            else:
                micro.fp += 1
                per_type[span[2]].fp += 1
        for span in gold - pred:
            micro.fn += 1
            per_type[span[2]].fn += 1
    prefix = f"spans_{spans_key}"
    return {
        f"{prefix}_p": micro.precision,
        f"{prefix}_r": micro.recall,
        f"{prefix}_f": micro.fscore,
        f"{prefix}_per_type": {label: score.to_dict() for label, score in sorted(per_type.items())},
    }


def score_by_corpus(
    examples: Iterable[Example], spans_key: str = "sru_ner", default_corpus: str = "corpus"
) -> Dict[str, Dict[str, Any]]:
    """Scores as :func:`score_spans`, separately for each corpus (the corpus
    name recorded on the reference docs, else ``default_corpus``)."""
    groups: Dict[str, List[Example]] = defaultdict(list)
    for example in examples:
        groups[get_corpus_name(example.reference) or default_corpus].append(example)
    return {name: score_spans(egs, spans_key=spans_key) for name, egs in groups.items()}


@registry.scorers("spacy_sru_ner.span_scorer.v1")
def make_span_scorer() -> Callable[..., Dict[str, Any]]:
    return score_spans
