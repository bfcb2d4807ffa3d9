"""The training pass: windows decoded in groups of similar gold length give the
logits and gradients of decoding the whole batch at once, and the fast loop
over score tables gives those of the reference loop (dropout off), with and
without foreign labels and delayed SHIFTs."""
import numpy
import pytest
import spacy
import torch
from spacy.tokens import Span
from spacy.training import Example
from thinc.api import set_dropout_rate

from conftest import SMALL_MODEL, nested_docs
from spacy_sru_ner.actions import EOA, N_SPECIAL, SHIFT
from spacy_sru_ner.contract import set_annotated_labels
from spacy_sru_ner.decoder import DecoderBatch, SlotDecoder
from spacy_sru_ner.settings import DecoderSettings
from spacy_sru_ner import model as model_module
from spacy_sru_ner.model import train_groups


def _examples(nlp, masked: bool):
    docs = nested_docs(24, max_len=60)
    examples = []
    for i, doc in enumerate(docs):
        reference = doc.copy()
        if masked and i % 2:
            keep = ["protein", "DNA"]
            reference.spans["sru_ner"] = [Span(reference, s.start, s.end, s.label_)
                                         for s in doc.spans["sru_ner"] if s.label_ in keep]
            set_annotated_labels(reference, keep)
        examples.append(Example(nlp.make_doc(reference.text), reference))
    return examples


def _pass(pipe, examples, group_size):
    pipe.model.attrs["train_group_size"] = group_size
    set_dropout_rate(pipe.model, 0.0)
    torch.manual_seed(0)
    inputs = pipe._training_input(examples)
    output, backprop = pipe.model.begin_update(inputs)
    loss, d_logits = pipe.get_loss(examples, output)
    backprop(d_logits)
    grads = {}
    for node in pipe.model.walk():
        for name in node.param_names:
            if node.has_grad(name):
                grads[(node.id, name)] = node.get_grad(name).copy()
                node.set_grad(name, node.get_grad(name) * 0)
        for shim in node.shims:
            for name, param in shim._model.named_parameters():
                if param.grad is not None:
                    grads[(shim.id, name)] = param.grad.numpy().copy()
                    param.grad = None
    return output, loss, grads


@pytest.mark.parametrize("masked", [False, True])
def test_grouped_training_pass_matches_one_batch(masked):
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    examples = _examples(nlp, masked)
    nlp.initialize(lambda: examples)
    whole, loss_whole, grads_whole = _pass(pipe, examples, 10_000)
    grouped, loss_grouped, grads_grouped = _pass(pipe, examples, 5)
    inputs = pipe._training_input(examples)
    n_words = numpy.array([end - start for _, start, end in inputs.windows])
    assert len(train_groups(numpy.array([len(r) for r in inputs.gold]), 5, n_words)) > 1
    active = whole.active > 0
    numpy.testing.assert_array_equal(grouped.active[:, : active.shape[1]], whole.active)
    assert not grouped.active[:, active.shape[1]:].any()
    T = whole.logits.shape[1]
    numpy.testing.assert_allclose(grouped.logits[:, :T][active], whole.logits[active], rtol=1e-4, atol=1e-5)
    numpy.testing.assert_array_equal(grouped.cursor[:, :T][active], whole.cursor[active])
    numpy.testing.assert_array_equal(grouped.delay[:, :T][active], whole.delay[active])
    assert loss_grouped == pytest.approx(loss_whole, rel=1e-5)
    assert grads_whole.keys() == grads_grouped.keys() and grads_whole
    for key, grad in grads_whole.items():
        numpy.testing.assert_allclose(grads_grouped[key], grad, rtol=1e-3, atol=1e-6, err_msg=str(key))


