"""Thinc glue: ``spacy_sru_ner.SlotDecoder.v1`` = tok2vec >> PyTorch slot decoder.

The model's input is a :class:`SlotInput` (the docs, the token windows to
decode, and in training the gold rows and foreign-action masks); its output is a
:class:`SlotOutput`. No decoding of actions into spans happens here.
"""
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from spacy.ml.extract_spans import extract_spans
from spacy.ml.models.spancat import build_mean_max_reducer
from thinc.api import ArgsKwargs, Linear, Model, PyTorchWrapper_v2, chain, torch2xp, xp2torch
from thinc.types import Floats2d, Floats3d, Ragged

from .actions import N_SPECIAL
from .decoder import SlotDecoder
from .settings import DecoderSettings

Window = Tuple[int, int, int]  # (doc index, start token, end token)


@dataclass
class SlotInput:
    docs: List[Doc]
    windows: List[Window]
    gold: Optional[List[Floats2d]] = None  # per window: (rows, n_actions)
    foreign: Optional[Floats2d] = None  # (n_windows, n_actions)
    # per window: (rows,) 1 at the gold SHIFT rows the loss does not teach (lexicon; loss only)
    release: Optional[List[Any]] = None
    spans: Optional[List[Any]] = None  # per doc: (n, 2) candidate spans of the span head (training)
    span_gold: Optional[Tuple[Any, Any]] = None  # their (N, labels) targets and weights


@dataclass
class SlotOutput:
    """Training: ``logits`` (B, T, A); per step the gold row it was aligned
    with (``cursor``), whether a gold SHIFT was delayed (``delay``) and whether
    it enters the loss (``active``), all (B, T); with a span head and
    ``SlotInput.spans``, its logits ``span_logits`` (N, labels). Inference:
    ``probs``, one (steps, A) array per window."""

    logits: Optional[Floats3d] = None
    cursor: Optional[Any] = None
    delay: Optional[Floats2d] = None
    active: Optional[Floats2d] = None
    probs: Optional[List[Floats2d]] = None
    span_logits: Optional[Floats2d] = None


@registry.architectures("spacy_sru_ner.SlotDecoder.v1")
def build_slot_decoder(
    tok2vec: Model[List[Doc], List[Floats2d]],
    hidden_width: int,
    queries_per_action: int,
    half_context: int,
    dropout_positions: float,
    dropout_queries: float,
    dropout_scores: float,
    dropout_mlp: float,
    token_multiplier: float,
    train_token_multiplier: bool,
    max_train_steps_factor: float,
    max_predict_steps_factor: float,
    slot_state: bool,
    span_aux_width: int = 0,
    nO: Optional[int] = None,
) -> Model[SlotInput, SlotOutput]:
    """Build the SRU-NER model: a tok2vec encoder feeding the slot decoder.

    tok2vec: any layer mapping docs to one vector per token (a CNN tok2vec or a
        transformer listener). The other settings are those of
        :class:`~spacy_sru_ner.settings.DecoderSettings` (documented there;
        defaults in the ``sru_ner`` component's default config).
    span_aux_width: hidden width of a training-only span head (spancat's
        mean-max reducer and a linear layer per decoder label, on the same
        tok2vec; see :mod:`.span_aux`); 0: none.
    nO: number of actions; set by the component from its labels.
    """
    if span_aux_width < 0:
        raise ValueError(f"span_aux_width must be >= 0 (0: no span head), got {span_aux_width}.")
    settings = DecoderSettings(
        hidden_width=hidden_width,
        queries_per_action=queries_per_action,
        half_context=half_context,
        dropout_positions=dropout_positions,
        dropout_queries=dropout_queries,
        dropout_scores=dropout_scores,
        dropout_mlp=dropout_mlp,
        token_multiplier=token_multiplier,
        train_token_multiplier=train_token_multiplier,
        max_train_steps_factor=max_train_steps_factor,
        max_predict_steps_factor=max_predict_steps_factor,
        slot_state=slot_state,
    )
    model: Model[SlotInput, SlotOutput] = Model(
        "sru_slot_decoder",
        forward,
        init=init,
        layers=[tok2vec],
        refs={"tok2vec": tok2vec, "decoder": None, "span_head": None},
        dims={"nO": nO, "nI": None},
        attrs={"decoder_settings": settings, "span_aux_width": span_aux_width},
    )
    return model


