"""Where a model errs, per label: every gold mention is correct, missed, or
found with the wrong label, the wrong boundaries or both; every predicted
mention that touches no gold mention is spurious.

Only the labels a corpus annotates count (on both sides), as in
:func:`spacy_sru_ner.scorer.score_spans`. Spans are compared by character
offsets, so differently tokenised predicted docs are scored alike.
"""
from collections import Counter
from typing import Any, Dict, Iterable, List, Tuple

from spacy.training import Example

from .contract import DEFAULT_SPANS_KEY, get_annotated_labels, gold_spans

ERROR_KINDS = ("correct", "wrong_label", "wrong_boundary", "wrong_both", "missed", "spurious")
#: where a gold mention sits among the others: in none and holding none, holding
#: others, inside mentions of other labels only, inside a mention of its own label
NESTING_KINDS = ("flat", "outer", "inner_other_label", "inner_same_label")
Mention = Tuple[int, int, str]


def _overlaps(a: Mention, b: Mention) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def classify_mentions(gold: Iterable[Mention], predicted: Iterable[Mention]) -> Tuple[Counter, Counter]:
    """``(counts, confusions)``: ``counts[(label, kind)]`` over ERROR_KINDS (gold
    label for the first five, predicted label for spurious) and
    ``confusions[(gold label, predicted label)]`` for wrong_label mentions."""
    gold_set, pred_set = set(gold), set(predicted)
    counts: Counter = Counter()
    confusions: Counter = Counter()
    for g in gold_set:
        start, end, label = g
        if g in pred_set:
            kind = "correct"
        else:
            same_offsets = [p for p in pred_set if p[:2] == (start, end)]
            touching = [p for p in pred_set if _overlaps(g, p)]
            if same_offsets:
                kind = "wrong_label"
                confusions.update((label, p[2]) for p in same_offsets)
            elif any(p[2] == label for p in touching):
                kind = "wrong_boundary"
            elif touching:
                kind = "wrong_both"
            else:
                kind = "missed"
        counts[(label, kind)] += 1
    for p in pred_set - gold_set:
        if not any(_overlaps(p, g) for g in gold_set):
            counts[(p[2], "spurious")] += 1
    return counts, confusions


def nesting_kind(mention: Mention, gold: Iterable[Mention]) -> str:
    """Where ``mention`` sits among the ``gold`` mentions (one of NESTING_KINDS)."""
    start, end, label = mention
    around = [g for g in gold if g[:2] != (start, end) and g[0] <= start and end <= g[1]]
    if any(g[2] == label for g in around):
        return "inner_same_label"
    if around:
        return "inner_other_label"
    if any(g[:2] != (start, end) and start <= g[0] and g[1] <= end for g in gold):
        return "outer"
    return "flat"


def confusion_by_label(examples: Iterable[Example], spans_key: str = DEFAULT_SPANS_KEY) -> Dict[str, Any]:
    """Error counts per label over ``examples`` (predicted docs in
    ``doc.spans[spans_key]``, gold as :func:`gold_spans` reads them):
    ``{"per_label": {label: {kind: n}}, "confusions": [[gold, predicted, n], ...],
    "nesting": {nesting kind: {"gold": n, "found": n}}}`` (found: predicted
    with the right offsets and label; see :func:`nesting_kind`)."""
    counts: Counter = Counter()
    confusions: Counter = Counter()
    nesting: Counter = Counter()
    labels = set()
    for eg in examples:
        annotated = get_annotated_labels(eg.reference)
        keep = None if annotated is None else set(annotated)
        if keep is not None:
            labels.update(keep)
        gold = [(s.start_char, s.end_char, s.label_) for s in gold_spans(eg.reference, spans_key)]
        pred = [(s.start_char, s.end_char, s.label_) for s in eg.predicted.spans.get(spans_key, [])]
        if keep is not None:
            gold = [m for m in gold if m[2] in keep]
            pred = [m for m in pred if m[2] in keep]
        c, conf = classify_mentions(gold, pred)
        predicted = set(pred)
        for mention in set(gold):
            kind = nesting_kind(mention, gold)
            nesting[(kind, "gold")] += 1
            nesting[(kind, "found")] += mention in predicted
        counts.update(c)
        confusions.update(conf)
    labels.update(label for label, _ in counts)
    per_label = {label: {kind: counts[(label, kind)] for kind in ERROR_KINDS} for label in sorted(labels)}
    ranked: List[List[Any]] = [[g, p, n] for (g, p), n in confusions.most_common()]
    by_nesting = {kind: {"gold": nesting[(kind, "gold")], "found": nesting[(kind, "found")]} for kind in NESTING_KINDS}
    return {"per_label": per_label, "confusions": ranked, "nesting": by_nesting}


def format_confusion(errors: Dict[str, Any]) -> List[str]:
    """Text table lines of :func:`confusion_by_label`'s result."""
    header = f"{'errors':<32}" + "".join(f" {kind:>14}" for kind in ERROR_KINDS)
    lines = [header]
    for label, kinds in errors["per_label"].items():
        lines.append(f"{label:<32}" + "".join(f" {kinds[kind]:>14}" for kind in ERROR_KINDS))
    for gold, pred, n in errors["confusions"][:5]:
        lines.append(f"  {gold} predicted as {pred}: {n}")
    nesting = errors.get("nesting") or {}
    found = [
        f"{kind} {n['found']}/{n['gold']} ({100 * n['found'] / n['gold']:.1f})"
        for kind, n in nesting.items() if n["gold"]
    ]
    if found:
        lines.append("  recall by nesting: " + ", ".join(found))
    return lines
