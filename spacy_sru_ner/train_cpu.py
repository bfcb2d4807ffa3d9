"""The teacher-forced training pass on CPU as two compiled loops (numba): the
forward steps with the gold alignment, and their backward in reverse.

They compute what :class:`~spacy_sru_ner.train_loop.TeacherForcedLoop` computes
with tensor operations, but a step is a few BLAS calls (the MLP over the batch)
and plain loops, instead of some sixty small PyTorch operations whose dispatch
costs more than their arithmetic on the CPU. Float32 arrays, C-contiguous.
"""
from typing import Dict

import numpy

try:
    from numba import njit
except ImportError:  # pragma: no cover - numba is a dependency; this keeps the torch loop usable without it
    njit = None

from .actions import EOA, SHIFT


def _attend(t, prev, scores, position_scores, rows_at, padding, mask_scores, use_mask_scores, S,
            alpha_rec, ties_rec, prev_rec):  # pragma: no cover - compiled
    """Attention weights of step ``t`` from the pointer ``prev`` of the step before."""
    B = padding.shape[0]
    K = scores.shape[1]
    pt = t if position_scores.shape[0] > 1 else 0
    z = numpy.empty(S, dtype=numpy.float64)
    for b in range(B):
        prev_rec[t, b] = prev[b]
        top = -numpy.inf
        for s in range(S):
            r = rows_at[prev[b], s]
            row = b * S + s
            best = -numpy.inf
            for k in range(K):
                v = scores[row, k] + position_scores[pt, r, k]
                if v > best:
                    best = v
            for k in range(K):
                ties_rec[t, b, s, k] = scores[row, k] + position_scores[pt, r, k] == best
            if use_mask_scores:
                best = best * mask_scores[t, b, s]
            z[s] = best + padding[b, s]
            if z[s] > top:
                top = z[s]
        total = 0.0
        for s in range(S):
            z[s] = numpy.exp(z[s] - top)
            total += z[s]
        for s in range(S):
            alpha_rec[t, b, s] = z[s] / total


def _forward(words, memory, scores, write_rows, position_scores, value_scale, hidden_wt, hidden_b, out_wt, out_b,
             rows_at, padding, gold, n_rows, foreign, has_foreign, max_pointer, mask_mlp, use_mask_mlp,
             mask_scores, use_mask_scores, slot_state, max_steps, S,
             logits, cursor_rec, delay_rec, active_rec, pointer_rec, prev_rec, alpha_rec, ties_rec, raw_rec,
             feat_rec, hid_rec, probs_rec, sel_rec, upd_rec):  # pragma: no cover - compiled
    """Run the steps; fill the records; return the number of steps taken.
    ``memory`` and ``scores`` are updated in place."""
    B = padding.shape[0]
    d = words.shape[1]
    A = write_rows.shape[0]
    W = write_rows.shape[1]
    nf = hidden_wt.shape[0]
    pointer = numpy.ones(B, dtype=numpy.int64)
    cursor = numpy.zeros(B, dtype=numpy.int64)
    delayed = numpy.zeros(B, dtype=numpy.bool_)
    done = numpy.zeros(B, dtype=numpy.bool_)
    is_shift = numpy.zeros(B, dtype=numpy.bool_)
    is_eoa = numpy.zeros(B, dtype=numpy.bool_)
    delay = numpy.zeros(B, dtype=numpy.bool_)
    features = numpy.empty((B, nf), dtype=numpy.float32)
    raw = numpy.empty(d, dtype=numpy.float64)
    probs = numpy.empty(A, dtype=numpy.float64)
    _attend(0, numpy.zeros(B, dtype=numpy.int64), scores, position_scores, rows_at, padding, mask_scores,
            use_mask_scores, S, alpha_rec, ties_rec, prev_rec)
    n = 0
    for t in range(max_steps):
        for b in range(B):
            slot = b * S + pointer[b]
            raw[:] = 0.0
            for s in range(S):
                a = alpha_rec[t, b, s]
                if a != 0.0:
                    row = b * S + s
                    for j in range(d):
                        raw[j] += a * memory[row, j]
            for j in range(d):
                raw_rec[t, b, j] = raw[j]
                current = words[slot, j]
                features[b, j] = current
                features[b, d + j] = raw[j] * value_scale[j]
                if slot_state:
                    features[b, 2 * d + j] = memory[slot, j] - current
            if use_mask_mlp:
                for j in range(nf):
                    features[b, j] *= mask_mlp[t, b, j]
        feat_rec[t] = features
        hidden = numpy.tanh(numpy.dot(features, hidden_wt) + hidden_b)
        hid_rec[t] = hidden
        step_logits = numpy.dot(hidden, out_wt) + out_b
        for b in range(B):
            for a_i in range(A):
                logits[b, t, a_i] = step_logits[b, a_i]
            c = cursor[b]
            is_shift[b] = gold[b, c, SHIFT] > 0
            is_eoa[b] = gold[b, c, EOA] > 0
            delay[b] = False
            if has_foreign and is_shift[b] and not delayed[b]:
                p_shift = 1.0 / (1.0 + numpy.exp(-step_logits[b, SHIFT]))
                foreign_best = 0.0
                for a_i in range(A):
                    v = foreign[b, a_i] / (1.0 + numpy.exp(-step_logits[b, a_i]))
                    if v > foreign_best:
                        foreign_best = v
                delay[b] = foreign_best > p_shift
            cursor_rec[b, t] = c
            delay_rec[b, t] = 1.0 if delay[b] else 0.0
            active_rec[b, t] = 0.0 if done[b] else 1.0
            pointer_rec[b, t] = pointer[b]
            # the write: softmax weights of the actions at least as likely as SHIFT
            top = step_logits[b, 0]
            for a_i in range(A):
                if step_logits[b, a_i] > top:
                    top = step_logits[b, a_i]
            total = 0.0
            for a_i in range(A):
                probs[a_i] = numpy.exp(step_logits[b, a_i] - top)
                total += probs[a_i]
            slot = b * S + pointer[b]
            for a_i in range(A):
                p = probs[a_i] / total
                probs_rec[t, b, a_i] = p
                selected = step_logits[b, a_i] >= step_logits[b, SHIFT]
                sel_rec[t, b, a_i] = 1.0 if selected else 0.0
            for j in range(W):
                upd_rec[t, b, j] = 0.0
            for a_i in range(A):
                if sel_rec[t, b, a_i] != 0.0:
                    w = probs_rec[t, b, a_i]
                    for j in range(W):
                        upd_rec[t, b, j] += w * write_rows[a_i, j]
            for j in range(d):
                memory[slot, j] += upd_rec[t, b, j]
            for j in range(W - d):
                scores[slot, j] += upd_rec[t, b, d + j]
        n = t + 1
        all_done = True
        for b in range(B):
            moves = (is_shift[b] or is_eoa[b]) and not delay[b]
            if moves and pointer[b] < max_pointer[b]:
                pointer[b] += 1
            if is_eoa[b] and not delay[b]:
                done[b] = True
            if not delay[b] and cursor[b] < n_rows[b] - 1:
                cursor[b] += 1
            delayed[b] = delay[b]
            if not done[b]:
                all_done = False
        if all_done or t + 1 == max_steps:
            break
        _attend(t + 1, pointer_rec[:, t], scores, position_scores, rows_at, padding, mask_scores,
                use_mask_scores, S, alpha_rec, ties_rec, prev_rec)
    return n