def test_train_groups_bound_the_padding(monkeypatch):
    monkeypatch.setattr(model_module, "SPREAD", 2.0)
    n_rows = numpy.array([30, 5, 12, 80, 7, 9, 41, 3, 8, 6])
    n_words = n_rows // 2
    groups = train_groups(n_rows, 3, n_words)
    assert sorted(numpy.concatenate(groups).tolist()) == list(range(10))
    cost = n_rows * (n_words + 2)
    for group in groups:
        assert len(group) <= 3
        assert cost[group].max() <= 2 * cost[group].min()
    # shortest first, each group in ascending cost
    assert [n_rows[g].tolist() for g in groups] == [[3], [5, 6, 7], [8, 9, 12], [30, 41], [80]]
    # an outlier gets a group of its own instead of padding the whole batch
    monkeypatch.setattr(model_module, "SPREAD", 4.0)
    n_rows = numpy.array([30] * 20 + [400])
    groups = train_groups(n_rows, 16, n_rows - 5)
    assert [len(g) for g in groups] == [4, 16, 1] and groups[-1].tolist() == [20]
    # everything in one group: the windows' own order
    assert [g.tolist() for g in train_groups(numpy.array([9, 8, 9]), 16, numpy.array([5, 5, 5]))] == [[0, 1, 2]]


def _random_gold(lengths, n_actions, generator):
    """Gold rows of random nested-looking actions: per word maybe a TRANSITION or
    REDUCE, then SHIFT; EOA at the end."""
    rows = []
    for n in lengths:
        seq = []
        for _ in range(int(n)):
            if torch.rand(1, generator=generator) < 0.3:
                seq.append(N_SPECIAL + int(torch.randint(0, n_actions - N_SPECIAL, (1,), generator=generator)))
            seq.append(SHIFT)
        seq.append(EOA)
        rows.append(seq)
    gold = torch.zeros(len(rows), max(map(len, rows)), n_actions)
    for b, seq in enumerate(rows):
        gold[b, torch.arange(len(seq)), torch.tensor(seq)] = 1
    return gold, torch.tensor([len(seq) for seq in rows])


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("slot_state", [False, True])
@pytest.mark.parametrize("foreign", [False, True])
def test_fast_training_loop_matches_the_reference_loop(slot_state, foreign, compiled):
    """Same steps, logits and gradients (dropout off) on a batch of mixed lengths,
    with and without foreign labels; with them, SHIFTs get delayed. Both forms of
    the fast loop: compiled (CPU) and tensor operations."""
    n_actions = 12
    torch.manual_seed(0)
    decoder = SlotDecoder(16, n_actions, DecoderSettings.defaults(
        hidden_width=32, half_context=5, slot_state=slot_state, dropout_positions=0.0, dropout_queries=0.0,
        dropout_mlp=0.0, train_token_multiplier=True)).train()
    decoder.compiled_train_loop = compiled
    with torch.no_grad():  # non-trivial attention, writes and decisions
        decoder.queries.normal_(0, 0.5)
        decoder.token_multiplier.fill_(3.0)
        decoder.action_embed.weight.normal_(0, 1)
        decoder.output.bias[SHIFT] -= 0.5
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([28, 5, 1, 12])  # > half_context: positions outside the window too
    gold, n_rows = _random_gold(lengths, n_actions, generator)
    mask = None
    if foreign:
        mask = torch.zeros(4, n_actions)
        mask[0, 4:8] = mask[2, 2:4] = 1
    vectors = torch.randn(4, 30, 16, generator=generator)
    weights = torch.linspace(-1, 1, n_actions)
    results = []
    for fast in (True, False):
        decoder.fast_train_loop = fast
        decoder.zero_grad()
        batch = DecoderBatch(vectors=vectors.clone().requires_grad_(), lengths=lengths, gold=gold, n_rows=n_rows,
                             foreign=mask)
        out = decoder.forward_train(batch)
        (out.logits * out.active.unsqueeze(-1) * weights).sum().backward()
        grads = {name: p.grad.clone() for name, p in decoder.named_parameters() if p.grad is not None}
        results.append((out, grads, batch.vectors.grad))
    (fast_out, fast_grads, fast_d_vectors), (ref_out, ref_grads, ref_d_vectors) = results
    for name in ("cursor", "delay", "active", "pointer"):
        assert torch.equal(getattr(fast_out, name), getattr(ref_out, name)), name
    assert bool(ref_out.delay.any()) == foreign
    active = ref_out.active > 0
    torch.testing.assert_close(fast_out.logits[active], ref_out.logits[active], rtol=1e-4, atol=1e-5)
    assert fast_grads.keys() == ref_grads.keys() and len(ref_grads) >= 10
    assert "token_multiplier" in ref_grads  # trainable here (the GENIA config trains it)
    for name, grad in ref_grads.items():
        # to 1e-5 of each tensor's largest entry; the token multiplier's gradient, one sum over
        # every score of every step, to 1e-4 of itself (float32 sums in other orders)
        scale = float(grad.abs().max()) + 1e-6
        tolerance = 1e-4 if name == "token_multiplier" else 1e-5
        torch.testing.assert_close(fast_grads[name] / scale, grad / scale, rtol=0, atol=tolerance, msg=name)
    scale = float(ref_d_vectors.abs().max())
    torch.testing.assert_close(fast_d_vectors / scale, ref_d_vectors / scale, rtol=0, atol=1e-5)


