"""The training-only span head (``span_aux_width``): its targets, masking,
gradient into the shared tok2vec, learning, and serialization."""
import numpy
import pytest
import spacy
from thinc.api import Adam

from conftest import SMALL_MODEL, make_examples, nested_docs
from spacy_sru_ner.span_aux import span_loss, span_targets


def _pipeline(width: int = 32, seed: int = 0, n: int = 8, **config):
    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("sru_ner", config={"model": {**SMALL_MODEL, "span_aux_width": width}, **config})
    examples = make_examples(nlp, nested_docs(n))
    nlp.initialize(lambda: examples)
    return nlp, examples


def test_span_targets_cover_ngrams_and_long_gold_spans():
    windows = [(0, 0, 3), (0, 3, 13), (1, 0, 2)]
    gold = [[(0, 2, "A")], [(0, 10, "B"), (1, 2, "A")], []]
    own = numpy.array([[1, 1], [1, 0], [1, 1]], dtype="float32")
    spans, targets, weights = span_targets(windows, gold, own, ["A", "B"], n_docs=2, max_length=2)
    doc0 = [tuple(s) for s in spans[0]]
    # window 0: 3 + 2 ngrams; window 1: 10 + 9 ngrams and the 10-word gold span
    assert len(doc0) == 5 + 19 + 1 and len(set(doc0)) == len(doc0)
    assert [tuple(s) for s in spans[1]] == [(0, 1), (0, 2), (1, 2)]
    assert targets.shape == weights.shape == (len(doc0) + 3, 2)
    positives = {(doc0[i], j) for i, j in zip(*numpy.nonzero(targets[: len(doc0)]))}
    assert positives == {((0, 2), 0), ((3, 13), 1), ((4, 5), 0)}
    # window 1's corpus does not annotate B: no weight there, weight everywhere else
    in_window_1 = numpy.array([3 <= s for s, _ in doc0])
    assert (weights[: len(doc0)][in_window_1] == [1, 0]).all()
    assert (weights[: len(doc0)][~in_window_1] == 1).all() and (weights[len(doc0) :] == 1).all()


def test_span_loss_gives_no_gradient_without_weight():
    logits = numpy.array([[2.0, -1.0], [0.5, 3.0]], dtype="float32")
    targets = numpy.array([[1.0, 0.0], [0.0, 1.0]], dtype="float32")
    weights = numpy.array([[1.0, 0.0], [1.0, 1.0]], dtype="float32")
    loss, d = span_loss(numpy, logits, targets, weights, scale=2.0)
    assert d[0, 1] == 0.0 and (d[[0, 1, 1], [0, 0, 1]] != 0).all()
    p = 1 / (1 + numpy.exp(-logits))
    bce = -(targets * numpy.log(p) + (1 - targets) * numpy.log(1 - p))
    assert loss == pytest.approx(2.0 * (bce * weights).sum() / 3, rel=1e-5)


def test_span_head_trains_the_shared_tok2vec():
    nlp, examples = _pipeline()
    pipe = nlp.get_pipe("sru_ner")
    head = pipe.model.get_ref("span_head")
    inputs = pipe._training_input(examples)
    n = sum(len(s) for s in inputs.spans)
    output, backprop = pipe.model.begin_update(inputs)
    assert output.span_logits.shape == (n, len(pipe.labels))
    tok2vec = pipe.model.get_ref("tok2vec")
    # the span head's gradient alone reaches the tok2vec
    backprop(numpy.zeros_like(output.logits), numpy.ones_like(output.span_logits))
    grads = [g for node in tok2vec.walk() for name in node.param_names if node.has_grad(name) for g in [node.get_grad(name)]]
    assert any(numpy.abs(g).sum() > 0 for g in grads)
    assert head in list(pipe.model.walk())


def test_span_head_adds_its_loss_and_can_be_switched_off():
    nlp, examples = _pipeline()
    pipe = nlp.get_pipe("sru_ner")
    with_head = pipe.update(examples, sgd=None)["sru_ner"]
    pipe.cfg["span_aux_weight"] = 0.0
    without = pipe.update(examples, sgd=None)["sru_ner"]
    assert with_head > without > 0


def test_overfits_with_the_span_head_and_round_trips(tmp_path):
    nlp, examples = _pipeline(n=12)
    optimizer = Adam(0.003)
    for _ in range(120):
        nlp.update(examples, sgd=optimizer)
    assert nlp.evaluate(examples)["spans_sru_ner_f"] == 1.0
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.get_pipe("sru_ner").model.get_ref("span_head") is not None
    for eg in examples[:4]:
        a, b = nlp(eg.reference.text), loaded(eg.reference.text)
        assert [(s.start, s.end, s.label_) for s in a.spans["sru_ner"]] == [
            (s.start, s.end, s.label_) for s in b.spans["sru_ner"]
        ]
        assert numpy.allclose(a.spans["sru_ner"].attrs["scores"], b.spans["sru_ner"].attrs["scores"])


def test_span_head_settings_are_checked():
    with pytest.raises(ValueError, match="span_aux_weight"):
        _pipeline(span_aux_weight=-1.0)
    with pytest.raises(Exception, match="span_aux_width"):
        _pipeline(width=-2)
