"""Multi-corpus loss masking: projected targets, zero gradients for labels an
example's corpus does not annotate, the delayed-SHIFT rule (decoder level), and
the per-window foreign masks that ``SlotNER`` builds from the reference docs."""
from typing import List, Optional, Sequence, Tuple

import numpy
import pytest
import spacy
import srsly
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example
from torch.nn import functional as F

from spacy_sru_ner.actions import EOA, SHIFT, ActionVocab, spans_to_rows
from spacy_sru_ner.contract import set_annotated_labels
from spacy_sru_ner.decoder import DecoderBatch, SlotDecoder, TrainOutput
from spacy_sru_ner.loss import exclusive_actions, step_targets, weighted_bce
from spacy_sru_ner.settings import DecoderSettings

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
    settings = DecoderSettings.defaults(
        hidden_width=16,
        queries_per_action=2,
        half_context=4,
        dropout_positions=0.0,
        dropout_queries=0.0,
        dropout_scores=0.0,
        dropout_mlp=0.0,
        slot_state=True,
    )
    return SlotDecoder(N_IN, VOCAB.n_actions, settings)


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


class Targets:
    """A training pass with its targets (as :func:`step_targets` builds them)."""

    def __init__(
        self,
        out: TrainOutput,
        batch: DecoderBatch,
        shift_bar: float = 1.0,
        project_coeff: float = 1.0,
        exclusive: Optional[numpy.ndarray] = None,
    ):
        self.out = out
        self.logits = out.logits
        self.active = out.active
        foreign = batch.foreign if batch.foreign is not None else torch.zeros_like(batch.gold[:, 0])
        targets, positives = step_targets(
            numpy,
            out.logits.detach().numpy(),
            batch.gold.numpy(),
            out.cursor.numpy(),
            out.delay.numpy(),
            foreign.numpy(),
            project_coeff=project_coeff,
            shift_bar=shift_bar,
            exclusive=exclusive,
        )
        self.targets = torch.from_numpy(targets)
        self.positives = torch.from_numpy(positives)


def bce_loss(out: Targets, positive_weight: float = 1.0) -> torch.Tensor:
    """SlotNER.get_loss in torch: weighted mean BCE-with-logits over actions and active steps."""
    weight = 1.0 + (positive_weight - 1.0) * out.positives
    bce = F.binary_cross_entropy_with_logits(out.logits, out.targets, weight=weight, reduction="none")
    denom = out.active.sum().clamp(min=1.0) * out.logits.shape[-1]
    return (bce * out.active.unsqueeze(-1)).sum() / denom


def logit_grad(decoder: SlotDecoder, batch: DecoderBatch, **settings) -> Tuple[Targets, torch.Tensor]:
    positive_weight = settings.pop("positive_weight", 1.0)
    out = Targets(decoder.forward_train(batch), batch, **settings)
    loss = bce_loss(out, positive_weight)
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
    # (sigmoid(logit) - target) / denom is 0 (up to torch's and numpy's sigmoid
    # differing by one float32 ulp: 2**-24 for p < 1, over the loss denominator).
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


@pytest.mark.parametrize("positive_weight", [1.0, 5.0])
def test_weighted_bce_matches_torch_bce(positive_weight):
    """The loss of SlotNER (numpy) gives the same loss and gradient as torch's
    weighted BCE, and its gradient for foreign actions is exactly zero, also
    with positives up-weighted."""
    decoder = make_decoder()
    out, grad = logit_grad(
        decoder, make_batch(SEQUENCES, foreign=[["Disease"], ["Disease"]]), positive_weight=positive_weight
    )
    loss, d_logits = weighted_bce(
        numpy, out.logits.detach().numpy(), out.targets.numpy(), out.active.numpy(), out.positives.numpy(),
        positive_weight,
    )
    assert loss == pytest.approx(float(bce_loss(out, positive_weight).detach()), rel=1e-5)
    numpy.testing.assert_allclose(d_logits, grad.numpy(), atol=1e-7)
    gold_eoa = out.targets.numpy()[..., EOA] == 1
    assert numpy.all(d_logits[..., DIS][~gold_eoa] == 0)


