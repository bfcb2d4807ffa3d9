"""Transition actions of SRU-NER: vocabulary, oracle (spans -> rows) and decoding.

Pure Python/numpy; no spaCy or model state. A *span* is a tuple
``(start, end, label)`` of token offsets, ``end`` exclusive, over a sequence of
``n`` words. A *row* is one decoding step: a 0/1 vector over the action
vocabulary that is either ``{SHIFT}``, ``{EOA}``, or a non-empty set of
distinct TRANSITION/REDUCE actions.
"""
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

import numpy

Span = Tuple[int, int, str]
ScoredSpan = Tuple[int, int, str, float]

EOA = 0
SHIFT = 1
N_SPECIAL = 2
#: joins a label and its same-label nesting depth in the decoder's own labels
#: (``protein#1``: a protein mention inside another protein mention)
NEST_SEP = "#"


@dataclass(frozen=True)
class ActionVocab:
    """Action ids for a label set: 0 = EOA, 1 = SHIFT, then per label (in the
    given order) TRANSITION(label) = 2 + 2i and REDUCE(label) = 3 + 2i."""

    labels: Tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"Duplicate labels in action vocabulary: {self.labels}")

    @property
    def n_actions(self) -> int:
        return N_SPECIAL + 2 * len(self.labels)

    def label_id(self, label: str) -> int:
        try:
            return self._index[label]
        except KeyError:
            raise KeyError(
                f"Unknown label '{label}'. Known labels: {list(self.labels)}. "
                "Add it to the component (add_label / initialize labels) first."
            ) from None

    @property
    def _index(self) -> Dict[str, int]:
        index = self.__dict__.get("_index_cache")
        if index is None:
            index = {label: i for i, label in enumerate(self.labels)}
            object.__setattr__(self, "_index_cache", index)
        return index

    def transition(self, label: str) -> int:
        return N_SPECIAL + 2 * self.label_id(label)

    def reduce(self, label: str) -> int:
        return N_SPECIAL + 2 * self.label_id(label) + 1

    def is_transition(self, action: int) -> bool:
        return action >= N_SPECIAL and (action - N_SPECIAL) % 2 == 0

    def action_label(self, action: int) -> str:
        return self.labels[(action - N_SPECIAL) // 2]

    def action_names(self) -> List[str]:
        names = ["EOA", "SHIFT"]
        for label in self.labels:
            names += [f"TR({label})", f"RE({label})"]
        return names

    def label_action_mask(self, labels: Iterable[str]) -> numpy.ndarray:
        """A 0/1 vector marking the TRANSITION and REDUCE actions of ``labels``."""
        mask = numpy.zeros((self.n_actions,), dtype="float32")
        for label in labels:
            mask[self.transition(label)] = 1.0
            mask[self.reduce(label)] = 1.0
        return mask


def spans_to_actions(n_words: int, spans: Iterable[Span], vocab: ActionVocab) -> List[int]:
    """The oracle's flat action sequence for ``spans`` over ``n_words`` words.

    Spans are taken longest first (ties by ascending start, end, label);
    TRANSITIONs are appended to the bucket of the span's start word and REDUCEs
    put at the front of the bucket of its end, so that at one position shorter
    spans close before longer ones and longer spans open first. Each word's
    bucket ends with SHIFT; a trailing bucket after the last word holds the
    REDUCEs of spans ending there; EOA closes the sequence. Duplicate spans are
    kept once.
    """
    unique = sorted(set(_check_span(s, n_words) for s in spans), key=lambda s: (s[0], s[1], s[2]))
    unique.sort(key=lambda s: s[1] - s[0], reverse=True)  # stable: longest first
    buckets: List[List[int]] = [[] for _ in range(n_words + 1)]
    for start, end, label in unique:
        buckets[start].append(vocab.transition(label))
        buckets[end].insert(0, vocab.reduce(label))
    actions: List[int] = []
    for i in range(n_words):
        actions.extend(buckets[i])
        actions.append(SHIFT)
    actions.extend(buckets[n_words])
    actions.append(EOA)
    return actions


def nested_labels(labels: Sequence[str], nest_depth: int) -> Dict[str, str]:
    """The decoder's labels for ``labels`` with ``nest_depth`` levels of
    same-label nesting, each mapped to its label: the labels themselves, then
    ``label#1`` .. ``label#nest_depth`` per label (in that order, so the
    actions of the labels themselves keep their ids)."""
    if nest_depth < 0:
        raise ValueError(f"nest_depth must be >= 0, got {nest_depth}.")
    names: Dict[str, str] = {label: label for label in labels}
    for depth in range(1, nest_depth + 1):
        for label in labels:
            name = f"{label}{NEST_SEP}{depth}"
            if name in names:
                raise ValueError(f"Label '{name}' clashes with the nesting label of '{label}' at depth {depth}.")
            names[name] = label
    return names


def label_nesting(spans: Iterable[Span], nest_depth: int) -> List[Span]:
    """``spans`` with each label replaced by its decoder label: a span inside
    ``d`` other spans of the same label (containing it, not equal to it) gets
    ``label#d``, with ``d`` capped at ``nest_depth`` (0: labels unchanged).

    Same-label nesting then becomes nesting of different labels, whose
    TRANSITIONs and REDUCEs the decoder tells apart (one stack per label)."""
    unique = sorted(set(spans))
    if nest_depth <= 0:
        return unique
    by_label: Dict[str, List[Span]] = defaultdict(list)
    for span in unique:
        by_label[span[2]].append(span)
    result = []
    for start, end, label in unique:
        depth = sum(1 for s, e, _ in by_label[label] if s <= start and end <= e and (s, e) != (start, end))
        depth = min(depth, nest_depth)
        result.append((start, end, f"{label}{NEST_SEP}{depth}" if depth else label))
    return result


def unnest_labels(spans: Iterable[ScoredSpan], base: Dict[str, str]) -> List[ScoredSpan]:
    """Decoder labels back to labels (``base``: decoder label -> label, as
    :func:`nested_labels`); a span found under several of them is kept once,
    with its best score. Sorted by (start, end, label)."""
    best: Dict[Span, float] = {}
    for start, end, label, score in spans:
        key = (start, end, base.get(label, label))
        if key not in best or score > best[key]:
            best[key] = score
    return [(s, e, l, best[(s, e, l)]) for s, e, l in sorted(best)]


def group_actions(actions: Sequence[int]) -> List[List[int]]:
    """Group a flat action list into multi-label steps (rows of action ids)."""
    rows: List[List[int]] = []
    previous: Optional[int] = None
    for action in actions:
        if action in (SHIFT, EOA):
            rows.append([action])
        elif previous is None or previous in (SHIFT, EOA) or action in rows[-1]:
            rows.append([action])
        else:
            rows[-1].append(action)
        previous = action
    return rows


def spans_to_rows(n_words: int, spans: Iterable[Span], vocab: ActionVocab) -> numpy.ndarray:
    """The gold multi-label action matrix (rows x n_actions, float32 0/1)."""
    rows = group_actions(spans_to_actions(n_words, spans, vocab))
    matrix = numpy.zeros((len(rows), vocab.n_actions), dtype="float32")
    for i, row in enumerate(rows):
        matrix[i, row] = 1.0
    return matrix


def rows_to_spans(rows: Iterable[Iterable[int]], vocab: ActionVocab, n_words: Optional[int] = None) -> List[Span]:
    """Decode action steps (each an iterable of action ids) back to spans.

    A step containing EOA stops decoding; a step containing SHIFT moves to the
    next word. Otherwise all REDUCEs of the step are applied first, then all
    TRANSITIONs. REDUCE(L) closes the most recently opened L span (one LIFO
    stack per label), emitting it if it is non-empty. Invalid sequences are
    repaired, never raised on: a REDUCE with no open span of its label is
    ignored, an empty span (closed at the word it was opened) is dropped,
    TRANSITIONs still open at the end are discarded, steps past ``n_words``
    SHIFTs only close spans, and duplicate spans are emitted once.

    Round trip: ``rows_to_spans(spans_to_rows(n, S))`` equals ``S`` for every
    span set in which no two spans of the same label cross (overlap without
    nesting); spans of different labels may cross freely. Two crossing spans of
    one label come back with their ends swapped, because of the LIFO stack.
    """
    return [(s, e, label) for s, e, label, _ in _decode(rows, vocab, n_words, None)]


def probs_to_spans(
    probs: numpy.ndarray,
    vocab: ActionVocab,
    threshold: Union[float, numpy.ndarray] = 0.5,
    n_words: Optional[int] = None,
) -> List[ScoredSpan]:
    """Greedy decoding of per-step action probabilities (steps x n_actions).

    A step's kind is its argmax (EOA: stop; SHIFT: next word); any other step
    takes every action with probability > ``threshold`` (one number, or one per
    TRANSITION/REDUCE action in action order). A span's score is the
    mean of its TRANSITION and REDUCE probabilities.
    """
    steps: List[List[int]] = []
    kinds = probs.argmax(axis=1)
    for t, kind in enumerate(kinds):
        if kind == EOA or kind == SHIFT:
            steps.append([int(kind)])
        else:
            active = numpy.nonzero(probs[t, N_SPECIAL:] > threshold)[0] + N_SPECIAL
            steps.append([int(a) for a in active])
    return list(_decode(steps, vocab, n_words, probs))


def limit_labels_per_span(
    spans: List[ScoredSpan], max_positive: Optional[int], group: Optional[Callable[[str], str]] = None
) -> List[ScoredSpan]:
    """Keep at most ``max_positive`` labels per (start, end), the highest
    scoring ones (ties: label order); ``None`` keeps every span. With
    ``group`` (label -> group name) the limit holds per (start, end, group):
    e.g. per corpus for corpus-prefixed labels. Order is kept."""
    if max_positive is None:
        return spans
    by_span: Dict[Tuple[int, int, str], List[ScoredSpan]] = defaultdict(list)
    for span in spans:
        by_span[span[0], span[1], group(span[2]) if group is not None else ""].append(span)
    keep = set()
    for candidates in by_span.values():
        if len(candidates) > max_positive:
            candidates = sorted(candidates, key=lambda s: -s[3])[:max_positive]
        keep.update(candidates)
    return [span for span in spans if span in keep]


def merge_heads(
    spans: List[ScoredSpan], rename: Callable[[str], str], head: Callable[[str], str]
) -> List[ScoredSpan]:
    """The spans with their labels renamed (e.g. ``bc2gm$Gene`` -> ``Gene``),
    where two spans of different heads (``head(label)``: ``bc2gm``, ``jnlpba``)
    that get the same new label overlap (share a word), only the higher-scored
    one is kept (ties: the earlier): one ``Gene`` span per mention, not one per
    corpus with each corpus's boundaries. Spans of one head, nested or not, are
    all kept. Order is kept."""
    kept: Dict[str, List[Tuple[int, int, str]]] = defaultdict(list)
    keep: Set[int] = set()
    for i in sorted(range(len(spans)), key=lambda i: -spans[i][3]):
        start, end, label, _ = spans[i]
        new, source = rename(label), head(label)
        if any(s < end and start < e and h != source for s, e, h in kept[new]):
            continue
        kept[new].append((start, end, source))
        keep.add(i)
    return [(s, e, rename(label), score) for i, (s, e, label, score) in enumerate(spans) if i in keep]


def _decode(
    rows: Iterable[Iterable[int]],
    vocab: ActionVocab,
    n_words: Optional[int],
    probs: Optional[numpy.ndarray],
) -> List[ScoredSpan]:
    stacks: Dict[str, List[Tuple[int, float]]] = {label: [] for label in vocab.labels}
    seen: Set[Span] = set()
    spans: List[ScoredSpan] = []
    word = 0
    for t, row in enumerate(rows):
        row = [int(a) for a in row]
        if EOA in row:
            break
        if SHIFT in row:
            word += 1
            continue
        if n_words is not None and word > n_words:
            continue
        for action in row:
            if action >= N_SPECIAL and not vocab.is_transition(action):
                stack = stacks[vocab.action_label(action)]
                if not stack:
                    continue
                start, p_open = stack.pop()
                span = (start, word, vocab.action_label(action))
                if start < word and span not in seen:
                    seen.add(span)
                    p_close = float(probs[t, action]) if probs is not None else 1.0
                    spans.append((start, word, span[2], (p_open + p_close) / 2))
        if n_words is not None and word >= n_words:
            continue
        for action in row:
            if action >= N_SPECIAL and vocab.is_transition(action):
                p_open = float(probs[t, action]) if probs is not None else 1.0
                stacks[vocab.action_label(action)].append((word, p_open))
    spans.sort(key=lambda s: (s[0], s[1], s[2]))
    return spans


def _check_span(span: Span, n_words: int) -> Span:
    start, end, label = span
    if not (0 <= start < end <= n_words):
        raise ValueError(f"Invalid span {span} for a sequence of {n_words} words: need 0 <= start < end <= n_words.")
    return (int(start), int(end), str(label))
