"""The training pass decodes windows in groups of similar gold length: the
logits of every active step and every gradient are those of decoding the whole
batch at once (dropout off), with and without foreign labels and delayed SHIFTs."""
import numpy
import pytest
import spacy
import torch
from spacy.tokens import Span
from spacy.training import Example
from thinc.api import set_dropout_rate

from conftest import SMALL_MODEL, nested_docs
from spacy_sru_ner.corpora import set_annotated_labels
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