def test_positive_weight_only_weighs_own_gold_transitions_and_reduces():
    decoder = make_decoder()
    # coefficient 3: foreign targets min(1, 3p) can reach exactly 1 without being gold positives
    batch = make_batch(SEQUENCES, foreign=[["Disease"], ["Disease"]])
    out = Targets(decoder.forward_train(batch), batch, project_coeff=3.0)
    positives = out.positives.numpy().astype(bool)
    targets = out.targets.numpy()
    assert positives.any()
    assert not positives[..., [EOA, SHIFT] + DIS].any()
    assert numpy.all(targets[positives] == 1)
    own_gold = numpy.zeros_like(positives)
    own_gold[..., CHEM] = targets[..., CHEM] == 1
    numpy.testing.assert_array_equal(positives, own_gold)
    # the gradient of every non-positive target is the unweighted one
    _, plain = logit_grad(decoder, batch, project_coeff=3.0)
    _, weighted = logit_grad(decoder, batch, project_coeff=3.0, positive_weight=5.0)
    torch.testing.assert_close(weighted[~out.positives.bool()], plain[~out.positives.bool()])
    torch.testing.assert_close(weighted[out.positives.bool()], 5 * plain[out.positives.bool()])


@pytest.mark.parametrize("nest_depth", [0, 1])
def test_pipe_loss_gives_foreign_actions_zero_gradient(nest_depth):
    """Through SlotNER.update's own loss: positive_weight 5 with masking still
    leaves the actions of unannotated labels without gradient (with nest_depth
    1 also those of their nesting labels, e.g. Gene#1)."""
    nlp, pipe = make_pipe()
    pipe.cfg["positive_weight"] = 5.0
    pipe.cfg["nest_depth"] = nest_depth
    nlp.initialize()
    examples = [
        make_example(nlp, WORDS, [(0, 1, "Chemical")], ["Chemical"]),
        make_example(nlp, WORDS, [(3, 4, "Disease"), (0, 1, "Chemical")], ["Chemical", "Disease"]),
    ]
    inputs = pipe._training_input(examples)
    output, _ = pipe.model.begin_update(inputs)
    loss, d_logits = pipe.get_loss(examples, output)
    assert loss > 0
    nests = [""] + [f"#{d}" for d in range(1, nest_depth + 1)]
    gene = [f(f"Gene{n}") for n in nests for f in (pipe.actions.transition, pipe.actions.reduce)]
    disease = [f(f"Disease{n}") for n in nests for f in (pipe.actions.transition, pipe.actions.reduce)]
    eoa_step = numpy.arange(d_logits.shape[1])[None, :] >= (output.active.sum(1)[:, None] - 1)
    assert numpy.all(d_logits[..., gene][~eoa_step] == 0)
    assert numpy.all(d_logits[0][..., disease][~eoa_step[0]] == 0)
    assert numpy.all(d_logits[1][..., disease][output.active[1] > 0] != 0)


def test_exclusive_actions_matrix():
    vocab = ActionVocab(("Chemical", "Disease", "Gene"))
    matrix = exclusive_actions(vocab, ["Disease", "Chemical"])
    tr, re = vocab.transition, vocab.reduce
    expected = {(tr("Chemical"), tr("Disease")), (tr("Disease"), tr("Chemical")),
                (re("Chemical"), re("Disease")), (re("Disease"), re("Chemical"))}
    assert {tuple(ij) for ij in numpy.argwhere(matrix == 1)} == expected
    assert exclusive_actions(vocab, ["Chemical"]) is None and exclusive_actions(vocab, []) is None


def test_exclusive_actions_of_several_sets():
    """Plain labels form one set, each list another: Chemical-Disease and
    Disease-Gene disjoint, Chemical-Gene not; a set with one known label adds nothing."""
    vocab = ActionVocab(("Chemical", "Disease", "Gene"))
    matrix = exclusive_actions(vocab, ["Chemical", "Disease", ["Disease", "Gene"], ["Gene", "Species"]])
    tr, re = vocab.transition, vocab.reduce
    pairs = [("Chemical", "Disease"), ("Disease", "Gene")]
    expected = {(f(x), f(y)) for a, b in pairs for x, y in ((a, b), (b, a)) for f in (tr, re)}
    assert {tuple(ij) for ij in numpy.argwhere(matrix == 1)} == expected
    assert exclusive_actions(vocab, [["Chemical"], ["Gene", "Species"]]) is None


