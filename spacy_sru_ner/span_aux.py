"""Training targets and loss of the auxiliary span head (``span_aux_width``).

The head is a second, training-only objective on the shared tok2vec: spaCy's
``spancat`` classifier (span vectors pooled by first, last, mean and max,
a maxout layer, one logistic output per decoder label) over every span of up
to ``max_length`` words of each decoding window, plus the longer gold spans.
Its purpose is to shape the encoder with the span-level signal that makes
``spancat`` precise; the decoder alone writes the predictions.

Masking as in the decoder's loss: a label that a window's corpus does not
annotate gets no target (weight 0) for that window's spans.
"""
from typing import Any, Dict, List, Sequence, Tuple

import numpy

from .loss import bce_with_logits

#: longest span (in words) offered to the head besides the gold spans: the
#: ngram sizes of the ``spancat`` baseline config
MAX_LENGTH = 8


def span_targets(
    windows: Sequence[Tuple[int, int, int]],
    window_spans: Sequence[Sequence[Tuple[int, int, str]]],
    own: numpy.ndarray,
    labels: Sequence[str],
    n_docs: int,
    max_length: int = MAX_LENGTH,
) -> Tuple[List[numpy.ndarray], numpy.ndarray, numpy.ndarray]:
    """The head's candidates, targets and target weights.

    windows: ``(doc index, start, end)`` per window. window_spans: per window,
    its gold spans ``(start, end, label)`` relative to the window start. own:
    (n_windows, n_labels) 1 where the window's corpus annotates the label.

    Returns per doc an (n, 2) int32 array of candidate (start, end) token
    offsets in the doc, and the (N, n_labels) float32 targets and weights of
    all candidates in doc order.
    """
    label_id: Dict[str, int] = {label: i for i, label in enumerate(labels)}
    per_doc: List[List[Tuple[int, int]]] = [[] for _ in range(n_docs)]
    rows: List[List[Tuple[int, int]]] = [[] for _ in range(n_docs)]  # (candidate, label) of the gold spans
    doc_windows: List[List[int]] = [[] for _ in range(n_docs)]
    for b, ((doc_i, start, end), gold) in enumerate(zip(windows, window_spans)):
        n = end - start
        index = {}
        for s in range(n):
            for e in range(s + 1, min(n, s + max_length) + 1):
                index[(s, e)] = len(per_doc[doc_i])
                per_doc[doc_i].append((start + s, start + e))
                doc_windows[doc_i].append(b)
        for s, e, label in gold:
            if (s, e) not in index:
                index[(s, e)] = len(per_doc[doc_i])
                per_doc[doc_i].append((start + s, start + e))
                doc_windows[doc_i].append(b)
            rows[doc_i].append((index[(s, e)], label_id[label]))
    n_labels = len(labels)
    sizes = [len(spans) for spans in per_doc]
    offsets = numpy.cumsum([0] + sizes)
    targets = numpy.zeros((offsets[-1], n_labels), dtype="float32")
    weights = numpy.zeros((offsets[-1], n_labels), dtype="float32")
    for doc_i in range(n_docs):
        if sizes[doc_i]:
            weights[offsets[doc_i] : offsets[doc_i + 1]] = own[numpy.asarray(doc_windows[doc_i])]
        for candidate, label in rows[doc_i]:
            targets[offsets[doc_i] + candidate, label] = 1.0
    spans = [numpy.asarray(s, dtype="int32").reshape(-1, 2) for s in per_doc]
    return spans, targets, weights


def span_loss(xp: Any, logits: Any, targets: Any, weights: Any, scale: float = 1.0) -> Tuple[float, Any]:
    """Mean binary cross-entropy with logits over the weighted (own-label)
    targets, times ``scale``. Returns the loss and its gradient."""
    denom = float(max(float(weights.sum()), 1.0))
    return bce_with_logits(xp, logits, targets, weights * (scale / denom))