def test_fast_training_loop_uses_only_the_positions_it_can_reach():
    """The position table of a short batch holds the offsets its pointer can
    see, and maps each (pointer, position) to the same embedding row."""
    decoder = SlotDecoder(16, 6, DecoderSettings.defaults(hidden_width=32, half_context=5, slot_state=False))
    for S in (3, 6, 30):
        table, rows = decoder._position_table(S)
        assert table.shape[0] == 2 * min(S - 1, 5) + 1 + 3
        every = torch.ones((S, S), dtype=torch.bool)
        full = decoder._position_rows(torch.arange(S), S, every)
        assert torch.equal(table[rows], decoder.positions.weight[full])


def test_dropout_masks_zero_a_share_p_and_keep_the_mean():
    """The training loop's masks (drawn with torch.rand, about twice as fast on
    the CPU as the Bernoulli sampler) have F.dropout's distribution."""
    from spacy_sru_ner.train_loop import _mask

    torch.manual_seed(0)
    mask = _mask(torch.ones(200, 500), 0.2)
    assert abs(float((mask == 0).float().mean()) - 0.2) < 0.01
    assert abs(float(mask.mean()) - 1.0) < 0.02
    assert _mask(torch.ones(3), 0.0) is None


@pytest.mark.parametrize("foreign", [False, True])
def test_hand_written_backward_passes_gradcheck_with_dropout(foreign):
    """The training loop's backward against finite differences (float64), with
    MLP and score dropout on: the masks are drawn from the same seed at every
    call, so the function gradcheck perturbs is a fixed one."""
    from spacy_sru_ner.decoder import GoldAlignment
    from spacy_sru_ner.train_loop import LoopSpec, TeacherForcedLoop

    n_actions, K, d, h = 6, 4, 5, 7
    lengths = torch.tensor([4, 2, 3])
    B, S = 3, 6
    generator = torch.Generator().manual_seed(3)
    gold, n_rows = _random_gold(lengths, n_actions, generator)
    decoder = SlotDecoder(4, n_actions, DecoderSettings.defaults(hidden_width=d, half_context=2, slot_state=False))
    _, rows_at = decoder._position_table(S)
    R = int(rows_at.max()) + 1
    valid = torch.arange(S).unsqueeze(0) <= (lengths.unsqueeze(1) + 1)
    padding = torch.zeros(B, S, dtype=torch.float64).masked_fill_(~valid, -1e12)
    mask = torch.zeros(B, n_actions, dtype=torch.float64)
    if foreign:
        mask[0, 4:6] = 1

    def run(*inputs):
        batch = DecoderBatch(vectors=torch.zeros(B, S, 4), lengths=lengths, gold=gold, n_rows=n_rows, foreign=mask)
        spec = LoopSpec(B=B, S=S, row_starts=torch.arange(B) * S, rows_at=rows_at, padding=padding,
                        slot_state=True, p_mlp=0.3, p_scores=0.3)
        if foreign:
            spec.alignment = GoldAlignment(batch, mask, True)
            spec.max_steps = 2 * gold.shape[1]
        else:
            spec.path_pointer = decoder._gold_path(batch).pointer
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return TeacherForcedLoop.apply(spec, *inputs)

    def param(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()

    batch = DecoderBatch(vectors=torch.zeros(B, S, 4), lengths=lengths, gold=gold, n_rows=n_rows)
    n_steps = 2 * gold.shape[1] if foreign else decoder._gold_path(batch).n_steps
    inputs = (param(B * S, d), param(B * S, d), param(B * S, K), param(n_actions, d + K), param(n_steps, R, K),
              param(d), param(h, 3 * d), param(h), param(n_actions, h), param(n_actions))
    assert torch.autograd.gradcheck(run, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("foreign", [False, True])
def test_compiled_training_loop_matches_the_tensor_loop_with_dropout(foreign):
    """The compiled CPU loop and the tensor-operation loop (whose backward
    passes gradcheck above) give the same steps, logits and gradients under the
    same MLP and score dropout masks."""
    from spacy_sru_ner.decoder import GoldAlignment
    from spacy_sru_ner.train_loop import LoopSpec, TeacherForcedLoop

    n_actions, K, d, h = 8, 6, 12, 20
    lengths = torch.tensor([9, 3, 6, 1])
    B, S = 4, 11
    generator = torch.Generator().manual_seed(5)
    gold, n_rows = _random_gold(lengths, n_actions, generator)
    decoder = SlotDecoder(4, n_actions, DecoderSettings.defaults(hidden_width=d, half_context=3, slot_state=False))
    _, rows_at = decoder._position_table(S)
    R = int(rows_at.max()) + 1
    valid = torch.arange(S).unsqueeze(0) <= (lengths.unsqueeze(1) + 1)
    padding = torch.zeros(B, S).masked_fill_(~valid, -1e12)
    mask = torch.zeros(B, n_actions)
    if foreign:
        mask[0, 4:6] = mask[2, 6:8] = 1
    batch = DecoderBatch(vectors=torch.zeros(B, S, 4), lengths=lengths, gold=gold, n_rows=n_rows, foreign=mask)
    T = 2 * gold.shape[1] if foreign else gold.shape[1]
    masks = {"mask_mlp": (torch.rand(T, B, 3 * d, generator=generator) > 0.3) / 0.7,
             "mask_scores": (torch.rand(T, B, S, generator=generator) > 0.3) / 0.7}
    inputs = [torch.randn(*shape, generator=generator).requires_grad_() for shape in
              ((B * S, d), (B * S, d), (B * S, K), (n_actions, d + K), (T, R, K), (d,), (h, 3 * d), (h,),
               (n_actions, h), (n_actions,))]
    results = []
    for compiled in (True, False):
        spec = LoopSpec(B=B, S=S, row_starts=torch.arange(B) * S, rows_at=rows_at, padding=padding,
                        slot_state=True, p_mlp=0.3, p_scores=0.3, compiled=compiled, gold=gold, n_rows=n_rows,
                        foreign=mask, max_pointer=lengths + 1, max_steps=T, **masks)
        if not compiled:
            if foreign:
                spec.alignment = GoldAlignment(batch, mask, True)
            else:
                spec.path_pointer = decoder._gold_path(batch).pointer
        logits = TeacherForcedLoop.apply(spec, *inputs)
        weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(0))
        grads = torch.autograd.grad((logits * weights).sum(), inputs)
        pointer = spec.recorded["pointer"] if compiled else None
        results.append((logits.detach(), grads, pointer, spec))
    (c_logits, c_grads, c_pointer, c_spec), (t_logits, t_grads, _, t_spec) = results
    assert c_logits.shape == t_logits.shape
    if foreign:
        t_out = t_spec.alignment.output(torch.float32)
        assert torch.equal(c_pointer, t_out.pointer) and torch.equal(c_spec.recorded["delay"], t_out.delay)
    torch.testing.assert_close(c_logits, t_logits, rtol=1e-4, atol=1e-5)
    for c, t in zip(c_grads, t_grads):  # float32 sums in different orders: 5e-5 of the largest entry
        scale = float(t.abs().max()) + 1e-6
        torch.testing.assert_close(c / scale, t / scale, rtol=0, atol=5e-5)
