"""The slot-based recurrent decoder of SRU-NER as a batched PyTorch module.

Input is a padded batch of word-vector sequences (one per decoded window).
Each sequence is laid out as ``[CLS] w_1 .. w_n [SEP] <pad>...``: position 0
holds a learned start vector, positions ``1..n`` the words, ``n + 1`` a learned
end vector. All sequences advance one decoder step together; per-sequence
state (pointer, gold cursor, finished flags) lives in tensors.
"""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy
import torch
from torch import nn
from torch.nn import functional as F

from . import greedy_cpu, train_cpu
from .actions import EOA, SHIFT
from .settings import DecoderSettings
from .train_loop import LoopSpec, TeacherForcedLoop


def _single_threaded_after_fork() -> None:
    # A forked child (e.g. nlp.pipe(n_process=2)) inherits an OpenMP pool it
    # cannot use and hangs on its first parallel op; one thread per worker
    # process avoids that and is what data-parallel workers want anyway.
    torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_single_threaded_after_fork)


@dataclass
class DecoderBatch:
    """Padded decoder input.

    vectors: (B, S, d_in) word vectors at positions 1..n (others are ignored).
    lengths: (B,) number of words n per sequence (S >= max(n) + 2).
    gold: (B, R, A) gold action rows (training only), zero-padded.
    n_rows: (B,) number of gold rows per sequence (training only).
    foreign: (B, A) 1 for actions of labels the sequence's corpus does not annotate.
    """

    vectors: torch.Tensor
    lengths: torch.Tensor
    gold: Optional[torch.Tensor] = None
    n_rows: Optional[torch.Tensor] = None
    foreign: Optional[torch.Tensor] = None


@dataclass
class TrainOutput:
    """What the teacher-forced pass did; the targets are built from it by
    :func:`spacy_sru_ner.loss.step_targets`."""

    logits: torch.Tensor  # (B, T, A)
    cursor: torch.Tensor  # (B, T) long, the gold row each step was aligned with
    delay: torch.Tensor  # (B, T) float, 1 where a gold SHIFT was delayed
    active: torch.Tensor  # (B, T) float, 1 where the step enters the loss
    pointer: Optional[torch.Tensor] = None  # (B, T) long, the word each step was at


@dataclass
class GoldPath:
    """The steps of a teacher-forced pass that follows the gold rows."""

    n_steps: int
    pointer: torch.Tensor  # (B, T) long
    cursor: torch.Tensor  # (B, T) long
    active: torch.Tensor  # (B, T) float


@dataclass
class PredictOutput:
    probs: torch.Tensor  # (B, T, A)
    n_steps: torch.Tensor  # (B,) steps recorded per sequence (up to and incl. EOA)


@dataclass
class InferenceTables:
    """Per-position tables of the fast greedy loops (see ``SlotDecoder._inference_tables``)."""

    hidden: torch.Tensor  # (B, S, 2w) T: word and slot part of the hidden pre-activation
    context: torch.Tensor  # (B, S, 2w) U: the attention values through the hidden layer
    scores: torch.Tensor  # (B, K, S) memory attention scores, -1e12 at padding
    position_queries: torch.Tensor  # (K, 2H + 4) score of each query with each position row
    write: torch.Tensor  # (A, 2w + K [+ 2w]) what each action adds to U, the scores [and T]


@dataclass
class WeightTables:
    """What the inference tables take from the weights alone (cached by
    :meth:`SlotDecoder.weight_tables`): the maps from the embedded words to T,
    U and the scores, the start vector's part in each, the position scores,
    the write table and the output layer."""

    hidden: torch.Tensor  # (d, 2w)
    context: torch.Tensor  # (d, 2w)
    scores: torch.Tensor  # (d, K)
    hidden_start: torch.Tensor  # (2w,)
    context_start: torch.Tensor  # (2w,)
    scores_start: torch.Tensor  # (K,)
    position_queries: torch.Tensor  # (K, 2H + 4)
    write: torch.Tensor  # (A, 2w + K [+ 2w])
    out_weight: torch.Tensor  # (2w, A)