def test_disjoint_labels_teach_no_where_an_own_mention_starts_or_ends():
    """Chemical and Disease disjoint, Disease foreign: where the gold row opens
    (closes) a Chemical, TR(Disease) (RE(Disease)) has target 0 and a gradient;
    everywhere else the foreign actions keep their zero gradient."""
    decoder = make_decoder()
    batch = make_batch(SEQUENCES, foreign=[["Disease"], ["Disease"]])
    exclusive = exclusive_actions(VOCAB, ["Chemical", "Disease"])
    out = Targets(decoder.forward_train(batch), batch, exclusive=exclusive)
    plain = Targets(decoder.forward_train(batch), batch)
    active = out.active > 0
    gold_eoa = out.targets[..., EOA] == 1
    for own, foreign in ((TR_CHEM, TR_DIS), (RE_CHEM, DIS[1])):
        ruled_out = (out.targets[..., own] == 1) & active
        assert ruled_out.sum() >= 3  # SEQUENCES open and close four Chemical mentions
        assert torch.all(out.targets[..., foreign][ruled_out] == 0)
        kept = active & ~ruled_out & ~gold_eoa
        torch.testing.assert_close(out.targets[..., foreign][kept], plain.targets[..., foreign][kept])
    (grad,) = torch.autograd.grad(bce_loss(out), out.logits)
    denom = float(out.active.sum()) * VOCAB.n_actions
    opens = (out.targets[..., TR_CHEM] == 1) & active
    assert torch.all(grad[..., TR_DIS][opens] > 0)
    others = active & ~opens & ~gold_eoa
    assert torch.all(grad[..., TR_DIS][others].abs() <= 2.0**-24 / denom)
    # own actions are unchanged
    torch.testing.assert_close(out.targets[..., CHEM], plain.targets[..., CHEM])


def test_pipe_disjoint_labels():
    nlp, pipe = make_pipe()
    pipe.cfg["disjoint_labels"] = ["Chemical", "Disease"]
    nlp.initialize()
    examples = [make_example(nlp, WORDS, [(0, 1, "Chemical")], ["Chemical"])]
    output, _ = pipe.model.begin_update(pipe._training_input(examples))
    _, d_logits = pipe.get_loss(examples, output)
    actions = pipe.actions
    # step 0 opens "aspirin": Disease is taught not to open there; Gene (not disjoint) stays masked
    assert d_logits[0, 0, actions.transition("Disease")] > 0
    assert d_logits[0, 0, actions.transition("Gene")] == 0
    assert numpy.all(d_logits[0, 1:-1, actions.transition("Disease")] == 0)
    nlp, pipe = make_pipe()
    pipe.cfg["disjoint_labels"] = ["Chemical", "Species"]
    with pytest.raises(ValueError, match=r"disjoint_labels of 'sru_ner' name labels it does not have: \['Species'\]"):
        nlp.initialize()


def test_initialize_disjoint_labels_from_a_file(tmp_path):
    """[initialize.components.sru_ner] disjoint_labels, read from a JSON file,
    replaces the setting, keeps corpus prefixes' '$', and is saved with the
    component; an unknown label in it raises."""
    path = tmp_path / "disjoint.json"
    srsly.write_json(path, ["x$Chemical", "x$Disease"])
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    for label in ("x$Chemical", "x$Disease", "y$Gene"):
        pipe.add_label(label)
    reader = {"@readers": "spacy.read_labels.v1", "path": str(path), "require": True}
    nlp.config["initialize"]["components"]["sru_ner"] = {"disjoint_labels": reader}
    nlp.initialize()
    assert pipe.cfg["disjoint_labels"] == ["x$Chemical", "x$Disease"]
    examples = [make_example(nlp, WORDS, [(0, 1, "x$Chemical")], ["x$Chemical"])]
    output, _ = pipe.model.begin_update(pipe._training_input(examples))
    _, d_logits = pipe.get_loss(examples, output)
    assert d_logits[0, 0, pipe.actions.transition("x$Disease")] > 0
    assert d_logits[0, 0, pipe.actions.transition("y$Gene")] == 0
    copy = spacy.blank("en").add_pipe("sru_ner", config={"model": SMALL_MODEL})
    copy.from_bytes(pipe.to_bytes())
    assert copy.cfg["disjoint_labels"] == ["x$Chemical", "x$Disease"]
    srsly.write_json(path, ["x$Chemical", "x$Species"])
    with pytest.raises(ValueError, match=r"name labels it does not have: \['x\$Species'\]"):
        nlp.initialize()
    # a list in the file is a set of its own: y$Gene disjoint from x$Chemical only
    srsly.write_json(path, ["x$Disease", ["x$Chemical", "y$Gene"]])
    nlp.initialize()
    assert pipe.cfg["disjoint_labels"] == ["x$Disease", ["x$Chemical", "y$Gene"]]
    output, _ = pipe.model.begin_update(pipe._training_input(examples))
    _, d_logits = pipe.get_loss(examples, output)
    assert d_logits[0, 0, pipe.actions.transition("y$Gene")] > 0
    assert d_logits[0, 0, pipe.actions.transition("x$Disease")] == 0
    copy.from_bytes(pipe.to_bytes())
    assert copy.cfg["disjoint_labels"] == ["x$Disease", ["x$Chemical", "y$Gene"]]


