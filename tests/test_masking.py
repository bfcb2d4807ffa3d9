"""Multi-corpus loss masking: projected targets, zero gradients for labels an
example's corpus does not annotate, the delayed-SHIFT rule (decoder level), and
the per-window foreign masks that ``SlotNER`` builds from the reference docs."""
from typing import List, Optional, Sequence, Tuple

import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example
from torch.nn import functional as F

from spacy_sru_ner.actions import EOA, SHIFT, ActionVocab, spans_to_rows
from spacy_sru_ner.corpora import set_annotated_labels
from spacy_sru_ner.decoder import DecoderBatch, SlotDecoder, TrainOutput
from spacy_sru_ner.model import SlotOutput

from conftest import SMALL_MODEL

LABELS = ("Chemical", "Disease")
VOCAB = ActionVocab(LABELS)
N_IN = 8
CHEM = [VOCAB.transition("Chemical"), VOCAB.reduce("Chemical")]
DIS = [VOCAB.transition("Disease"), VOCAB.reduce("Disease")]
TR_CHEM, RE_CHEM = CHEM
TR_DIS = DIS[0]

Spans = List[Tuple[int, int, str]]


def make_decoder(seed: int = 0) -> SlotDecoder:
    torch.manual_seed(seed)
    return SlotDecoder(
        n_inputs=N_IN,
        n_actions=VOCAB.n_actions,
        width=16,
        queries_per_action=2,
        half_context=4,
        dropout_positions=0.0,
        dropout_queries=0.0,
        dropout_scores=0.0,
        dropout_mlp=0.0,
        slot_state=True,
    )


def make_batch(
    sequences: Sequence[Tuple[int, Spans]], foreign: Optional[Sequence[Sequence[str]]], seed: int = 0
) -> DecoderBatch:
    """A padded batch of random word vectors with gold rows for ``(n_words, spans)``
    and, unless None, per-sequence foreign labels."""
    generator = torch.Generator().manual_seed(seed)
    rows = [spans_to_rows(n, spans, VOCAB) for n, spans in sequences]
    B, S, R = len(sequences), max(n for n, _ in sequences) + 2, max(len(r) for r in rows)
    gold = torch.zeros(B, R, VOCAB.n_actions)
    for b, r in enumerate(rows):
        gold[b, : len(r)] = torch.from_numpy(r)
    mask = None
    if foreign is not None:
        mask = torch.from_numpy(numpy.stack([VOCAB.label_action_mask(labels) for labels in foreign]))
    return DecoderBatch(
        vectors=torch.randn(B, S, N_IN, generator=generator),
        lengths=torch.tensor([n for n, _ in sequences]),
        gold=gold,
        n_rows=torch.tensor([len(r) for r in rows]),
        foreign=mask,
    )


def bce_loss(out: TrainOutput) -> torch.Tensor:
    """SlotNER.get_loss in torch: mean BCE-with-logits over actions and active steps."""
    bce = F.binary_cross_entropy_with_logits(out.logits, out.targets, reduction="none")
    denom = out.active.sum().clamp(min=1.0) * out.logits.shape[-1]
    return (bce * out.active.unsqueeze(-1)).sum() / denom


def logit_grad(decoder: SlotDecoder, batch: DecoderBatch) -> Tuple[TrainOutput, torch.Tensor]:
    out = decoder.forward_train(batch)
    loss = bce_loss(out)
    (grad,) = torch.autograd.grad(loss, out.logits)
    return out, grad


SEQUENCES = [
    (6, [(0, 2, "Chemical"), (1, 2, "Chemical"), (4, 6, "Chemical")]),
    (4, [(2, 3, "Chemical")]),
]