class GoldAlignment:
    """Where each sequence of a teacher-forced pass stands (pointer, gold row,
    delay, done) under the multi-corpus alignment rule, and what the pass
    recorded; shared by the reference and the fast training loops.

    Per step: :meth:`observe` takes the step's logits and decides the delay,
    the loop writes the memory at the (old) pointer, then :meth:`advance`
    moves pointer and gold cursor."""

    def __init__(self, batch: DecoderBatch, foreign: torch.Tensor, has_foreign: bool):
        B = batch.gold.shape[0]
        device = batch.gold.device
        self.gold, self.foreign, self.has_foreign = batch.gold, foreign, has_foreign
        self.last_row = batch.n_rows - 1
        self.max_pointer = batch.lengths + 1
        self.pointer = torch.ones(B, dtype=torch.long, device=device)
        self.cursor = torch.zeros(B, dtype=torch.long, device=device)
        self.delayed = torch.zeros(B, dtype=torch.bool, device=device)
        self.done = torch.zeros(B, dtype=torch.bool, device=device)
        self.steps: Dict[str, List[torch.Tensor]] = {k: [] for k in ("logits", "cursor", "delay", "active", "pointer")}

    def observe(self, logits: torch.Tensor) -> None:
        """Record the step at the current pointer and decide whether its gold
        SHIFT is delayed (a foreign action more probable than SHIFT, never
        twice in a row)."""
        gold = self.gold
        row = gold.gather(1, self.cursor.view(-1, 1, 1).expand(-1, 1, gold.shape[-1])).squeeze(1)
        self.is_shift = row[:, SHIFT] > 0
        self.is_eoa = row[:, EOA] > 0
        self.delay = torch.zeros_like(self.done)
        if self.has_foreign:
            probs = torch.sigmoid(logits.detach())
            foreign_best = (probs * self.foreign).amax(dim=1)
            self.delay = self.is_shift & ~self.delayed & (foreign_best > probs[:, SHIFT])
        for key, value in (("logits", logits), ("cursor", self.cursor), ("delay", self.delay),
                           ("active", ~self.done), ("pointer", self.pointer)):
            self.steps[key].append(value)

    def advance(self) -> None:
        delay = self.delay
        moves = (self.is_shift | self.is_eoa) & ~delay
        self.pointer = torch.minimum(self.pointer + moves.long(), self.max_pointer)
        self.done = self.done | (self.is_eoa & ~delay)
        self.cursor = torch.minimum(self.cursor + (~delay).long(), self.last_row)
        self.delayed = delay

    def output(self, dtype: torch.dtype) -> TrainOutput:
        stacked = {key: torch.stack(values, dim=1) for key, values in self.steps.items()}
        return TrainOutput(
            logits=stacked["logits"],
            cursor=stacked["cursor"],
            delay=stacked["delay"].to(dtype),
            active=stacked["active"].to(dtype),
            pointer=stacked["pointer"],
        )


