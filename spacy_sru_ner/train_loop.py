"""The decoder's teacher-forced training pass as one autograd function with a
hand-written backward.

Autograd records every op of every decoder step (about forty per step, for
each of a few dozen steps per window group), and on the CPU recording and
replaying those graph nodes costs more than the arithmetic. Here the forward
runs without a graph, keeps what the backward needs per step (the slot, the
attention weights, the winning queries, the MLP activations, the write), and
the backward walks the steps in reverse with the same tensor ops a graph would
have run, accumulating the gradients of the memory and score tables (a slot
write at step t receives the gradient of every read after t). The memory is
updated in place and restored write by write on the way back.

On CPU (float32, numba installed) the same forward and backward run as two
compiled loops (:mod:`.train_cpu`), where a step is a few BLAS calls and plain
loops; the tensor-operation form serves the GPU and is what the compiled one is
tested against (``tests/test_training_loop.py``).

The function sees the per-pass tensors (embedded words, the initial memory and
score table, the write table, the per-step position scores, the value scale,
the MLP weights); how they come from the module's parameters (query dropout
and scale, the token multiplier, the start vector, the position dropout masks)
stays with autograd in :meth:`SlotDecoder._forward_train_fast`.
"""
from dataclasses import dataclass, field
from typing import Any, List, Optional

import numpy
import torch

from . import train_cpu
from .actions import SHIFT


@dataclass
class LoopSpec:
    """What the pass needs besides the differentiable inputs, and what it records.

    B, S: sequences and positions; ``row_starts`` (B,) the first flat row of each
    sequence; ``rows_at`` (S, S) the position-table row of each position for
    each pointer; ``padding`` (B, S) 0 or -1e12; ``path_pointer`` (B, T) the
    precomputed pointer path, or ``alignment`` (a :class:`GoldAlignment`) that
    decides it step by step (at most ``max_steps`` steps, its done flags
    checked every ``check_every`` steps); dropout rates of the MLP input and
    the attention scores (0 outside training).
    """

    B: int
    S: int
    row_starts: torch.Tensor
    rows_at: torch.Tensor
    padding: torch.Tensor
    slot_state: bool
    p_mlp: float
    p_scores: float
    path_pointer: Optional[torch.Tensor] = None
    alignment: Any = None
    max_steps: int = 0
    check_every: int = 1
    #: run the compiled CPU loops (:mod:`.train_cpu`), which take the gold
    #: alignment from these (the pointer path and the alignment are not used)
    compiled: bool = False
    gold: Optional[torch.Tensor] = None
    n_rows: Optional[torch.Tensor] = None
    #: (B, A) foreign-action mask; None when no sequence has foreign labels
    foreign: Optional[torch.Tensor] = None
    max_pointer: Optional[torch.Tensor] = None
    #: dropout masks (T, B, n_features) and (T, B, S) to use instead of drawing them
    mask_mlp: Optional[torch.Tensor] = None
    mask_scores: Optional[torch.Tensor] = None
    n_steps: int = field(default=0, init=False)
    #: the compiled forward's per-step cursor, delay, active and pointer (B, T)
    recorded: Optional[dict] = field(default=None, init=False)


def _mask(like: torch.Tensor, p: float) -> Optional[torch.Tensor]:
    """A dropout mask (kept entries scaled by 1 / (1 - p)), or None for p = 0."""
    if p <= 0.0:
        return None
    return (torch.rand_like(like) >= p).to(like.dtype) * (1.0 / (1.0 - p))