def ensure_decoder(model: Model) -> None:
    """Create the PyTorch decoder once the number of actions (nO) is known."""
    if model.maybe_get_ref("decoder") is not None:
        return
    if not model.has_dim("nO"):
        raise ValueError(
            "Cannot build the sru_ner decoder: the number of actions is unknown. "
            "Add labels to the component (initialize with data or labels) first."
        )
    tok2vec = model.get_ref("tok2vec")
    n_inputs = model.get_dim("nI") if model.has_dim("nI") else None
    if n_inputs is None and tok2vec.has_dim("nO"):
        n_inputs = tok2vec.get_dim("nO")
    if n_inputs is None:
        raise ValueError("Cannot build the sru_ner decoder: the tok2vec output width (nO) is not set.")
    model.set_dim("nI", n_inputs)
    module = SlotDecoder(n_inputs, model.get_dim("nO"), model.attrs["decoder_settings"])
    layer = PyTorchWrapper_v2(module, convert_inputs=_convert_inputs, convert_outputs=_convert_outputs)
    model.layers.append(layer)
    model.set_ref("decoder", layer)
    width = model.attrs.get("span_aux_width", 0)
    if width:
        n_labels = (model.get_dim("nO") - N_SPECIAL) // 2
        head = chain(extract_spans(), build_mean_max_reducer(width), Linear(nO=n_labels, nI=width))
        ops = model.ops
        sample = (Ragged(ops.alloc2f(2, n_inputs), ops.asarray1i([2])), Ragged(ops.asarray2i([[0, 1]]), ops.asarray1i([1])))
        head.initialize(X=sample)
        model.layers.append(head)
        model.set_ref("span_head", head)


def init(model: Model, X: Optional[SlotInput] = None, Y: Any = None) -> None:
    tok2vec = model.get_ref("tok2vec")
    if X is not None:
        tok2vec.initialize(X=X.docs)
    else:
        tok2vec.initialize()
    ensure_decoder(model)


#: In training, windows are decoded in groups of at most this many windows of
#: similar cost (``model.attrs["train_group_size"]`` overrides it), so that a
#: short window neither steps until the longest one of its batch ends nor pads
#: its memory to that window's length.
TRAIN_GROUP_SIZE = 16
#: a window is grouped with windows at most this many times as costly as itself
SPREAD = 4.0


def train_groups(n_rows: numpy.ndarray, group_size: int, n_words: Optional[numpy.ndarray] = None) -> List[numpy.ndarray]:
    """Window indices in groups of similar cost, the number of decoder steps
    (gold rows) times the memory length (words + 2): longest first, a group
    takes the next windows while it has fewer than ``group_size`` and the next
    costs at least 1 / ``SPREAD`` of its first. A group's work and autograd
    memory are about its size times its first window's cost, so no window pays
    for more than ``SPREAD`` times its own (a 350-word sentence no longer pads
    every window of its batch to 350 positions and 450 steps). One group, in
    the windows' own order, if all fit."""
    if n_words is None:
        n_words = numpy.zeros_like(n_rows)
    cost = n_rows.astype("float64") * (n_words + 2)
    order = numpy.argsort(-cost, kind="stable")
    groups: List[List[int]] = []
    for w in order:
        if groups and len(groups[-1]) < group_size and SPREAD * cost[w] >= cost[groups[-1][0]]:
            groups[-1].append(int(w))
        else:
            groups.append([int(w)])
    if len(groups) == 1:
        return [numpy.arange(len(n_rows))]
    return [numpy.asarray(group[::-1]) for group in groups[::-1]]


def forward(model: Model, inputs: SlotInput, is_train: bool) -> Tuple[SlotOutput, Callable]:
    tok2vec = model.get_ref("tok2vec")
    decoder = model.get_ref("decoder")
    if decoder is None:
        raise ValueError("The sru_ner model is not initialized: call nlp.initialize() first.")
    tokvecs, bp_tokvecs = tok2vec(inputs.docs, is_train)
    windows = inputs.windows
    training = is_train and inputs.gold is not None
    module = decoder.shims[0]._model
    if not training and model.ops.xp is numpy and module.can_predict_numpy():
        # CPU inference straight from numpy to the compiled loop, no torch call
        kwargs = _decoder_input(model, inputs, tokvecs, numpy.arange(len(windows)), False)
        probs = module.predict_numpy(kwargs["vectors"], kwargs["lengths"]) if windows else []
        return SlotOutput(probs=probs), lambda d_logits: inputs.docs
    if training:
        n_rows = numpy.array([g.shape[0] for g in inputs.gold], dtype="int64")
        n_words = numpy.array([end - start for _, start, end in windows], dtype="int64")
        groups = train_groups(n_rows, model.attrs.get("train_group_size", TRAIN_GROUP_SIZE), n_words)
    else:
        groups = [numpy.arange(len(windows))]
    calls = []
    for group in groups:
        out, bp_decoder = decoder(_decoder_input(model, inputs, tokvecs, group, training), is_train)
        calls.append((group, out, bp_decoder))
    out = calls[0][1] if len(calls) == 1 else _merge_outputs(model, len(windows), calls)
    bp_head = None
    head = model.maybe_get_ref("span_head")
    if training and head is not None and inputs.spans is not None and sum(len(s) for s in inputs.spans):
        ops = model.ops
        X = Ragged(ops.flatten(tokvecs), ops.asarray1i([t.shape[0] for t in tokvecs]))
        indices = Ragged(
            ops.asarray2i(numpy.concatenate(inputs.spans)),
            ops.asarray1i([len(s) for s in inputs.spans]),
        )
        out.span_logits, bp_head = head((X, indices), is_train)

    def backprop(d_logits: Floats3d, d_span_logits: Optional[Floats2d] = None) -> List[Doc]:
        d_tokvecs = [model.ops.alloc2f(*t.shape) for t in tokvecs]
        if bp_head is not None and d_span_logits is not None:
            d_X, _ = bp_head(d_span_logits)
            for d_t, d_doc in zip(d_tokvecs, model.ops.unflatten(d_X.dataXd, d_X.lengths)):
                d_t += d_doc
        for group, group_out, bp_decoder in calls:
            n_steps = group_out.logits.shape[1]
            d_vectors = bp_decoder(model.ops.xp.ascontiguousarray(d_logits[group, :n_steps]))
            for b, w in enumerate(group):
                doc_i, start, end = windows[w]
                d_tokvecs[doc_i][start:end] += d_vectors[b, 1 : 1 + end - start]
        bp_tokvecs(d_tokvecs)
        return inputs.docs

    return out, backprop


