"""Greedy decoding on CPU as one compiled loop (numba), one sequence at a time.

It runs the same step as ``SlotDecoder._greedy_fast`` on the same per-position
tables, but without a tensor operation per step: on CPU a decoder step is a few
thousand multiply-adds, far less than the cost of dispatching the two dozen
small PyTorch operations that the batched loop needs.
"""
from typing import Tuple

import numpy

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency; this keeps the torch loop usable without it
    njit = None

from .actions import EOA, SHIFT


def _decode(hidden, context_table, scores_table, position_queries, half_context, write_table, out_weight,
            out_bias, lengths, max_steps, slot_state, probs, n_steps):  # pragma: no cover - compiled
    """Fill ``probs`` (B, max_steps, A) and ``n_steps`` (B,).

    hidden, context_table: (B, S, H) tables T and U; scores_table: (B, K, S) memory
    attention scores; position_queries: (K, 2 * half_context + 4) score of each query
    with each relative-position row; write_table:
    (A, H + K + H) what a unit of each action adds to U, the scores and T.
    """
    B = hidden.shape[0]
    H = hidden.shape[2]
    K = scores_table.shape[1]
    A = out_weight.shape[1]
    alpha = numpy.empty(hidden.shape[1], dtype=numpy.float32)
    pre = numpy.empty(H, dtype=numpy.float32)
    logits = numpy.empty(A, dtype=numpy.float32)
    weights = numpy.empty(A, dtype=numpy.float32)
    for b in range(B):
        n_pos = lengths[b] + 2
        max_pointer = lengths[b] + 1
        pointer = 1
        _attend(scores_table[b], position_queries, half_context, 0, n_pos, K, alpha)
        n_steps[b] = max_steps
        for t in range(max_steps):
            for h in range(H):
                pre[h] = hidden[b, pointer, h]
            for j in range(n_pos):
                a = alpha[j]
                if a != 0.0:
                    for h in range(H):
                        pre[h] += a * context_table[b, j, h]
            for a_i in range(A):
                logits[a_i] = out_bias[a_i]
            for h in range(H):
                x = numpy.tanh(pre[h])
                for a_i in range(A):
                    logits[a_i] += x * out_weight[h, a_i]
            best = 0
            top = logits[0]
            for a_i in range(A):
                probs[b, t, a_i] = 1.0 / (1.0 + numpy.exp(-logits[a_i]))
                if logits[a_i] > top:
                    top = logits[a_i]
                    best = a_i
            if probs[b, t, EOA] > 0.5:
                n_steps[b] = t + 1
                break
            # slot write: softmax weights of the actions at least as likely as SHIFT
            total = 0.0
            for a_i in range(A):
                weights[a_i] = numpy.exp(logits[a_i] - top)
                total += weights[a_i]
            for a_i in range(A):
                weights[a_i] = weights[a_i] / total if logits[a_i] >= logits[SHIFT] else 0.0
            for a_i in range(A):
                w = weights[a_i]
                if w != 0.0:
                    for h in range(H):
                        context_table[b, pointer, h] += w * write_table[a_i, h]
                    for k in range(K):
                        scores_table[b, k, pointer] += w * write_table[a_i, H + k]
                    if slot_state:
                        for h in range(H):
                            hidden[b, pointer, h] += w * write_table[a_i, H + K + h]
            _attend(scores_table[b], position_queries, half_context, pointer, n_pos, K, alpha)
            if best == SHIFT or best == EOA:
                pointer = min(pointer + 1, max_pointer)


def _attend(scores, position_queries, half_context, pointer, n_pos, K, alpha):  # pragma: no cover - compiled
    """alpha = softmax over positions of the best query's score, with the
    position rows of ``SlotDecoder._position_rows``."""
    top = -numpy.inf
    for j in range(n_pos):
        offset = j - pointer
        if j == 0:
            row = 2 * half_context + 1
        elif -half_context <= offset <= half_context:
            row = offset + half_context
        else:
            row = 2 * half_context + 2
        best = scores[0, j] + position_queries[0, row]
        for k in range(1, K):
            value = scores[k, j] + position_queries[k, row]
            if value > best:
                best = value
        alpha[j] = best
        if best > top:
            top = best
    total = 0.0
    for j in range(n_pos):
        alpha[j] = numpy.exp(alpha[j] - top)
        total += alpha[j]
    for j in range(n_pos):
        alpha[j] /= total


if njit is not None:
    _attend = njit(cache=True, nogil=True)(_attend)
    _decode = njit(cache=True, nogil=True)(_decode)


def available() -> bool:
    """Whether numba is installed (else the decoder uses its batched tensor loop)."""
    return njit is not None


def decode(hidden, context_table, scores_table, position_queries, half_context: int, write_table,
           out_weight, out_bias, lengths, max_steps: int, slot_state: bool) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Run the compiled loop on float32 numpy arrays; returns ``(probs, n_steps)``."""
    probs = numpy.zeros((hidden.shape[0], max_steps, out_weight.shape[1]), dtype=numpy.float32)
    n_steps = numpy.zeros(hidden.shape[0], dtype=numpy.int64)
    _decode(hidden, context_table, scores_table, position_queries, half_context, write_table, out_weight,
            out_bias, lengths, max_steps, slot_state, probs, n_steps)
    return probs, n_steps