class TeacherForcedLoop(torch.autograd.Function):
    """logits (B, T, A) of the teacher-forced pass; see the module docstring.

    Inputs: ``words`` and ``memory`` (B * S, d), the memory's score table
    ``scores`` (B * S, K), ``write_rows`` (A, d + K) what each action adds to a
    memory row and its scores, ``position_scores`` (T' , R, K) the position
    table's score with each query at each step (T' = 1: the same at every
    step), ``value_scale`` (d,), and the MLP's ``hidden_w`` (h, n_state),
    ``hidden_b``, ``out_w`` (A, h), ``out_b``.
    """

    @staticmethod
    def forward(ctx, spec: LoopSpec, words, memory, scores, write_rows, position_scores, value_scale,
                hidden_w, hidden_b, out_w, out_b):
        if spec.compiled:
            return _compiled_forward(ctx, spec, words, memory, scores, write_rows, position_scores, value_scale,
                                     hidden_w, hidden_b, out_w, out_b)
        B, S = spec.B, spec.S
        d, K = words.shape[1], scores.shape[1]
        memory, scores = memory.clone(), scores.clone()
        n_pos = position_scores.shape[0]
        rec = {k: [] for k in ("prev", "slot", "alpha", "ties", "mask_scores", "raw_context", "features",
                               "mask_mlp", "hidden", "probs", "selected", "update")}

        def attention(prev: torch.Tensor, t: int) -> torch.Tensor:
            rows = spec.rows_at.index_select(0, prev).view(-1)
            table = scores.view(B, S, K) + position_scores[t if n_pos > 1 else 0].index_select(0, rows).view(B, S, K)
            best = table.amax(dim=-1)
            ties = (table == best.unsqueeze(-1)).to(table.dtype)
            rec["ties"].append(ties / ties.sum(dim=-1, keepdim=True))
            mask = spec.mask_scores[t] if spec.mask_scores is not None else _mask(best, spec.p_scores)
            rec["mask_scores"].append(mask)
            if mask is not None:
                best = best * mask
            rec["prev"].append(prev)
            alpha = torch.softmax(best + spec.padding, dim=-1)
            rec["alpha"].append(alpha)
            return alpha

        state = spec.alignment
        n_max = spec.path_pointer.shape[1] if state is None else spec.max_steps
        alpha = attention(torch.zeros(B, dtype=torch.long, device=words.device), 0)
        logits_steps: List[torch.Tensor] = []
        for t in range(n_max):
            pointer = spec.path_pointer[:, t] if state is None else state.pointer
            slot = spec.row_starts + pointer
            current = words.index_select(0, slot)
            raw_context = torch.bmm(alpha.unsqueeze(1), memory.view(B, S, d)).squeeze(1)
            parts = [current, raw_context * value_scale]
            if spec.slot_state:
                parts.append(memory.index_select(0, slot) - current)
            features = torch.cat(parts, dim=-1)
            mask = spec.mask_mlp[t] if spec.mask_mlp is not None else _mask(features, spec.p_mlp)
            if mask is not None:
                features = features * mask
            hidden = torch.tanh(torch.addmm(hidden_b, features, hidden_w.t()))
            logits = torch.addmm(out_b, hidden, out_w.t())
            logits_steps.append(logits)
            for key, value in (("slot", slot), ("raw_context", raw_context), ("features", features),
                               ("mask_mlp", mask), ("hidden", hidden)):
                rec[key].append(value)
            if state is not None:
                state.observe(logits)
            if t + 1 < n_max:
                selected = (logits >= logits[:, SHIFT : SHIFT + 1]).to(logits.dtype)
                probs = torch.softmax(logits, dim=-1)
                update = (probs * selected) @ write_rows
                memory.index_add_(0, slot, update[:, :d])
                scores.index_add_(0, slot, update[:, d:])
                for key, value in (("probs", probs), ("selected", selected), ("update", update)):
                    rec[key].append(value)
                alpha = attention(pointer, t + 1)
            if state is not None:
                state.advance()
                if t % spec.check_every == spec.check_every - 1 and bool(state.done.all()):
                    break
        spec.n_steps = len(logits_steps)
        ctx.spec, ctx.rec, ctx.memory = spec, rec, memory
        ctx.shapes = (d, K, n_pos)
        ctx.save_for_backward(write_rows, position_scores, value_scale, hidden_w, out_w)
        return torch.stack(logits_steps, dim=1)

    @staticmethod
    def backward(ctx, d_logits):
        if ctx.spec.compiled:
            return _compiled_backward(ctx, d_logits)
        spec, rec = ctx.spec, ctx.rec
        memory = ctx.memory.clone()  # restored write by write (a second backward starts from the end again)
        write_rows, position_scores, value_scale, hidden_w, out_w = ctx.saved_tensors
        d, K, n_pos = ctx.shapes
        B, S, T = spec.B, spec.S, spec.n_steps
        BS = B * S
        d_mem = memory.new_zeros((BS, d))  # gradient of every later read of each memory row
        d_scores = memory.new_zeros((BS, K))
        d_words = memory.new_zeros((BS, d))
        d_write = torch.zeros_like(write_rows)
        d_position = torch.zeros_like(position_scores)
        d_value_scale = torch.zeros_like(value_scale)
        d_pre_steps, d_logit_steps = [], []
        d_logits = d_logits.contiguous()
        for t in reversed(range(T)):
            slot = rec["slot"][t]
            d_step = d_logits[:, t]
            if t < len(rec["update"]):  # the step wrote its slot: every later read flows back here
                d_update = torch.cat([d_mem.index_select(0, slot), d_scores.index_select(0, slot)], dim=1)
                probs, selected = rec["probs"][t], rec["selected"][t]
                d_write.addmm_((probs * selected).t(), d_update)
                d_probs = (d_update @ write_rows.t()) * selected
                d_step = d_step + probs * (d_probs - (probs * d_probs).sum(dim=-1, keepdim=True))
                memory.index_add_(0, slot, rec["update"][t][:, :d], alpha=-1.0)  # memory as step t read it
            hidden = rec["hidden"][t]
            d_pre = (d_step @ out_w) * (1.0 - hidden * hidden)
            d_logit_steps.append(d_step)
            d_pre_steps.append(d_pre)
            d_features = d_pre @ hidden_w
            if rec["mask_mlp"][t] is not None:
                d_features = d_features * rec["mask_mlp"][t]
            d_current = d_features[:, :d]
            d_context = d_features[:, d : 2 * d]
            if spec.slot_state:
                d_slot = d_features[:, 2 * d :]
                d_current = d_current - d_slot
                d_mem.index_add_(0, slot, d_slot)
            d_words.index_add_(0, slot, d_current)
            d_value_scale += (d_context * rec["raw_context"][t]).sum(dim=0)
            d_raw = d_context * value_scale
            alpha = rec["alpha"][t]
            d_alpha = torch.bmm(memory.view(B, S, d), d_raw.unsqueeze(2)).squeeze(2)
            d_mem.view(B, S, d).baddbmm_(alpha.unsqueeze(2), d_raw.unsqueeze(1))
            d_best = alpha * (d_alpha - (alpha * d_alpha).sum(dim=-1, keepdim=True))
            if rec["mask_scores"][t] is not None:
                d_best = d_best * rec["mask_scores"][t]
            d_table = (d_best.unsqueeze(-1) * rec["ties"][t]).view(BS, K)
            d_scores += d_table
            rows = spec.rows_at.index_select(0, rec["prev"][t]).view(-1)
            d_position[t if n_pos > 1 else 0].index_add_(0, rows, d_table)
        hidden_all = torch.cat(rec["hidden"][::-1], dim=0)
        features_all = torch.cat(rec["features"][::-1], dim=0)
        d_logit_all = torch.cat(d_logit_steps, dim=0)
        d_pre_all = torch.cat(d_pre_steps, dim=0)
        return (
            None,
            d_words,
            d_mem,
            d_scores,
            d_write,
            d_position,
            d_value_scale,
            d_pre_all.t() @ features_all,
            d_pre_all.sum(dim=0),
            d_logit_all.t() @ hidden_all,
            d_logit_all.sum(dim=0),
        )