def _backward(n, d_logits, memory, write_rows, position_scores, value_scale, hidden_w, out_w, rows_at,
              mask_mlp, use_mask_mlp, mask_scores, use_mask_scores, slot_state, S,
              pointer_rec, prev_rec, alpha_rec, ties_rec, raw_rec, hid_rec, probs_rec, sel_rec, upd_rec,
              d_words, d_memory, d_scores, d_write, d_position, d_value_scale, d_logit_rec,
              d_pre_rec):  # pragma: no cover - compiled
    """Walk the ``n`` steps back; ``memory`` (as the forward left it) is restored
    write by write. Fills the gradient arrays (zeroed by the caller) and the
    per-step gradients of the logits and hidden pre-activations."""
    B = alpha_rec.shape[1]
    d = d_words.shape[1]
    A = write_rows.shape[0]
    W = write_rows.shape[1]
    K = d_scores.shape[1]
    nf = hidden_w.shape[1]
    d_update = numpy.empty(W, dtype=numpy.float64)
    d_probs = numpy.empty(A, dtype=numpy.float64)
    d_raw = numpy.empty(d, dtype=numpy.float64)
    d_alpha = numpy.empty(S, dtype=numpy.float64)
    d_step = numpy.empty((B, A), dtype=numpy.float32)
    for t in range(n - 1, -1, -1):
        pt = t if position_scores.shape[0] > 1 else 0
        for b in range(B):
            slot = b * S + pointer_rec[b, t]
            for j in range(d):
                d_update[j] = d_memory[slot, j]
            for j in range(K):
                d_update[d + j] = d_scores[slot, j]
            weighted = 0.0
            for a_i in range(A):
                if sel_rec[t, b, a_i] != 0.0:
                    v = 0.0
                    w = probs_rec[t, b, a_i]
                    for j in range(W):
                        v += d_update[j] * write_rows[a_i, j]
                        d_write[a_i, j] += w * d_update[j]
                    d_probs[a_i] = v
                else:
                    d_probs[a_i] = 0.0
                weighted += probs_rec[t, b, a_i] * d_probs[a_i]
            for a_i in range(A):
                d_step[b, a_i] = d_logits[b, t, a_i] + probs_rec[t, b, a_i] * (d_probs[a_i] - weighted)
            for j in range(d):
                memory[slot, j] -= upd_rec[t, b, j]
        d_logit_rec[t] = d_step
        hidden = hid_rec[t]
        d_pre = numpy.dot(d_step, out_w) * (numpy.float32(1.0) - hidden * hidden)
        d_pre_rec[t] = d_pre
        d_features = numpy.dot(d_pre, hidden_w)
        for b in range(B):
            slot = b * S + pointer_rec[b, t]
            if use_mask_mlp:
                for j in range(nf):
                    d_features[b, j] *= mask_mlp[t, b, j]
            for j in range(d):
                d_current = d_features[b, j]
                if slot_state:
                    d_slot = d_features[b, 2 * d + j]
                    d_current -= d_slot
                    d_memory[slot, j] += d_slot
                d_words[slot, j] += d_current
                d_context = d_features[b, d + j]
                d_value_scale[j] += d_context * raw_rec[t, b, j]
                d_raw[j] = d_context * value_scale[j]
            weighted = 0.0
            for s in range(S):
                row = b * S + s
                v = 0.0
                for j in range(d):
                    v += memory[row, j] * d_raw[j]
                d_alpha[s] = v
                a = alpha_rec[t, b, s]
                weighted += a * v
                if a != 0.0:
                    for j in range(d):
                        d_memory[row, j] += a * d_raw[j]
            prev = prev_rec[t, b]
            for s in range(S):
                a = alpha_rec[t, b, s]
                d_best = a * (d_alpha[s] - weighted)
                if use_mask_scores:
                    d_best *= mask_scores[t, b, s]
                if d_best != 0.0:  # shared evenly by the queries that tie for the max, as amax's gradient
                    row = b * S + s
                    r = rows_at[prev, s]
                    count = 0
                    for k in range(K):
                        count += ties_rec[t, b, s, k]
                    d_best /= count
                    for k in range(K):
                        if ties_rec[t, b, s, k]:
                            d_scores[row, k] += d_best
                            d_position[pt, r, k] += d_best