def constant_decoder(shift: float, foreign: float) -> SlotDecoder:
    """A decoder whose logits are its output bias, whatever the input."""
    decoder = make_decoder()
    with torch.no_grad():
        decoder.output.weight.zero_()
        decoder.output.bias.fill_(-3.0)
        decoder.output.bias[SHIFT] = shift
        decoder.output.bias[TR_DIS] = foreign
    return decoder


@pytest.mark.parametrize("fast", [True, False])
def test_delayed_shift_replays_gold_shift_once(fast):
    decoder = constant_decoder(shift=0.0, foreign=3.0)  # P(TR(Disease)) = 0.95 > P(SHIFT) = 0.5
    decoder.fast_train_loop = fast
    # sequence 0 from a Chemical-only corpus; sequence 1 annotates both labels
    sequences = [(3, [(1, 2, "Chemical")]), (3, [(1, 2, "Chemical")])]
    batch = make_batch(sequences, foreign=[["Disease"], []])
    out = Targets(decoder.forward_train(batch), batch)
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
    pointers = out.out.pointer.T.tolist()
    assert [p[0] for p in pointers] == [1, 1, 2, 2, 2, 3, 3, 3, 4]
    # the fully annotated sequence in the same batch follows its gold rows undelayed
    assert out.active[1].sum() == len(gold)
    assert torch.equal(out.targets[1, : len(gold)], torch.from_numpy(gold))
    assert [p[1] for p in pointers[: len(gold)]] == [1, 2, 2, 3, 3, 4]


def test_no_delay_when_shift_is_more_probable_or_masking_off():
    sequences = [(3, [(1, 2, "Chemical")])]
    n_rows = len(spans_to_rows(3, [(1, 2, "Chemical")], VOCAB))
    decoder = constant_decoder(shift=2.0, foreign=1.0)  # P(SHIFT) > P(TR(Disease))
    batch = make_batch(sequences, foreign=[["Disease"]])
    out = Targets(decoder.forward_train(batch), batch)
    assert out.logits.shape[1] == n_rows
    assert set(out.targets[0, :, SHIFT].tolist()) == {0.0, 1.0}
    decoder = constant_decoder(shift=0.0, foreign=3.0)
    batch = make_batch(sequences, foreign=None)
    out = Targets(decoder.forward_train(batch), batch)
    assert out.logits.shape[1] == n_rows
    assert set(out.targets[0, :, SHIFT].tolist()) == {0.0, 1.0}


def test_shift_bar_softens_the_shift_target_without_delaying():
    """P(TR(Disease)) = 0.73 < P(SHIFT) = 0.88: no delay, so the gold SHIFT is a hard
    1 with the default bar; a bar of 0.5 makes it the model's own probability, and
    the steps (pointer, gold rows) stay those of the gold."""
    sequences = [(3, [(1, 2, "Chemical")])]
    gold = spans_to_rows(3, [(1, 2, "Chemical")], VOCAB)
    decoder = constant_decoder(shift=2.0, foreign=1.0)
    batch = make_batch(sequences, foreign=[["Disease"]])
    train_out = decoder.forward_train(batch)
    assert not train_out.delay.any()
    hard = Targets(train_out, batch)
    soft = Targets(train_out, batch, shift_bar=0.5)
    assert train_out.logits.shape[1] == len(gold)
    is_shift = torch.from_numpy(gold[:, SHIFT] == 1)
    assert torch.all(hard.targets[0, is_shift, SHIFT] == 1)
    p_shift = float(torch.sigmoid(torch.tensor(2.0)))
    torch.testing.assert_close(soft.targets[0, is_shift, SHIFT], torch.full((int(is_shift.sum()),), p_shift))
    assert torch.equal(soft.targets[0, ~is_shift, SHIFT], hard.targets[0, ~is_shift, SHIFT])
    # a bar above the foreign probability changes nothing
    assert torch.equal(Targets(train_out, batch, shift_bar=0.8).targets, hard.targets)


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