def _numpy(tensor: torch.Tensor):
    return tensor.detach().contiguous().numpy()


def _compiled_forward(ctx, spec: LoopSpec, words, memory, scores, write_rows, position_scores, value_scale,
                      hidden_w, hidden_b, out_w, out_b):
    B, S = spec.B, spec.S
    T = spec.max_steps
    n_features = hidden_w.shape[1]
    empty = numpy.zeros((0, 1, 1), dtype="float32")
    mask_mlp = spec.mask_mlp if spec.mask_mlp is not None else _mask(words.new_empty((T, B, n_features)), spec.p_mlp)
    mask_scores = spec.mask_scores
    if mask_scores is None:
        mask_scores = _mask(words.new_empty((T, B, S)), spec.p_scores)
    has_foreign = spec.foreign is not None
    foreign = spec.foreign if has_foreign else spec.gold.new_zeros((B, spec.gold.shape[2]))
    arrays = {
        "words": _numpy(words),
        "memory": memory.detach().numpy().copy(),
        "scores": scores.detach().numpy().copy(),
        "write_rows": _numpy(write_rows),
        "position_scores": _numpy(position_scores),
        "value_scale": _numpy(value_scale),
        "hidden_w": _numpy(hidden_w),
        "hidden_wt": _numpy(hidden_w.t()),
        "hidden_b": _numpy(hidden_b),
        "out_w": _numpy(out_w),
        "out_wt": _numpy(out_w.t()),
        "out_b": _numpy(out_b),
        "rows_at": _numpy(spec.rows_at),
        "padding": _numpy(spec.padding),
        "gold": _numpy(spec.gold),
        "n_rows": _numpy(spec.n_rows),
        "foreign": _numpy(foreign),
        "max_pointer": _numpy(spec.max_pointer),
        "mask_mlp": _numpy(mask_mlp) if mask_mlp is not None else empty,
        "mask_scores": _numpy(mask_scores) if mask_scores is not None else empty,
    }
    rec, n = train_cpu.forward(arrays, has_foreign=has_foreign, slot_state=spec.slot_state, max_steps=T, S=S)
    spec.n_steps = n
    spec.recorded = {
        "cursor": torch.from_numpy(rec["cursor_rec"][:, :n].copy()),
        "delay": torch.from_numpy(rec["delay_rec"][:, :n].copy()),
        "active": torch.from_numpy(rec["active_rec"][:, :n].copy()),
        "pointer": torch.from_numpy(rec["pointer_rec"][:, :n].copy()),
    }
    ctx.spec, ctx.arrays, ctx.rec = spec, arrays, rec
    return torch.from_numpy(rec["logits"][:, :n].copy())