def _decoder_input(model: Model, inputs: SlotInput, tokvecs: List[Floats2d], group: numpy.ndarray, training: bool):
    """The decoder's padded input for the windows ``group``."""
    xp = model.ops.xp
    windows = [inputs.windows[w] for w in group]
    n_words = numpy.array([end - start for _, start, end in windows], dtype="int64")
    width = tokvecs[0].shape[1] if tokvecs else model.get_dim("nI")
    vectors = model.ops.alloc3f(len(windows), int(n_words.max(initial=0)) + 2, width)
    for b, (doc_i, start, end) in enumerate(windows):
        vectors[b, 1 : 1 + end - start] = tokvecs[doc_i][start:end]
    kwargs = {"vectors": vectors, "lengths": xp.asarray(n_words)}
    if training:
        rows = [inputs.gold[w] for w in group]
        n_rows = numpy.array([r.shape[0] for r in rows], dtype="int64")
        gold = model.ops.alloc3f(len(windows), int(n_rows.max(initial=1)), model.get_dim("nO"))
        for b, r in enumerate(rows):
            gold[b, : r.shape[0]] = xp.asarray(r)
        kwargs["gold"] = gold
        kwargs["n_rows"] = xp.asarray(n_rows)
        if inputs.foreign is not None:
            kwargs["foreign"] = xp.asarray(numpy.asarray(inputs.foreign)[group], dtype="float32")
    return kwargs


def _merge_outputs(model: Model, n_windows: int, calls) -> SlotOutput:
    """One training output over all windows (steps zero-padded, inactive)."""
    ops = model.ops
    n_steps = max(out.logits.shape[1] for _, out, _ in calls)
    n_actions = calls[0][1].logits.shape[2]
    logits = ops.alloc3f(n_windows, n_steps, n_actions)
    cursor = ops.xp.zeros((n_windows, n_steps), dtype="int64")
    delay = ops.alloc2f(n_windows, n_steps)
    active = ops.alloc2f(n_windows, n_steps)
    for group, out, _ in calls:
        T = out.logits.shape[1]
        logits[group, :T] = out.logits
        cursor[group, :T] = out.cursor
        delay[group, :T] = out.delay
        active[group, :T] = out.active
    return SlotOutput(logits=logits, cursor=cursor, delay=delay, active=active)


def _convert_inputs(model: Model, X: dict, is_train: bool):
    device = model.shims[0].device
    kwargs = {}
    for key, value in X.items():
        kwargs[key] = xp2torch(value, requires_grad=(is_train and key == "vectors"), device=device)
    if "lengths" in kwargs:
        kwargs["lengths"] = kwargs["lengths"].long()
    if "n_rows" in kwargs:
        kwargs["n_rows"] = kwargs["n_rows"].long()

    def reverse(d_inputs: ArgsKwargs) -> Floats3d:
        return torch2xp(d_inputs.kwargs["vectors"])

    return ArgsKwargs(args=(), kwargs=kwargs), reverse


def _convert_outputs(model: Model, X_Ytorch: Any, is_train: bool):
    _, Ytorch = X_Ytorch
    if hasattr(Ytorch, "logits"):
        out = SlotOutput(
            logits=torch2xp(Ytorch.logits.detach()),
            cursor=torch2xp(Ytorch.cursor),
            delay=torch2xp(Ytorch.delay),
            active=torch2xp(Ytorch.active),
        )
    else:
        probs = torch2xp(Ytorch.probs)
        n_steps = Ytorch.n_steps.cpu().numpy()
        out = SlotOutput(probs=[probs[b, : int(n)] for b, n in enumerate(n_steps)])

    def reverse(d_logits: Floats3d) -> ArgsKwargs:
        d_torch = xp2torch(d_logits, device=Ytorch.logits.device)
        return ArgsKwargs(args=((Ytorch.logits,),), kwargs={"grad_tensors": (d_torch,)})

    return out, reverse
