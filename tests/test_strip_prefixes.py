"""strip_prefixes: a model trained with corpus-prefixed labels writes the plain labels."""
import pytest
import spacy
from spacy.util import load_config, load_model_from_config

from spacy_sru_ner.actions import rename_scored_spans
from spacy_sru_ner.contract import strip_prefix
from spacy_sru_ner.evaluate import _model_labels, model_label_settings
from spacy_sru_ner.threshold import tune_threshold

from conftest import SMALL_MODEL

PREDICTED = [(0, 1, "bc2gm$Gene", 0.7), (0, 1, "jnlpba$Gene", 0.9), (0, 1, "jnlpba$DNA", 0.6), (2, 4, "bc2gm$Gene", 0.8)]


def test_rename_scored_spans_merges_same_spans_with_the_best_score():
    assert rename_scored_spans(PREDICTED, strip_prefix) == [
        (0, 1, "Gene", 0.9), (0, 1, "DNA", 0.6), (2, 4, "Gene", 0.8)
    ]
    assert rename_scored_spans(PREDICTED, lambda label: label) == PREDICTED


def test_component_writes_plain_labels():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, "strip_prefixes": True, "write_ents": True})
    doc = nlp.make_doc("IL-2 binds the IL-2 receptor")
    pipe.set_annotations([doc], [PREDICTED])
    group = doc.spans["sru_ner"]
    assert [(s.start, s.end, s.label_) for s in group] == [(0, 1, "Gene"), (0, 1, "DNA"), (2, 4, "Gene")]
    assert [round(float(x), 3) for x in group.attrs["scores"]] == [0.9, 0.6, 0.8]
    assert [(e.start, e.end) for e in doc.ents] == [(0, 1), (2, 4)]
    pipe.cfg["strip_prefixes"] = False
    doc = nlp.make_doc("IL-2 binds the IL-2 receptor")
    pipe.set_annotations([doc], [PREDICTED])
    assert [s.label_ for s in doc.spans["sru_ner"]] == ["bc2gm$Gene", "jnlpba$Gene", "jnlpba$DNA", "bc2gm$Gene"]


def test_thresholds_are_not_tuned_on_stripped_labels(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, "strip_prefixes": True})
    with pytest.raises(ValueError, match="strip_prefixes"):
        tune_threshold(nlp, [tmp_path / "dev.spacy"])


def test_evaluation_scores_a_stripping_model_on_plain_gold_labels():
    config = load_config("configs/multi_corpus_cpu.cfg")
    config["corpora"]["dev"]["prefix_labels"] = True
    nlp = load_model_from_config(config, auto_fill=True)
    pipe = nlp.get_pipe("sru_ner")
    pipe.cfg["labels"] = ["bc2gm$Gene", "jnlpba$Gene"]
    maps, prefix, section = model_label_settings(nlp)
    assert prefix is True and section == "corpora.dev" and maps["bc2gm"] == {"GENE": "Gene"}
    assert _model_labels(nlp, "sru_ner") == ["bc2gm$Gene", "jnlpba$Gene"]
    pipe.cfg["strip_prefixes"] = True
    assert model_label_settings(nlp)[1] is False
    assert _model_labels(nlp, "sru_ner") == ["Gene", "Gene"]