if njit is not None:
    _attend = njit(cache=True, nogil=True)(_attend)
    _forward = njit(cache=True, nogil=True)(_forward)
    _backward = njit(cache=True, nogil=True)(_backward)


def available() -> bool:
    """Whether the compiled loops can run (numba is installed)."""
    return njit is not None


def forward(arrays: Dict[str, numpy.ndarray], *, has_foreign: bool, slot_state: bool, max_steps: int, S: int):
    """Run :func:`_forward` on ``arrays`` (the inputs, as named in its signature);
    returns the records (also the inputs the backward needs) and the step count."""
    B = arrays["padding"].shape[0]
    A, W = arrays["write_rows"].shape
    d = arrays["words"].shape[1]
    K = arrays["scores"].shape[1]
    nf, h = arrays["hidden_wt"].shape
    T = max_steps
    f32 = numpy.float32
    rec = {
        "logits": numpy.zeros((B, T, A), f32),
        "cursor_rec": numpy.zeros((B, T), numpy.int64),
        "delay_rec": numpy.zeros((B, T), f32),
        "active_rec": numpy.zeros((B, T), f32),
        "pointer_rec": numpy.zeros((B, T), numpy.int64),
        "prev_rec": numpy.zeros((T, B), numpy.int64),
        "alpha_rec": numpy.empty((T, B, S), f32),
        "ties_rec": numpy.empty((T, B, S, K), numpy.uint8),  # the queries at the max of each score
        "raw_rec": numpy.empty((T, B, d), f32),
        "feat_rec": numpy.empty((T, B, nf), f32),
        "hid_rec": numpy.empty((T, B, h), f32),
        "probs_rec": numpy.empty((T, B, A), f32),
        "sel_rec": numpy.empty((T, B, A), f32),
        "upd_rec": numpy.empty((T, B, W), f32),
    }
    n = _forward(
        arrays["words"], arrays["memory"], arrays["scores"], arrays["write_rows"], arrays["position_scores"],
        arrays["value_scale"], arrays["hidden_wt"], arrays["hidden_b"], arrays["out_wt"], arrays["out_b"],
        arrays["rows_at"], arrays["padding"], arrays["gold"], arrays["n_rows"], arrays["foreign"], has_foreign,
        arrays["max_pointer"], arrays["mask_mlp"], arrays["mask_mlp"].shape[0] > 0,
        arrays["mask_scores"], arrays["mask_scores"].shape[0] > 0, slot_state, max_steps, S,
        rec["logits"], rec["cursor_rec"], rec["delay_rec"], rec["active_rec"], rec["pointer_rec"],
        rec["prev_rec"], rec["alpha_rec"], rec["ties_rec"], rec["raw_rec"], rec["feat_rec"], rec["hid_rec"],
        rec["probs_rec"], rec["sel_rec"], rec["upd_rec"],
    )
    return rec, int(n)
