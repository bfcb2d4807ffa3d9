"""The training settings of sru_ner: dropout from ``update``, the decoder's
learning-rate scale, and the component settings' validation."""
import numpy
import pytest
import spacy
from thinc.api import Adam

from conftest import SMALL_MODEL, make_examples, nested_docs


def _pipeline(config=None, seed: int = 0):
    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, **(config or {})})
    examples = make_examples(nlp, nested_docs(8))
    nlp.initialize(lambda: examples)
    return nlp, examples


def _loss(pipe, examples, drop: float) -> float:
    return pipe.update(examples, drop=drop, sgd=None)["sru_ner"]


def test_update_passes_drop_to_the_model():
    """Decoder dropouts are 0 in SMALL_MODEL, so only ``drop`` (the tok2vec's
    dropout) can make two losses on the same weights differ."""
    nlp, examples = _pipeline()
    pipe = nlp.get_pipe("sru_ner")
    assert _loss(pipe, examples, 0.0) == _loss(pipe, examples, 0.0)
    assert _loss(pipe, examples, 0.5) != _loss(pipe, examples, 0.5)
    rates = [node.attrs["dropout_rate"] for node in pipe.model.walk() if node.name == "dropout"]
    assert rates and all(rate == 0.5 for rate in rates)


def _mean_step(before, after):
    return float(numpy.mean([numpy.abs(after[k] - before[k]).mean() for k in before]))


def _params(model):
    params = {}
    for node in model.walk():
        for name in node.param_names:
            params[(node.id, name)] = node.get_param(name).copy()
        for shim in node.shims:
            for name, tensor in shim._model.named_parameters():
                if tensor.requires_grad:
                    params[(shim.id, name)] = tensor.detach().numpy().copy()
    return params


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_decoder_learn_rate_scale(scale):
    nlp, examples = _pipeline({"decoder_lr_scale": scale})
    pipe = nlp.get_pipe("sru_ner")
    tok2vec, decoder = pipe.model.get_ref("tok2vec"), pipe.model.get_ref("decoder")
    before_enc, before_dec = _params(tok2vec), _params(decoder)
    optimizer = Adam(0.001, L2=0.0, grad_clip=0.0)
    pipe.update(examples, sgd=optimizer)
    encoder_step = _mean_step(before_enc, _params(tok2vec))
    decoder_step = _mean_step(before_dec, _params(decoder))
    assert encoder_step > 0 and decoder_step > 0
    # Adam's first step moves each parameter with a gradient by about the learning rate
    if scale == 1.0:
        assert 0.2 < decoder_step / encoder_step < 5
    else:
        assert decoder_step / encoder_step > 5
        assert decoder_step > 5 * 0.001 * 0.5
    # the optimizer's state is the real optimizer's (one Adam step per parameter)
    assert all(count == 1 for count in optimizer.nr_update.values())


@pytest.mark.parametrize(
    "setting,value", [("positive_weight", 0.0), ("decoder_lr_scale", -1.0), ("project_coeff", -0.5)]
)
def test_invalid_training_settings_raise(setting, value):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=setting):
        nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, setting: value})


def test_positive_weight_raises_the_loss_of_rare_positives():
    """At initialization every action is about equally likely, so up-weighting
    the gold TRANSITION/REDUCE targets raises the loss."""
    losses = {}
    for weight in (1.0, 5.0):
        nlp, examples = _pipeline({"positive_weight": weight})
        losses[weight] = _loss(nlp.get_pipe("sru_ner"), examples, 0.0)
    assert losses[5.0] > losses[1.0]


