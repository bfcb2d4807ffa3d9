"""The decoder's weight tables (used by the inference loops) are cached between
calls and rebuilt whenever the weights change: after an optimizer step, inside
and after ``use_params``, on load, and after a direct in-place change."""
import numpy
import spacy
import torch

from conftest import SMALL_MODEL, make_examples, nested_docs


def _spans(nlp, texts):
    return [[(s.start, s.end, s.label_, round(float(score), 5))
             for s, score in zip(doc.spans["sru_ner"], doc.spans["sru_ner"].attrs["scores"])]
            for doc in nlp.pipe(texts)]


def _fresh_tables(decoder):
    decoder.invalidate_tables()
    return decoder.weight_tables()


def _assert_tables_equal(a, b):
    for name in a.__dataclass_fields__:
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0, msg=name)


def _trained():
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    examples = make_examples(nlp, nested_docs(12))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    return nlp, pipe, examples, optimizer


def test_tables_are_cached_and_rebuilt_after_an_update():
    nlp, pipe, examples, optimizer = _trained()
    decoder = pipe.model.get_ref("decoder").shims[0]._model
    texts = [eg.reference.text for eg in examples]
    _spans(nlp, texts)
    cached = decoder.weight_tables()
    assert decoder.weight_tables() is cached  # nothing changed: no rebuild
    nlp.update(examples, sgd=optimizer)
    rebuilt = decoder.weight_tables()
    assert rebuilt is not cached
    _assert_tables_equal(rebuilt, _fresh_tables(decoder))
    # predictions after the update are those of a pipeline loaded from its bytes
    copy = spacy.blank("en")
    copy.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    copy.from_bytes(nlp.to_bytes())
    assert _spans(nlp, texts) == _spans(copy, texts)


def test_tables_follow_use_params_and_loading():
    nlp, pipe, examples, optimizer = _trained()
    decoder = pipe.model.get_ref("decoder").shims[0]._model
    texts = [eg.reference.text for eg in examples]
    before = _spans(nlp, texts)
    original = decoder.weight_tables()
    # parameters of another (further trained) copy, used through use_params
    other, other_pipe, _, other_opt = _trained()
    for _ in range(5):
        other.update(examples, sgd=other_opt)
    other_decoder = other_pipe.model.get_ref("decoder").shims[0]._model
    theirs = list(other_pipe.model.walk())
    # map the other model's parameters onto this model's node ids, by walk order
    averages = {}
    for mine_node, their_node in zip(pipe.model.walk(), theirs):
        for name in their_node.param_names:
            averages[(mine_node.id, name)] = their_node.get_param(name).copy()
        for mine_shim, their_shim in zip(mine_node.shims, their_node.shims):
            for name, param in their_shim._model.named_parameters():
                averages[f"pytorch_{mine_shim.id}_{name}"] = param.detach().numpy().copy()  # thinc's shim key
    assert any(isinstance(key, str) for key in averages)  # the decoder's weights are among them
    with nlp.use_params(averages):
        inside = decoder.weight_tables()
        assert inside is not original
        _assert_tables_equal(inside, other_decoder.weight_tables())
        assert _spans(nlp, texts) == _spans(other, texts)
    after = decoder.weight_tables()
    _assert_tables_equal(after, original)
    assert _spans(nlp, texts) == before
    # loading other weights into this pipeline
    nlp.from_bytes(other.to_bytes())
    _assert_tables_equal(decoder.weight_tables(), other_decoder.weight_tables())
    assert _spans(nlp, texts) == _spans(other, texts)


def test_an_in_place_weight_change_is_seen():
    nlp, pipe, examples, _ = _trained()
    decoder = pipe.model.get_ref("decoder").shims[0]._model
    cached = decoder.weight_tables()
    with torch.no_grad():
        decoder.output.weight.mul_(2.0)
    assert decoder.weight_tables() is not cached
    numpy.testing.assert_allclose(decoder.weight_tables().out_weight.numpy(), 2 * cached.out_weight.numpy())
