"""The decoder's settings have one home: the component's default config."""
import inspect

import pytest
import spacy

from conftest import SMALL_MODEL
from spacy_sru_ner.decoder import SlotDecoder
from spacy_sru_ner.model import build_slot_decoder
from spacy_sru_ner.pipe import DEFAULT_MODEL
from spacy_sru_ner.settings import DecoderSettings


def test_defaults_live_only_in_the_default_config():
    builder = inspect.signature(build_slot_decoder).parameters
    # span_aux_width (the training-only span head, not a decoder setting) defaults to 0 in the
    # builder so that pipelines saved before it existed still load
    assert [n for n, p in builder.items() if p.default is not inspect.Parameter.empty] == ["span_aux_width", "nO"]
    assert builder["span_aux_width"].default == 0
    assert set(DecoderSettings.names()) == set(builder) - {"tok2vec", "span_aux_width", "nO"}
    module = inspect.signature(SlotDecoder.__init__).parameters
    assert all(p.default is inspect.Parameter.empty for p in module.values())
    assert DecoderSettings.defaults() == DecoderSettings.from_config(DEFAULT_MODEL)


def test_the_model_and_module_get_the_configs_settings():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": {**SMALL_MODEL, "half_context": 7, "slot_state": False}})
    pipe.add_label("X")
    nlp.initialize()
    settings = pipe.model.attrs["decoder_settings"]
    assert settings == DecoderSettings.defaults(hidden_width=64, half_context=7, slot_state=False,
                                                dropout_positions=0.0, dropout_queries=0.0, dropout_mlp=0.0)
    module = pipe.model.get_ref("decoder").shims[0]._model
    assert module.settings is settings and module.width == 64 and module.half_context == 7
    # what loading needs besides the weights is in the component's cfg, not in Thinc's msgpack
    assert pipe.cfg["n_inputs"] == 64


@pytest.mark.parametrize("name,value", [("hidden_width", 0), ("dropout_mlp", 1.0), ("max_predict_steps_factor", 0.5)])
def test_invalid_decoder_settings_raise(name, value):
    with pytest.raises(ValueError, match=name):
        DecoderSettings.defaults(**{name: value})
