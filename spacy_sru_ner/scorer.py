"""Exact-match span scoring (micro and per label), aware of annotated label sets."""
from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, Set, Tuple

from spacy.scorer import PRFScore
from spacy.training import Example
from spacy.util import registry

from .contract import DEFAULT_SPANS_KEY, get_annotated_labels, get_corpus_name, gold_spans

SpanKey = Tuple[int, int, str]


def _example_spans(example: Example, spans_key: str) -> Tuple[Set[SpanKey], Set[SpanKey]]:
    """(gold, predicted) spans in the reference's token offsets, restricted to
    the labels the reference's corpus annotates."""
    gold = {(s.start, s.end, s.label_) for s in gold_spans(example.reference, spans_key)}
    pred_spans = list(example.predicted.spans.get(spans_key, []))
    aligned = example.get_aligned_spans_x2y(pred_spans, allow_overlap=True)
    pred = {(s.start, s.end, s.label_) for s in aligned}
    annotated = get_annotated_labels(example.reference)
    if annotated is not None:
        keep = set(annotated)
        gold = {s for s in gold if s[2] in keep}
        pred = {s for s in pred if s[2] in keep}
    return gold, pred


def score_spans(examples: Iterable[Example], spans_key: str = DEFAULT_SPANS_KEY, **kwargs: Any) -> Dict[str, Any]:
    """Exact-match P/R/F of ``doc.spans[spans_key]`` against the gold spans.

    Returns spaCy's span score names: ``spans_{key}_p``, ``_r``, ``_f`` (micro)
    and ``spans_{key}_per_type`` ({label: {"p", "r", "f"}}). Predictions of
    labels that an example's corpus does not annotate are not scored. When the
    references name their corpus (the multi-corpus reader does), also
    ``spans_{key}_per_corpus`` ({corpus: {"p", "r", "f"}}), e.g. to follow each
    corpus's dev F in a multi-corpus model's training log, and
    ``spans_{key}_corpus_macro_f``, the mean of the corpora's F: weight it in
    ``[training.score_weights]`` to select checkpoints (and count patience) by
    the macro-F over corpora instead of the micro-F over all mentions.
    """
    micro = PRFScore()
    per_type: Dict[str, PRFScore] = defaultdict(PRFScore)
    per_corpus: Dict[str, PRFScore] = defaultdict(PRFScore)
    for example in examples:
        gold, pred = _example_spans(example, spans_key)
        corpus = get_corpus_name(example.reference)
        scores = [micro] if corpus is None else [micro, per_corpus[corpus]]
        for span in pred:
            hit = span in gold
            for score in scores + [per_type[span[2]]]:
                score.tp += hit
                score.fp += not hit
        for span in gold - pred:
            for score in scores + [per_type[span[2]]]:
                score.fn += 1
    prefix = f"spans_{spans_key}"
    result: Dict[str, Any] = {
        f"{prefix}_p": micro.precision,
        f"{prefix}_r": micro.recall,
        f"{prefix}_f": micro.fscore,
        f"{prefix}_per_type": {label: score.to_dict() for label, score in sorted(per_type.items())},
    }
    if per_corpus:
        result[f"{prefix}_per_corpus"] = {name: score.to_dict() for name, score in sorted(per_corpus.items())}
        result[f"{prefix}_corpus_macro_f"] = sum(score.fscore for score in per_corpus.values()) / len(per_corpus)
    return result


@registry.scorers("spacy_sru_ner.span_scorer.v1")
def make_span_scorer() -> Callable[..., Dict[str, Any]]:
    return score_spans