def test_tune_threshold_scores_match_evaluate(trained, tmp_path):
    """The scores of tune_threshold (one decoder pass, then every threshold)
    equal those of running the pipeline with that threshold."""
    from spacy.tokens import DocBin

    from spacy_sru_ner.threshold import tune_threshold

    nlp, examples, _ = trained
    path = tmp_path / "dev.spacy"
    DocBin(docs=[eg.reference for eg in examples], store_user_data=True).to_disk(path)
    pipe = nlp.get_pipe("sru_ner")
    try:
        result = tune_threshold(nlp, [path], grid=[0.2, 0.5, 0.95])
        assert set(result["scores"]) == {0.2, 0.5, 0.95}
        for threshold, prf in result["scores"].items():
            pipe.cfg["threshold"] = threshold
            assert nlp.evaluate(examples)["spans_sru_ner_f"] == pytest.approx(prf["f"])
        assert result["scores"][0.95]["r"] < result["scores"][0.5]["r"]
        # ties go to the threshold nearest the previous one (0.5 reaches F = 1.0 here)
        assert result["threshold"] == 0.5 and result["scores"][0.5]["f"] == 1.0
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            tune_threshold(nlp, [path], grid=[0.0, 0.5])
    finally:
        pipe.cfg["threshold"] = 0.5
        nlp.get_pipe_config("sru_ner")["threshold"] = 0.5


def test_label_thresholds_decide_only_their_labels_spans(trained):
    """A per-label threshold changes that label's spans exactly as a global
    threshold would, and leaves every other label's spans alone."""
    nlp, examples, _ = trained
    pipe = nlp.get_pipe("sru_ner")
    docs = [nlp.make_doc(eg.reference.text) for eg in examples]
    probs = pipe.predict_probs(docs)
    label = pipe.labels[0]
    default = pipe.spans_from_probs(probs, 0.5)
    strict = pipe.spans_from_probs(probs, 0.995)
    mixed = pipe.spans_from_probs(probs, pipe.action_thresholds(0.5, {label: 0.995}))
    assert mixed != default  # the overfitted model has some label-0 actions in (0.5, 0.995]
    for d, s, m in zip(default, strict, mixed):
        assert [x for x in m if x[2] == label] == [x for x in s if x[2] == label]
        assert [x for x in m if x[2] != label] == [x for x in d if x[2] != label]
    try:
        pipe.cfg["label_thresholds"] = {label: 0.995}
        assert pipe.predict(docs) == mixed
        pipe.cfg["label_thresholds"] = {"NOT_A_LABEL": 0.3}
        with pytest.raises(ValueError, match="NOT_A_LABEL"):
            pipe.predict(docs)
    finally:
        pipe.cfg["label_thresholds"] = {}


def test_tune_threshold_per_label(trained, tmp_path):
    """--per-label picks each label's best dev threshold from the same pass,
    stores them, and its reported score is the pipeline's score with them."""
    from spacy.tokens import DocBin

    from spacy_sru_ner.threshold import tune_threshold

    nlp, examples, _ = trained
    path = tmp_path / "dev.spacy"
    DocBin(docs=[eg.reference for eg in examples], store_user_data=True).to_disk(path)
    pipe = nlp.get_pipe("sru_ner")
    try:
        result = tune_threshold(nlp, [path], grid=[0.2, 0.5, 0.999], per_label=True)
        chosen = result["label_thresholds"]
        assert chosen and set(chosen) <= set(pipe.labels)
        for label, t in chosen.items():
            by_t = result["label_scores"][label]
            assert by_t[t]["f"] == max(s["f"] for s in by_t.values())
        assert pipe.cfg["label_thresholds"] == chosen
        assert nlp.get_pipe_config("sru_ner")["label_thresholds"] == chosen
        assert nlp.evaluate(examples)["spans_sru_ner_f"] == pytest.approx(result["tuned"]["f"])
        # one global threshold again clears them
        tune_threshold(nlp, [path], grid=[0.5])
        assert pipe.cfg["label_thresholds"] == {}
    finally:
        pipe.cfg["threshold"] = 0.5
        pipe.cfg["label_thresholds"] = {}
        nlp.get_pipe_config("sru_ner").update(threshold=0.5, label_thresholds={})