def test_foreign_actions_get_no_gradient():
    decoder = make_decoder()
    out, grad = logit_grad(decoder, make_batch(SEQUENCES, foreign=[["Disease"], ["Disease"]]))
    active = out.active > 0
    gold_eoa = out.targets[..., EOA] == 1
    assert not out.targets.requires_grad
    # foreign (Disease) actions: target = own probability, so d loss / d logit =
    # (sigmoid(logit) - target) / denom is 0. Not bit-exact: torch's vectorised sigmoid
    # of the (B, A) step tensor and of the stacked (B, T, A) tensor can differ by one
    # float32 ulp, so allow one ulp (2**-24 for p < 1) over the loss denominator.
    denom = float(out.active.sum()) * VOCAB.n_actions
    ulp = 2.0**-24 / denom
    for action in DIS:
        g = grad[..., action]
        assert torch.all(g[active & ~gold_eoa].abs() <= ulp)
        own = torch.sigmoid(out.logits[..., action].detach())[~gold_eoa]
        assert torch.allclose(out.targets[..., action][~gold_eoa], own, rtol=0, atol=2.0**-24)
        # at the gold EOA row the projection is off: foreign actions are pushed to 0
        assert torch.all(out.targets[..., action][gold_eoa] == 0)
        assert torch.all(g[active & gold_eoa] > 0)
    # the annotated label's actions and EOA are learned at every active step, SHIFT
    # at every step except a delayed SHIFT (soft target = own probability)
    for action in CHEM + [EOA]:
        assert torch.all(grad[..., action][active].abs() > 1000 * ulp)
    delayed = (out.targets[..., SHIFT] > 0) & (out.targets[..., SHIFT] < 1)
    assert torch.all(grad[..., SHIFT][active & ~delayed].abs() > 1000 * ulp)
    assert torch.all(grad[..., SHIFT][delayed].abs() <= ulp)
    # steps after a sequence's EOA enter nothing
    assert torch.all(grad[~active] == 0)


def test_without_masking_foreign_labels_are_negatives():
    decoder = make_decoder()
    for foreign in (None, [[], []]):
        out, grad = logit_grad(decoder, make_batch(SEQUENCES, foreign=foreign))
        active = out.active > 0
        assert out.logits.shape[1] == max(len(spans_to_rows(n, s, VOCAB)) for n, s in SEQUENCES)
        for action in DIS:
            assert torch.all(out.targets[..., action] == 0)
            assert torch.all(grad[..., action][active] > 0)


def test_get_loss_matches_torch_bce():
    """SlotNER.get_loss (numpy) gives the same loss and gradient as torch's BCE,
    and its gradient for foreign actions is zero up to float rounding."""
    decoder = make_decoder()
    out, grad = logit_grad(decoder, make_batch(SEQUENCES, foreign=[["Disease"], ["Disease"]]))
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    output = SlotOutput(
        logits=out.logits.detach().numpy(), targets=out.targets.numpy(), active=out.active.numpy()
    )
    loss, d_logits = pipe.get_loss([], output)
    assert loss == pytest.approx(float(bce_loss(out).detach()), rel=1e-5)
    numpy.testing.assert_allclose(d_logits, grad.numpy(), atol=1e-7)
    gold_eoa = out.targets.numpy()[..., EOA] == 1
    assert numpy.abs(d_logits[..., DIS][~gold_eoa]).max() < 1e-8


def constant_decoder(shift: float, foreign: float) -> SlotDecoder:
    """A decoder whose logits are its output bias, whatever the input."""
    decoder = make_decoder()
    with torch.no_grad():
        decoder.output.weight.zero_()
        decoder.output.bias.fill_(-3.0)
        decoder.output.bias[SHIFT] = shift
        decoder.output.bias[TR_DIS] = foreign
    return decoder


def record_pointers(decoder: SlotDecoder) -> List[List[int]]:
    pointers: List[List[int]] = []
    step_logits = decoder._step_logits

    def wrapped(embedded, memory, pointer, context):
        pointers.append(pointer.tolist())
        return step_logits(embedded, memory, pointer, context)

    decoder._step_logits = wrapped  # type: ignore[method-assign]
    return pointers


def test_delayed_shift_replays_gold_shift_once():
    decoder = constant_decoder(shift=0.0, foreign=3.0)  # P(TR(Disease)) = 0.95 > P(SHIFT) = 0.5
    pointers = record_pointers(decoder)
    # sequence 0 from a Chemical-only corpus; sequence 1 annotates both labels
    sequences = [(3, [(1, 2, "Chemical")]), (3, [(1, 2, "Chemical")])]
    out = decoder.forward_train(make_batch(sequences, foreign=[["Disease"], []]))
    gold = spans_to_rows(3, [(1, 2, "Chemical")], VOCAB)  # S, TR(C), S, RE(C), S, EOA
    assert [int(numpy.argmax(r)) for r in gold] == [SHIFT, TR_CHEM, SHIFT, RE_CHEM, SHIFT, EOA]
    p_shift = float(torch.sigmoid(torch.tensor(0.0)))
    # each gold SHIFT is first replayed with the model's own (detached) SHIFT
    # probability as target, then kept: one extra step per delay, never two delays in a row
    shift_targets = out.targets[0, :, SHIFT].tolist()
    assert shift_targets == [p_shift, 1, 0, p_shift, 1, 0, p_shift, 1, 0]
    kinds = [SHIFT, SHIFT, TR_CHEM, SHIFT, SHIFT, RE_CHEM, SHIFT, SHIFT, EOA]
    for t, kind in enumerate(kinds):
        if kind != SHIFT:
            assert out.targets[0, t, kind] == 1
    delayed = [t for t, v in enumerate(shift_targets) if 0 < v < 1]
    for t in delayed:
        assert out.targets[0, t, SHIFT] == torch.sigmoid(out.logits[0, t, SHIFT].detach())
        assert shift_targets[t + 1] == 1  # not delayed twice in a row
    assert out.active[0].sum() == len(gold) + 3
    # the pointer stays on the word during the delay
    assert [p[0] for p in pointers] == [1, 1, 2, 2, 2, 3, 3, 3, 4]
    # the fully annotated sequence in the same batch follows its gold rows undelayed
    assert out.active[1].sum() == len(gold)
    assert torch.equal(out.targets[1, : len(gold)], torch.from_numpy(gold))
    assert [p[1] for p in pointers[: len(gold)]] == [1, 2, 2, 3, 3, 4]