class SlotDecoder(nn.Module):
    """Slot-based recurrent decoder (memory, pointer, latent-query attention)."""

    #: decode on CPU with the compiled loop (numba) instead of the batched tensor loop
    compiled_cpu_loop: bool = True
    #: train with the loop over attention-score tables (:meth:`_forward_train_fast`)
    #: instead of the reference loop (:meth:`_forward_train_reference`)
    fast_train_loop: bool = True
    #: on CPU, run the fast training loop compiled (:mod:`.train_cpu`, numba)
    #: instead of as tensor operations
    compiled_train_loop: bool = True

    def __init__(self, n_inputs: int, n_actions: int, settings: DecoderSettings):
        super().__init__()
        self.settings = settings
        self.n_actions = n_actions
        self.width = width = settings.hidden_width
        self.half_context = half_context = settings.half_context
        self.max_train_steps_factor = settings.max_train_steps_factor
        self.max_predict_steps_factor = settings.max_predict_steps_factor
        self.slot_state = slot_state = settings.slot_state
        self.input_proj = nn.Linear(n_inputs, width)
        self.input_norm = nn.LayerNorm(width)
        self.cls_vector = nn.Parameter(torch.zeros(width))
        self.sep_vector = nn.Parameter(torch.zeros(width))
        self.start_vector = nn.Parameter(torch.zeros(width))
        self.action_embed = nn.Embedding(n_actions, width)
        self.queries = nn.Parameter(torch.zeros(settings.queries_per_action * n_actions, width))
        self.query_scale = nn.Parameter(torch.ones(width))
        self.value_scale = nn.Parameter(torch.ones(width))
        # rows: offsets -H..H, then CLS, outside-window, padding (zero, untrained)
        self.pad_row = 2 * half_context + 3
        self.positions = nn.Embedding(2 * half_context + 4, width, padding_idx=self.pad_row)
        self.token_multiplier = nn.Parameter(
            torch.full((1,), float(settings.token_multiplier)), requires_grad=settings.train_token_multiplier
        )
        self.drop_positions = nn.Dropout(settings.dropout_positions)
        self.drop_queries = nn.Dropout(settings.dropout_queries)
        self.drop_scores = nn.Dropout(settings.dropout_scores)
        self.drop_mlp = nn.Dropout(settings.dropout_mlp)
        n_state = (3 if slot_state else 2) * width
        self.hidden = nn.Linear(n_state, 2 * width)
        self.output = nn.Linear(2 * width, n_actions)

    def train(self, mode: bool = True) -> "SlotDecoder":
        """Set training mode; a no-op when the module is already in it (Thinc's
        wrapper calls ``train()`` or ``eval()`` on every call, and walking the
        submodules cost about half a millisecond per document at batch size 1).
        Submodules are expected to change mode only through this module."""
        if self.training == mode:
            return self
        modules = self.__dict__.get("_all_modules")
        if modules is None:
            modules = self.__dict__["_all_modules"] = list(self.modules())
        for module in modules:
            module.__dict__["training"] = mode
        return self

    # --- building blocks -------------------------------------------------
    def _embed(self, batch: DecoderBatch) -> torch.Tensor:
        """E: (B, S, d) with CLS at 0, words at 1..n, SEP at n+1, zeros after."""
        x = self.input_norm(self.input_proj(batch.vectors))
        B, S, _ = x.shape
        pos = torch.arange(S, device=x.device).unsqueeze(0)
        lengths = batch.lengths.unsqueeze(1)
        is_word = ((pos >= 1) & (pos <= lengths)).unsqueeze(-1)
        is_sep = (pos == lengths + 1).unsqueeze(-1)
        is_cls = (pos == 0).unsqueeze(-1)
        x = torch.where(is_word, x, torch.zeros_like(x))
        x = x + is_sep * self.sep_vector + is_cls * self.cls_vector
        return x

    def _position_rows(self, pointer: torch.Tensor, S: int, valid: torch.Tensor) -> torch.Tensor:
        H = self.half_context
        j = torch.arange(S, device=pointer.device).unsqueeze(0)
        offset = j - pointer.unsqueeze(1)
        rows = torch.where(offset.abs() <= H, offset + H, torch.full_like(offset, 2 * H + 2))
        rows[:, 0] = 2 * H + 1
        return torch.where(valid, rows, torch.full_like(rows, self.pad_row))

    def _context(self, memory: torch.Tensor, pointer: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Attention read of the memory around the pointer: (B, d)."""
        rows = self._position_rows(pointer, memory.shape[1], valid)
        keys = self.token_multiplier * memory + self.drop_positions(self.positions(rows))
        queries = self.drop_queries(self.queries) * self.query_scale  # (K, d)
        scores = torch.einsum("bsd,kd->bks", keys, queries).amax(dim=1)  # (B, S)
        scores = self.drop_scores(scores)
        scores = scores.masked_fill(~valid, -1e12)
        alpha = torch.softmax(scores, dim=-1)
        return torch.einsum("bs,bsd->bd", alpha, memory * self.value_scale)

    def _slot_vector(self, logits: torch.Tensor) -> torch.Tensor:
        """The step's soft action mix: softmax weights of the actions at least
        as likely as SHIFT, times their embeddings. (B, d)"""
        selected = logits >= logits[:, SHIFT : SHIFT + 1]
        weights = torch.softmax(logits, dim=-1) * selected
        return weights @ self.action_embed.weight

    def _write(self, memory: torch.Tensor, pointer: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Add the step's soft action mix to the memory slot at the pointer."""
        slot = F.one_hot(pointer, memory.shape[1]).to(memory.dtype).unsqueeze(-1)
        return memory + slot * self._slot_vector(logits).unsqueeze(1)

    def _step_logits(
        self, embedded: torch.Tensor, memory: torch.Tensor, pointer: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        index = pointer.view(-1, 1, 1).expand(-1, 1, embedded.shape[-1])
        current = embedded.gather(1, index).squeeze(1)
        features = [current, context]
        if self.slot_state:
            features.append(memory.gather(1, index).squeeze(1) - current)
        state = self.drop_mlp(torch.cat(features, dim=-1))
        return self.output(torch.tanh(self.hidden(state)))

    def _init_state(self, batch: DecoderBatch):
        embedded = self._embed(batch)
        B, S, _ = embedded.shape
        valid = torch.arange(S, device=embedded.device).unsqueeze(0) <= (batch.lengths.unsqueeze(1) + 1)
        cls_slot = F.one_hot(torch.zeros(B, dtype=torch.long, device=embedded.device), S)
        memory = embedded + cls_slot.to(embedded.dtype).unsqueeze(-1) * self.start_vector
        zero = torch.zeros(B, dtype=torch.long, device=embedded.device)
        context = self._context(memory, zero, valid)
        return embedded, memory, context, valid

    # --- training --------------------------------------------------------
    def forward_train(self, batch: DecoderBatch) -> TrainOutput:
        """Teacher-forced pass with the multi-corpus alignment rule.

        The pointer follows the gold rows, except that a gold SHIFT is delayed
        by one step (same gold row replayed, pointer kept) when some action in
        ``batch.foreign`` (a label the sequence's corpus does not annotate) is
        more probable than SHIFT, at most once in a row: the model is taken to
        be opening or closing a foreign span there. The memory always receives
        the model's own soft action mix.

        Runs :meth:`_forward_train_fast` unless ``fast_train_loop`` is off. With
        dropout off both loops compute the same logits and gradients; with
        dropout on they draw their masks differently (see the fast loop).
        """
        if self.fast_train_loop:
            return self._forward_train_fast(batch)
        return self._forward_train_reference(batch)

    def _forward_train_reference(self, batch: DecoderBatch) -> TrainOutput:
        """The teacher-forced pass as plainly written: the memory itself is
        updated and attended at every step, dropout masks drawn per step over
        the gathered position rows and the queries. Kept for tests."""
        assert batch.gold is not None and batch.n_rows is not None
        embedded, memory, context, valid = self._init_state(batch)
        gold = batch.gold
        foreign = batch.foreign if batch.foreign is not None else torch.zeros_like(gold[:, 0])
        has_foreign = bool(foreign.any())
        state = GoldAlignment(batch, foreign, has_foreign)
        n_steps = int(gold.shape[1])
        if has_foreign:
            n_steps = int(max(n_steps, round(self.max_train_steps_factor * gold.shape[1])))
        for _ in range(n_steps):
            pointer = state.pointer
            logits = self._step_logits(embedded, memory, pointer, context)
            state.observe(logits)
            memory = self._write(memory, pointer, logits)
            context = self._context(memory, pointer, valid)
            state.advance()
            if bool(state.done.all()):
                break
        return state.output(embedded.dtype)

    def _forward_train_fast(self, batch: DecoderBatch) -> TrainOutput:
        """The teacher-forced pass on attention-score tables, with a hand-written
        backward (:class:`~spacy_sru_ner.train_loop.TeacherForcedLoop`).

        A step of the reference loop recomputes the scores of every query with
        every memory slot and position row, ``(B, S, d) x (K, d)``. Here the
        memory part ``tau <q_k, M_j>`` is a (B * S, K) table computed once,
        kept beside the memory, and a slot write adds ``weights @ (tau A Q^T)``
        to one row of it (with ``weights @ A`` to the memory row); the
        position part is the table ``P Q^T`` over the position rows the batch
        can reach, gathered at the step's rows. So a step costs in the number
        of positions, not positions times width times queries. Without foreign
        labels the pointer path follows the gold rows alone and is computed
        before the loop, which then runs without host syncs.

        Dropout: the latent queries get one mask per pass (the reference draws
        one per step, which would force the table to be recomputed), the
        position embeddings one mask per step over the reachable rows (all
        steps' masks drawn at once; the reference masks the gathered (B, S, d)
        rows); the MLP input and score dropouts are as in the reference.
        """
        assert batch.gold is not None and batch.n_rows is not None
        embedded = self._embed(batch)
        B, S, d = embedded.shape
        device, dtype = embedded.device, embedded.dtype
        gold = batch.gold
        foreign = batch.foreign if batch.foreign is not None else torch.zeros_like(gold[:, 0])
        has_foreign = bool(foreign.any())
        valid = torch.arange(S, device=device).unsqueeze(0) <= (batch.lengths.unsqueeze(1) + 1)
        queries = F.dropout(self.queries, self.drop_queries.p, self.training) * self.query_scale  # (K, d)
        tau = self.token_multiplier
        start = F.one_hot(torch.zeros(B, dtype=torch.long, device=device), S).to(dtype).unsqueeze(-1)
        memory = (embedded + start * self.start_vector).reshape(B * S, d)
        scores = tau * (memory @ queries.t())  # (B * S, K)
        # what an action adds to a memory row and to its scores, side by side
        write_rows = torch.cat([self.action_embed.weight, tau * (self.action_embed.weight @ queries.t())], dim=1)
        position_table, rows_at = self._position_table(S)
        spec = LoopSpec(
            B=B, S=S, row_starts=torch.arange(B, device=device) * S, rows_at=rows_at,
            padding=torch.zeros((B, S), dtype=dtype, device=device).masked_fill_(~valid, -1e12),
            slot_state=self.slot_state,
            p_mlp=self.drop_mlp.p if self.training else 0.0,
            p_scores=self.drop_scores.p if self.training else 0.0,
        )
        path = None
        spec.compiled = (
            self.compiled_train_loop and device.type == "cpu" and dtype == torch.float32 and train_cpu.available()
        )
        if spec.compiled:  # the compiled loop follows the gold alignment itself
            spec.gold, spec.n_rows, spec.max_pointer = gold, batch.n_rows, batch.lengths + 1
            spec.foreign = foreign if has_foreign else None
            spec.max_steps = int(gold.shape[1])
            if has_foreign:
                spec.max_steps = int(max(gold.shape[1], round(self.max_train_steps_factor * gold.shape[1])))
            n_masks = spec.max_steps
        elif has_foreign:
            spec.alignment = GoldAlignment(batch, foreign, has_foreign)
            spec.max_steps = int(max(gold.shape[1], round(self.max_train_steps_factor * gold.shape[1])))
            spec.check_every = 1 if device.type == "cpu" else 8
            n_masks = spec.max_steps
        else:
            path = self._gold_path(batch)
            spec.path_pointer = path.pointer
            n_masks = path.n_steps
        p_positions = self.drop_positions.p
        if self.training and p_positions > 0:  # one mask per step over the reachable rows
            masks = torch.rand((n_masks,) + tuple(position_table.shape), device=device, dtype=dtype) >= p_positions
            position_scores = (masks.to(dtype) * (position_table / (1.0 - p_positions))) @ queries.t()
        else:
            position_scores = (position_table @ queries.t()).unsqueeze(0)
        logits = TeacherForcedLoop.apply(
            spec, embedded.reshape(B * S, d), memory, scores, write_rows, position_scores, self.value_scale,
            self.hidden.weight, self.hidden.bias, self.output.weight, self.output.bias,
        )
        if spec.compiled:
            recorded = spec.recorded
            return TrainOutput(
                logits=logits,
                cursor=recorded["cursor"].to(device),
                delay=recorded["delay"].to(device),
                active=recorded["active"].to(device),
                pointer=recorded["pointer"].to(device),
            )
        if path is not None:
            return TrainOutput(
                logits=logits,
                cursor=path.cursor,
                delay=torch.zeros_like(path.active),
                active=path.active,
                pointer=path.pointer,
            )
        recorded = spec.alignment.output(dtype)
        recorded.logits = logits
        return recorded

    def _position_table(self, S: int):
        """The position embeddings that ``S`` positions can use (offsets within
        ``±(S - 1)``, then the CLS, outside-window and padding rows) and, for
        each pointer, the row of each position in that table: (S, S)."""
        H = self.half_context
        reach = min(S - 1, H)
        every = torch.ones((S, S), dtype=torch.bool, device=self.positions.weight.device)
        rows = self._position_rows(torch.arange(S, device=every.device), S, every)
        n_offsets = 2 * reach + 1
        rows = torch.where(rows <= H + reach, rows - (H - reach), rows - (2 * H + 1) + n_offsets)
        weight = self.positions.weight
        return torch.cat([weight[H - reach : H + reach + 1], weight[2 * H + 1 :]]), rows

    def _gold_path(self, batch: DecoderBatch) -> "GoldPath":
        """The steps of a teacher-forced pass without foreign labels, as the
        reference loop takes them: step t is at gold row ``min(t, n_rows - 1)``;
        the pointer advances after each SHIFT or EOA row (up to the SEP
        position); a sequence is done after its first EOA row; the pass ends
        when all are done (or after the gold rows)."""
        gold = batch.gold
        B, R, _ = gold.shape
        device = gold.device
        steps = torch.arange(R, device=device)
        cursor = torch.minimum(steps.unsqueeze(0), (batch.n_rows - 1).unsqueeze(1))  # (B, R)
        rows = gold.gather(1, cursor.unsqueeze(-1).expand(-1, -1, gold.shape[-1]))
        is_eoa = rows[..., EOA] > 0
        advance = ((rows[..., SHIFT] > 0) | is_eoa).long()
        moved = torch.cumsum(advance, dim=1) - advance
        pointer = torch.minimum(1 + moved, (batch.lengths + 1).unsqueeze(1))
        done_before = (torch.cumsum(is_eoa.long(), dim=1) - is_eoa.long()) > 0
        finishes = is_eoa.any(dim=1)
        first_eoa = torch.where(finishes, is_eoa.long().argmax(dim=1), torch.full_like(batch.n_rows, R - 1))
        n_steps = int(first_eoa.max()) + 1
        return GoldPath(
            n_steps=n_steps,
            pointer=pointer[:, :n_steps],
            cursor=cursor[:, :n_steps],
            active=(~done_before[:, :n_steps]).to(batch.vectors.dtype),
        )


    # --- inference -------------------------------------------------------
    @torch.no_grad()
    def forward_predict(self, batch: DecoderBatch, chunk_size: Optional[int] = None) -> PredictOutput:
        """Greedy decoding; a sequence stops once P(EOA) > 0.5.

        Sequences are decoded in chunks of similar length (sorted by length),
        so short ones neither wait for nor pad to the longest of the batch.
        Default chunk size: 64 sequences on CPU, where a step's cost grows with
        the chunk, and 1024 on GPU, where the number of steps (kernel launches)
        is what costs.
        """
        B = batch.vectors.shape[0]
        if chunk_size is None:
            chunk_size = 64 if batch.vectors.device.type == "cpu" else 1024
        if B <= chunk_size:
            return self._predict_chunk(batch)
        order = torch.argsort(batch.lengths)
        results = []
        for index in order.split(chunk_size):
            n_pos = int(batch.lengths[index].max()) + 2
            sub = DecoderBatch(vectors=batch.vectors[index, :n_pos], lengths=batch.lengths[index])
            results.append((index, self._predict_chunk(sub)))
        n_steps = torch.zeros(B, dtype=torch.long, device=batch.vectors.device)
        T = max(out.probs.shape[1] for _, out in results)
        probs = batch.vectors.new_zeros((B, T, self.n_actions))
        for index, out in results:
            probs[index, : out.probs.shape[1]] = out.probs
            n_steps[index] = out.n_steps
        return PredictOutput(probs=probs, n_steps=n_steps)

    def _predict_chunk(self, batch: DecoderBatch) -> PredictOutput:
        """Greedy decoding of one chunk: in eval mode the compiled loop on CPU or
        the batched fast loop, in training mode the reference loop."""
        if self.training:
            return self._greedy(batch)
        if self.compiled_cpu_loop and batch.vectors.device.type == "cpu" and greedy_cpu.available():
            return self._greedy_compiled(batch)
        return self._greedy_fast(batch)

    @torch.no_grad()
    def _predict_reference(self, batch: DecoderBatch) -> PredictOutput:
        """Greedy decoding with the training loop's building blocks."""
        return self._greedy(batch)

    def _greedy(self, batch: DecoderBatch) -> PredictOutput:
        embedded, memory, context, valid = self._init_state(batch)
        B, S, _ = embedded.shape
        device = embedded.device
        max_pointer = batch.lengths + 1
        pointer = torch.ones(B, dtype=torch.long, device=device)
        finished = torch.zeros(B, dtype=torch.bool, device=device)
        n_steps = torch.zeros(B, dtype=torch.long, device=device)
        max_steps = max(1, int(self.max_predict_steps_factor * S))
        all_probs = []
        for _ in range(max_steps):
            logits = self._step_logits(embedded, memory, pointer, context)
            probs = torch.sigmoid(logits)
            all_probs.append(probs)
            n_steps = n_steps + (~finished).long()
            finished = finished | (probs[:, EOA] > 0.5)
            if bool(finished.all()):
                break
            memory = self._write(memory, pointer, logits)
            context = self._context(memory, pointer, valid)
            kind = logits.argmax(dim=1)
            advance = (kind == SHIFT) | (kind == EOA)
            pointer = torch.minimum(pointer + advance.long(), max_pointer)
        return PredictOutput(probs=torch.stack(all_probs, dim=1), n_steps=n_steps)

    def invalidate_tables(self) -> None:
        """Forget the cached weight tables of the inference loops. The component
        calls this after every optimizer step, around ``use_params`` and on
        load; the cache also checks the parameters' storage and version, so a
        direct in-place change of a parameter is seen too."""
        self.__dict__["_weight_tables"] = None
        self.__dict__["_numpy_tables"] = None

    def _parameters_key(self) -> tuple:
        params = self.__dict__.get("_parameter_list")
        if params is None:
            params = self.__dict__["_parameter_list"] = list(self.parameters())
        return tuple((p.data_ptr(), p._version) for p in params)

    def _cached(self, name: str, build):
        """``build()``, kept under ``name`` until the parameters change."""
        cached = self.__dict__.get(name)
        key = self._parameters_key()
        if cached is not None and cached[0] == key:
            return cached[1]
        value = build()
        self.__dict__[name] = (key, value)
        return value

    def weight_tables(self) -> "WeightTables":
        """The parts of the inference tables that depend on the weights only,
        computed once and kept until the weights change."""
        return self._cached("_weight_tables", self._build_weight_tables)

    @torch.no_grad()
    def _build_weight_tables(self) -> "WeightTables":
        d = self.width
        w_cur = self.hidden.weight[:, :d]
        w_ctx = self.hidden.weight[:, d : 2 * d]
        queries = (self.queries * self.query_scale).t()  # (d, K)
        tau = self.token_multiplier
        actions = self.action_embed.weight  # (A, d)
        start = self.start_vector
        value_ctx = (self.value_scale.unsqueeze(1) * w_ctx.t()).contiguous()  # (d, 2w)
        table_parts = [actions @ value_ctx, tau * (actions @ queries)]
        hidden_start = torch.zeros_like(self.hidden.bias)
        if self.slot_state:
            w_slot = self.hidden.weight[:, 2 * d :]
            hidden_start = start @ w_slot.t()
            table_parts.append(actions @ w_slot.t())
        tables = WeightTables(
            hidden=w_cur.t().contiguous(),
            context=value_ctx,
            scores=(tau * queries).contiguous(),
            hidden_start=hidden_start,
            context_start=start @ value_ctx,
            scores_start=tau * (start @ queries),
            position_queries=(queries.t() @ self.positions.weight.t()).contiguous(),
            write=torch.cat(table_parts, dim=1).contiguous(),
            out_weight=self.output.weight.t().contiguous(),
        )
        return tables

    @torch.no_grad()
    def _build_numpy_tables(self) -> Dict[str, numpy.ndarray]:
        tables = self.weight_tables()
        arrays = {name: getattr(tables, name) for name in tables.__dataclass_fields__}
        arrays.update(
            proj=self.input_proj.weight.t(),
            proj_bias=self.input_proj.bias,
            norm_weight=self.input_norm.weight,
            norm_bias=self.input_norm.bias,
            cls=self.cls_vector,
            sep=self.sep_vector,
            hidden_bias=self.hidden.bias,
            out_bias=self.output.bias,
        )
        return {name: numpy.ascontiguousarray(a.detach().cpu().numpy()) for name, a in arrays.items()}

    def can_predict_numpy(self) -> bool:
        """Whether :meth:`predict_numpy` can run: weights on the CPU, compiled loop on."""
        return self.compiled_cpu_loop and greedy_cpu.available() and self.output.weight.device.type == "cpu"

    def predict_numpy(self, vectors: numpy.ndarray, lengths: numpy.ndarray, chunk_size: int = 64) -> List[numpy.ndarray]:
        """Greedy decoding on the CPU from numpy input to numpy output, without
        torch: what :meth:`forward_predict` computes with the compiled loop,
        but the embedding and the tables in numpy with the cached weights (a
        torch call costs microseconds that matter at batch size 1). Sequences
        are decoded in chunks of similar length. Returns each sequence's
        (steps, A) step probabilities."""
        w = self._cached("_numpy_tables", self._build_numpy_tables)
        lengths = numpy.asarray(lengths, dtype="int64")
        results: List[numpy.ndarray] = [None] * len(lengths)  # type: ignore[list-item]
        order = numpy.argsort(lengths, kind="stable")
        for start in range(0, len(order), chunk_size):
            index = order[start : start + chunk_size]
            n = lengths[index]
            S = int(n.max()) + 2
            x = vectors[index, :S] @ w["proj"] + w["proj_bias"]
            mean = x.mean(axis=-1, keepdims=True)
            x = x - mean
            x /= numpy.sqrt((x * x).mean(axis=-1, keepdims=True) + self.input_norm.eps)
            x = x * w["norm_weight"] + w["norm_bias"]
            positions = numpy.arange(S)
            x[~((positions >= 1) & (positions <= n[:, None]))] = 0.0
            x[numpy.arange(len(index)), n + 1] += w["sep"]
            x[:, 0] += w["cls"]
            hidden = x @ w["hidden"] + w["hidden_bias"]
            hidden[:, 0] += w["hidden_start"]
            context = x @ w["context"]
            context[:, 0] += w["context_start"]
            scores = x @ w["scores"]
            scores[:, 0] += w["scores_start"]
            scores[positions[None, :] > (n[:, None] + 1)] = -1e12
            max_steps = max(1, int(self.max_predict_steps_factor * S))
            probs, n_steps = greedy_cpu.decode(
                hidden, numpy.ascontiguousarray(context), numpy.ascontiguousarray(scores.transpose(0, 2, 1)),
                w["position_queries"], self.half_context, w["write"], w["out_weight"], w["out_bias"], n,
                max_steps, self.slot_state,
            )
            for j, b in enumerate(index):
                results[b] = probs[j, : int(n_steps[j])]
        return results

    def _inference_tables(self, batch: DecoderBatch, weights: Optional[WeightTables] = None) -> "InferenceTables":
        """The per-position tables that the fast greedy loops work on.

        The memory enters a step only through linear maps: the hidden layer's
        slot part ``W_slot M[p]``, its context part ``W_ctx (b * sum_j a_j M_j)
        = sum_j a_j U_j`` and the attention scores ``tau <q_k, M_j>``. So the
        loops keep three per-position tables instead of the memory: ``T`` (the
        hidden pre-activation's word and slot part), ``U`` and the scores, and a
        slot write adds ``weights @ write`` to one position of each. Position
        scores are ``<q_k, P_row>`` for the row of each (pointer, position).
        What depends on the weights only comes from :meth:`weight_tables`.
        """
        weights = weights if weights is not None else self.weight_tables()
        embedded = self._embed(batch)
        B, S, d = embedded.shape
        valid = torch.arange(S, device=embedded.device).unsqueeze(0) <= (batch.lengths.unsqueeze(1) + 1)
        hidden = torch.addmm(self.hidden.bias, embedded.view(B * S, d), weights.hidden).view(B, S, -1)  # T
        context = (embedded.view(B * S, d) @ weights.context).view(B, S, -1)  # U
        scores = (embedded.view(B * S, d) @ weights.scores).view(B, S, -1)
        hidden[:, 0] += weights.hidden_start  # the start vector sits in the CLS slot
        context[:, 0] += weights.context_start
        scores[:, 0] += weights.scores_start
        return InferenceTables(
            hidden=hidden,
            context=context,
            scores=scores.transpose(1, 2).masked_fill_(~valid.unsqueeze(1), -1e12).contiguous(),  # (B, K, S)
            position_queries=weights.position_queries,  # (K, 2H + 4)
            write=weights.write,  # (A, 2w + K [+ 2w])
        )

    def _greedy_compiled(self, batch: DecoderBatch) -> PredictOutput:
        """The fast greedy loop as one compiled loop over sequences (CPU, numba)."""
        weights = self.weight_tables()
        tables = self._inference_tables(batch, weights)
        max_steps = max(1, int(self.max_predict_steps_factor * tables.hidden.shape[1]))
        hidden, context, scores, lengths = [
            numpy.ascontiguousarray(a.numpy()) for a in (tables.hidden, tables.context, tables.scores, batch.lengths)
        ]
        probs, n_steps = greedy_cpu.decode(
            hidden, context, scores, weights.position_queries.numpy(), self.half_context, weights.write.numpy(),
            weights.out_weight.numpy(), self.output.bias.detach().numpy(), lengths, max_steps, self.slot_state,
        )
        T = max(1, int(n_steps.max()))
        return PredictOutput(probs=torch.from_numpy(probs[:, :T]), n_steps=torch.from_numpy(n_steps))

    def _greedy_fast(self, batch: DecoderBatch) -> PredictOutput:
        """The reference greedy loop on the per-position tables of
        :meth:`_inference_tables`, batched (no autograd, no dropout).

        A step is a row gather, one batched vector-matrix product (the context),
        the output layer, the write and the attention softmax. Finished
        sequences are dropped from the batch once a quarter of those left have
        finished.
        """
        weights = self.weight_tables()
        tables = self._inference_tables(batch, weights)
        hidden, context_table, scores_table, write_table = tables.hidden, tables.context, tables.scores, tables.write
        B, S = hidden.shape[:2]
        device, dtype = hidden.device, hidden.dtype
        positions = torch.arange(S, device=device)
        every = torch.ones((S, S), dtype=torch.bool, device=device)
        rows = self._position_rows(positions, S, every)  # (pointer, position)
        position_scores = tables.position_queries[:, rows].transpose(0, 1).contiguous()  # (S, K, S)
        lengths = batch.lengths
        n_ctx, n_scores = context_table.shape[-1], scores_table.shape[1]
        advance = torch.zeros(self.n_actions, dtype=torch.long, device=device)
        advance[SHIFT] = advance[EOA] = 1
        out_weight, out_bias = weights.out_weight, self.output.bias
        max_pointer = lengths + 1
        max_steps = max(1, int(self.max_predict_steps_factor * S))
        check_every = 1 if device.type == "cpu" else 8
        probs = torch.zeros((max_steps, B, self.n_actions), dtype=dtype, device=device)
        alive = torch.arange(B, device=device)  # rows still decoded, as indices into the chunk
        row_starts = alive * S  # flat index of each row's first position in the tables
        finished = torch.zeros(B, dtype=torch.bool, device=device)
        pointer = torch.ones(B, dtype=torch.long, device=device)
        scores = torch.empty_like(scores_table)
        alpha = torch.softmax((scores_table + position_scores[0]).amax(1), dim=-1)
        n_run = max_steps
        for t in range(max_steps):
            slot = row_starts + pointer
            current = hidden.view(-1, hidden.shape[-1]).index_select(0, slot)
            pre = torch.baddbmm(current.unsqueeze(1), alpha.unsqueeze(1), context_table)
            logits = torch.addmm(out_bias, torch.tanh(pre.squeeze(1)), out_weight)
            if len(alive) == B:
                step_probs = torch.sigmoid(logits, out=probs[t])
            else:
                step_probs = torch.sigmoid(logits)
                probs[t].index_copy_(0, alive, step_probs)
            finished |= step_probs[:, EOA] > 0.5
            if t % check_every == check_every - 1:
                n_finished = int(finished.sum())
                if n_finished == len(alive):
                    n_run = t + 1
                    break
                if 4 * n_finished >= len(alive):
                    # drop finished rows, and positions past the longest remaining sequence
                    keep = (~finished).nonzero().squeeze(1)
                    alive, pointer, max_pointer, logits = alive[keep], pointer[keep], max_pointer[keep], logits[keep]
                    n_pos = int(max_pointer.max()) + 1
                    hidden = hidden[keep, :n_pos]
                    context_table = context_table[keep, :n_pos]
                    scores_table = scores_table[keep, :, :n_pos]
                    position_scores = position_scores[:n_pos, :, :n_pos].contiguous()
                    scores = torch.empty_like(scores_table)
                    finished = finished[keep]
                    row_starts = torch.arange(len(alive), device=device) * n_pos
                    slot = row_starts + pointer
            weights = torch.softmax(logits, dim=-1) * (logits >= logits[:, SHIFT : SHIFT + 1])
            update = weights @ write_table
            context_table.view(-1, n_ctx).index_add_(0, slot, update[:, :n_ctx])
            score_slot = pointer.view(-1, 1, 1).expand(-1, n_scores, 1)
            scores_table.scatter_add_(2, score_slot, update[:, n_ctx : n_ctx + n_scores].unsqueeze(-1))
            if self.slot_state:
                hidden.view(-1, hidden.shape[-1]).index_add_(0, slot, update[:, n_ctx + n_scores :])
            torch.index_select(position_scores, 0, pointer, out=scores)
            alpha = torch.softmax(scores.add_(scores_table).amax(1), dim=-1)
            pointer = torch.minimum(pointer + advance[logits.argmax(dim=1)], max_pointer)
        probs = probs[:n_run].transpose(0, 1)
        stopped = probs[:, :, EOA] > 0.5
        first_stop = stopped.to(torch.uint8).argmax(dim=1)
        n_steps = torch.where(stopped.any(dim=1), first_stop + 1, torch.full_like(first_stop, n_run))
        return PredictOutput(probs=probs, n_steps=n_steps)

    def forward(self, vectors, lengths, gold=None, n_rows=None, foreign=None):
        batch = DecoderBatch(vectors=vectors, lengths=lengths, gold=gold, n_rows=n_rows, foreign=foreign)
        if gold is not None:
            return self.forward_train(batch)
        return self.forward_predict(batch)