@pytest.mark.parametrize(
    "setting,value",
    [("threshold", 1.0), ("label_thresholds", {"X": 0.0}), ("max_positive", 0)],
)
def test_invalid_decision_settings_raise(setting, value):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=setting if setting != "label_thresholds" else "X"):
        nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, setting: value})


def test_max_positive_keeps_the_most_probable_label_of_a_span():
    """Two labels open and close the same span; with max_positive = 1 only the
    more probable one is written."""
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, "max_positive": 1})
    for label in ("A", "B"):
        pipe.add_label(label)
    vocab = pipe.actions
    # word 0: TR(A) 0.9, TR(B) 0.7; SHIFT; word 1: RE(A) 0.8, RE(B) 0.95; EOA
    probs = numpy.zeros((4, vocab.n_actions), dtype="float32")
    probs[0, [vocab.transition("A"), vocab.transition("B")]] = [0.9, 0.7]
    probs[1, 1] = 1.0
    probs[2, [vocab.reduce("A"), vocab.reduce("B")]] = [0.8, 0.95]
    probs[3, 0] = 1.0
    window = [(0, 2, probs)]
    assert pipe.spans_from_probs([window], 0.5) == [[(0, 1, "A", pytest.approx(0.85))]]
    pipe.cfg["max_positive"] = 2
    assert [s[2] for s in pipe.spans_from_probs([window], 0.5)[0]] == ["A", "B"]
    pipe.cfg["max_positive"] = None
    assert len(pipe.spans_from_probs([window], 0.5)[0]) == 2


def test_tune_spancat_threshold_matches_the_pipeline(tmp_path):
    """scripts/tune_spancat_threshold.py (spancat's baseline of tune-threshold): each
    threshold's dev score equals the pipeline's at that threshold, the best is chosen,
    and the saved pipeline keeps it."""
    import random

    import srsly
    from conftest import make_examples, nested_docs, project_script
    from spacy.tokens import DocBin

    tuner = project_script("tune_spancat_threshold")
    spacy.util.fix_random_seed(0)
    docs = nested_docs(20)
    nlp = spacy.blank("en")
    nlp.add_pipe("spancat", config={"spans_key": "sru_ner", "threshold": 0.5})
    examples = make_examples(nlp, docs)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(15):
        random.shuffle(examples)
        nlp.update(examples, sgd=optimizer)
    path = tmp_path / "dev.spacy"
    DocBin(docs=docs, store_user_data=True).to_disk(path)
    result = tuner.tune(nlp, [path], grid=[0.1, 0.3, 0.7])
    assert set(result["scores"]) == {0.1, 0.3, 0.5, 0.7}
    pipe = nlp.get_pipe("spancat")
    for threshold, prf in result["scores"].items():
        pipe.cfg["threshold"] = threshold
        assert nlp.evaluate(examples)["spans_sru_ner_f"] == pytest.approx(prf["f"])
    assert result["scores"][0.1]["r"] >= result["scores"][0.7]["r"]
    assert result["scores"][result["threshold"]]["f"] == max(s["f"] for s in result["scores"].values())
    pipe.cfg["threshold"] = 0.9  # the command line picks the same best from another starting point
    tuner.main([str(_saved(nlp, tmp_path / "model")), str(path), "--output", str(tmp_path / "tuned")])
    saved = spacy.load(tmp_path / "tuned")
    chosen = saved.get_pipe("spancat").cfg["threshold"]
    record = srsly.read_json(tmp_path / "tuned" / "threshold.json")
    assert record["threshold"] == chosen and record["previous"] == 0.9
    assert record["scores"][f"{chosen:.2f}"]["f"] == max(s["f"] for s in record["scores"].values())
    assert spacy.util.load_config(tmp_path / "tuned" / "config.cfg")["components"]["spancat"]["threshold"] == chosen


def _saved(nlp, path):
    nlp.to_disk(path)
    return path
