"""Training targets and the loss of ``sru_ner``, built from the gold rows and
the decoder's logits (array code, numpy or cupy; no model state).

The decoder runs teacher-forced and reports, per step, which gold row it was
aligned with (``cursor``) and whether it delayed a gold SHIFT (``delay``, the
multi-corpus rule). The targets are then:

* the gold row the step was aligned with;
* for actions of labels the example's corpus does not annotate ("foreign"),
  ``min(1, project_coeff * p)`` with ``p`` the model's own probability (so with
  coefficient 1 they get no gradient), except at the gold EOA row;
* the gold SHIFT becomes the model's own SHIFT probability (no gradient) where
  the decoder delayed it, and where some foreign action's probability exceeds
  ``shift_bar``: the model may be opening or closing a span of a label this
  corpus does not annotate, so it is not taught to move on;
* the gold SHIFT is also the model's own SHIFT probability at the rows that
  ``release`` marks (a mention text of a foreign label starts or ends at the
  word: :mod:`.lexicon`);
* with disjoint labels (``exclusive``): where the gold row opens (closes) a
  mention of an own label, the TRANSITION (REDUCE) of a foreign label that is
  disjoint from it gets target 0 instead of the projection: a word that starts
  a chemical in BC5CDR does not start a species, though BC5CDR does not mark
  species;
* gold TRANSITION/REDUCE targets that are exactly 1 (never foreign ones) weigh
  ``positive_weight`` times as much as the other targets in the mean BCE.
"""
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy

from .actions import EOA, N_SPECIAL, SHIFT, ActionVocab


def sigmoid(xp: Any, x: Any) -> Any:
    return 1.0 / (1.0 + xp.exp(-x))


def step_targets(
    xp: Any,
    logits: Any,
    gold: Any,
    cursor: Any,
    delay: Any,
    foreign: Any,
    *,
    project_coeff: float = 1.0,
    shift_bar: float = 1.0,
    exclusive: Optional[Any] = None,
    release: Optional[Any] = None,
) -> Tuple[Any, Any]:
    """The targets of every decoder step.

    logits: (B, T, A) step logits. gold: (B, R, A) gold rows (zero-padded).
    cursor: (B, T) gold row of each step. delay: (B, T) 1 where the decoder
    delayed a gold SHIFT. foreign: (B, A) 1 for the actions of labels the
    window's corpus does not annotate. exclusive: optional (A, A) 0/1 matrix,
    1 where an own gold action rules out a foreign action (:func:`exclusive_actions`).
    release: optional (B, R) 0/1, 1 at gold SHIFT rows whose SHIFT is not taught.

    Returns ``(targets, positives)``: the (B, T, A) targets and a 0/1 mask of
    the gold TRANSITION/REDUCE targets that are exactly 1 (own labels only).
    """
    B, T, A = logits.shape
    batch = xp.arange(B)[:, None]
    rows = gold[batch, cursor.astype("int64")]  # (B, T, A)
    own = 1.0 - foreign[:, None, :]
    positives = (rows == 1.0) * own
    positives[..., :N_SPECIAL] = 0.0
    if not foreign.any():
        return rows, positives
    probs = sigmoid(xp, logits)
    not_eoa = 1.0 - rows[..., EOA : EOA + 1]
    projected = probs * foreign[:, None, :] * not_eoa
    if exclusive is not None:
        ruled_out = ((rows * own) @ exclusive > 0) * foreign[:, None, :]
        projected = projected * (1.0 - ruled_out)
    targets = rows + xp.minimum(project_coeff * projected, 1.0)
    foreign_best = projected.max(axis=-1)
    soft_shift = (rows[..., SHIFT] > 0) & ((delay > 0) | (foreign_best > shift_bar))
    if release is not None:
        soft_shift = soft_shift | (release[batch, cursor.astype("int64")] > 0)
    targets[..., SHIFT] = xp.where(soft_shift, probs[..., SHIFT], targets[..., SHIFT])
    return targets.astype(logits.dtype), positives


DisjointLabels = Sequence[Union[str, Sequence[str]]]


def disjoint_sets(disjoint_labels: DisjointLabels) -> List[Tuple[str, ...]]:
    """The sets of mutually disjoint labels that ``disjoint_labels`` names:
    its plain labels form one set and each list in it is a set of its own
    (``["A", "B", ["A", "C"]]``: A-B and A-C disjoint, B-C not)."""
    plain = tuple(entry for entry in disjoint_labels if isinstance(entry, str))
    nested = [tuple(entry) for entry in disjoint_labels if not isinstance(entry, str)]
    return [labels for labels in [plain, *nested] if labels]


def exclusive_actions(vocab: ActionVocab, disjoint_labels: DisjointLabels) -> Optional[numpy.ndarray]:
    """(A, A) matrix: 1 at [TR(X), TR(Y)] and [RE(X), RE(Y)] for two different
    labels X, Y of one set of ``disjoint_labels`` (:func:`disjoint_sets`:
    mentions of the two never start or end at the same word); None when no set
    holds two labels of the vocabulary."""
    matrix = numpy.zeros((vocab.n_actions, vocab.n_actions), dtype="float32")
    for labels in disjoint_sets(disjoint_labels):
        members = set(labels)
        known = [label for label in vocab.labels if label in members]
        for x in known:
            for y in known:
                if x != y:
                    matrix[vocab.transition(x), vocab.transition(y)] = 1.0
                    matrix[vocab.reduce(x), vocab.reduce(y)] = 1.0
    return matrix if matrix.any() else None


def weighted_bce(
    xp: Any, logits: Any, targets: Any, active: Any, positives: Any, positive_weight: float = 1.0
) -> Tuple[float, Any]:
    """Mean binary cross-entropy with logits over the actions of the active
    steps, positives weighted by ``positive_weight``. Returns the loss and its
    gradient with respect to the logits."""
    n_actions = logits.shape[-1]
    denom = float(max(float(active.sum()), 1.0)) * n_actions
    weights = active[..., None] * (1.0 + (positive_weight - 1.0) * positives) / denom
    return bce_with_logits(xp, logits, targets, weights)


def bce_with_logits(xp: Any, logits: Any, targets: Any, weights: Any) -> Tuple[float, Any]:
    """The weighted sum of the binary cross-entropies of ``logits`` against
    ``targets``, and its gradient with respect to the logits."""
    bce = xp.maximum(logits, 0) - logits * targets + xp.log1p(xp.exp(-xp.abs(logits)))
    d_logits = (sigmoid(xp, logits) - targets) * weights
    return float((bce * weights).sum()), d_logits.astype("float32")