def test_no_delay_when_shift_is_more_probable_or_masking_off():
    sequences = [(3, [(1, 2, "Chemical")])]
    n_rows = len(spans_to_rows(3, [(1, 2, "Chemical")], VOCAB))
    decoder = constant_decoder(shift=2.0, foreign=1.0)  # P(SHIFT) > P(TR(Disease))
    out = decoder.forward_train(make_batch(sequences, foreign=[["Disease"]]))
    assert out.logits.shape[1] == n_rows
    assert set(out.targets[0, :, SHIFT].tolist()) == {0.0, 1.0}
    decoder = constant_decoder(shift=0.0, foreign=3.0)
    out = decoder.forward_train(make_batch(sequences, foreign=None))
    assert out.logits.shape[1] == n_rows
    assert set(out.targets[0, :, SHIFT].tolist()) == {0.0, 1.0}


# --- pipe level: foreign masks from the reference docs ---------------------------


def make_pipe(masking: bool = True, max_length: int = 256):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, "masking": masking, "max_length": max_length})
    for label in ("Chemical", "Disease", "Gene"):
        pipe.add_label(label)
    return nlp, pipe


def make_example(nlp, words: List[str], spans: Spans, annotated: Optional[List[str]]) -> Example:
    reference = Doc(nlp.vocab, words=words)
    reference.spans["sru_ner"] = [Span(reference, s, e, label=l) for s, e, l in spans]
    if annotated is not None:
        set_annotated_labels(reference, annotated)
    return Example(nlp.make_doc(reference.text), reference)


WORDS = "aspirin may cause asthma and BRCA1 loss".split()


def test_training_input_foreign_masks():
    nlp, pipe = make_pipe()
    actions = pipe.actions
    examples = [
        make_example(nlp, WORDS, [(0, 1, "Chemical")], ["Chemical"]),
        make_example(nlp, WORDS, [(3, 4, "Disease"), (5, 6, "Gene")], ["Disease", "Gene"]),
        make_example(nlp, WORDS, [(0, 1, "Chemical"), (3, 4, "Disease")], ["Chemical", "Disease", "Gene"]),
        make_example(nlp, WORDS, [(0, 1, "Chemical")], None),
    ]
    inputs = pipe._training_input(examples)
    assert len(inputs.windows) == 4
    expected = [
        actions.label_action_mask(["Disease", "Gene"]),
        actions.label_action_mask(["Chemical"]),
        numpy.zeros(actions.n_actions),
        numpy.zeros(actions.n_actions),
    ]
    numpy.testing.assert_array_equal(inputs.foreign, numpy.stack(expected))
    assert inputs.foreign[0, [EOA, SHIFT]].sum() == 0
    # the gold rows hold only the example's own spans
    numpy.testing.assert_array_equal(inputs.gold[0], spans_to_rows(len(WORDS), [(0, 1, "Chemical")], actions))


def test_training_input_masks_every_window_of_a_doc():
    nlp, pipe = make_pipe(max_length=3)
    inputs = pipe._training_input([make_example(nlp, WORDS, [(0, 1, "Chemical")], ["Chemical"])])
    assert len(inputs.windows) == 3
    for row in inputs.foreign:
        numpy.testing.assert_array_equal(row, pipe.actions.label_action_mask(["Disease", "Gene"]))


def test_training_input_without_masking():
    nlp, pipe = make_pipe(masking=False)
    examples = [
        make_example(nlp, WORDS, [(0, 1, "Chemical")], ["Chemical"]),
        make_example(nlp, WORDS, [(3, 4, "Disease")], ["Disease"]),
    ]
    inputs = pipe._training_input(examples)
    assert inputs.foreign.shape == (2, pipe.actions.n_actions)
    assert not inputs.foreign.any()