def _compiled_backward(ctx, d_logits):
    spec, arrays, rec = ctx.spec, ctx.arrays, ctx.rec
    n, S = spec.n_steps, spec.S
    B = arrays["padding"].shape[0]
    f32 = numpy.float32
    d_words = numpy.zeros_like(arrays["words"])
    d_memory = numpy.zeros_like(arrays["words"])
    d_scores = numpy.zeros_like(arrays["scores"])
    d_write = numpy.zeros_like(arrays["write_rows"])
    d_position = numpy.zeros_like(arrays["position_scores"])
    d_value_scale = numpy.zeros_like(arrays["value_scale"])
    d_logit_rec = numpy.empty((n, B, arrays["out_b"].shape[0]), f32)
    d_pre_rec = numpy.empty((n, B, arrays["hidden_b"].shape[0]), f32)
    memory = arrays["memory"].copy()  # a second backward starts from the end again
    train_cpu._backward(
        n, numpy.ascontiguousarray(d_logits.detach().numpy(), dtype=f32), memory, arrays["write_rows"],
        arrays["position_scores"], arrays["value_scale"], arrays["hidden_w"],
        arrays["out_w"], arrays["rows_at"], arrays["mask_mlp"],
        arrays["mask_mlp"].shape[0] > 0, arrays["mask_scores"], arrays["mask_scores"].shape[0] > 0,
        spec.slot_state, S, rec["pointer_rec"], rec["prev_rec"], rec["alpha_rec"], rec["ties_rec"],
        rec["raw_rec"], rec["hid_rec"], rec["probs_rec"], rec["sel_rec"], rec["upd_rec"],
        d_words, d_memory, d_scores, d_write, d_position, d_value_scale, d_logit_rec, d_pre_rec,
    )
    d_pre = d_pre_rec.reshape(n * B, -1)
    d_out = d_logit_rec.reshape(n * B, -1)
    features = rec["feat_rec"][:n].reshape(n * B, -1)
    hidden = rec["hid_rec"][:n].reshape(n * B, -1)
    grads = (d_words, d_memory, d_scores, d_write, d_position, d_value_scale,
             d_pre.T @ features, d_pre.sum(axis=0), d_out.T @ hidden, d_out.sum(axis=0))
    return (None,) + tuple(torch.from_numpy(numpy.ascontiguousarray(g, dtype=f32)) for g in grads)
