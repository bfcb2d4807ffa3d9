"""strip_prefixes: a model trained with corpus-prefixed labels writes the plain labels."""
import pytest
import spacy
from hypothesis import given
from hypothesis import strategies as st
from spacy.util import load_config, load_model_from_config

from spacy_sru_ner.actions import merge_heads
from spacy_sru_ner.contract import label_prefix, strip_prefix
from spacy_sru_ner.evaluate import _model_labels, model_label_settings, strip_span_prefixes
from spacy_sru_ner.threshold import tune_threshold

from conftest import SMALL_MODEL

PREDICTED = [(0, 1, "bc2gm$Gene", 0.7), (0, 1, "jnlpba$Gene", 0.9), (0, 1, "jnlpba$DNA", 0.6), (2, 4, "bc2gm$Gene", 0.8)]


def test_merge_heads_keeps_the_best_of_overlapping_spans_of_different_heads():
    assert merge_heads(PREDICTED, strip_prefix, label_prefix) == [
        (0, 1, "Gene", 0.9), (0, 1, "DNA", 0.6), (2, 4, "Gene", 0.8)
    ]
    assert merge_heads(PREDICTED, lambda label: label, label_prefix) == PREDICTED
    # overlapping, not the same words: one Gene per mention, the higher-scored head's boundaries
    spans = [
        (0, 2, "bc2gm$Gene", 0.6), (1, 3, "jnlpba$Gene", 0.8), (2, 5, "bc2gm$Gene", 0.9), (5, 6, "jnlpba$Gene", 0.5)
    ]
    assert merge_heads(spans, strip_prefix, label_prefix) == [
        (0, 2, "Gene", 0.6), (2, 5, "Gene", 0.9), (5, 6, "Gene", 0.5)
    ]
    # one head's nested and overlapping spans all stay; other labels do not compete
    spans = [
        (0, 3, "jnlpba$Gene", 0.6), (1, 2, "jnlpba$Gene", 0.8), (2, 4, "jnlpba$Gene", 0.7),
        (0, 3, "bc5cdr$Chemical", 0.9),
    ]
    assert merge_heads(spans, strip_prefix, label_prefix) == [
        (0, 3, "Gene", 0.6), (1, 2, "Gene", 0.8), (2, 4, "Gene", 0.7), (0, 3, "Chemical", 0.9)
    ]


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


def test_evaluate_strips_prefixes_as_the_component_does():
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    spans = [(0, 3, "bc2gm$Gene", 0.6), (1, 3, "jnlpba$Gene", 0.8), (3, 4, "bc5cdr$Chemical", 0.7)]
    doc = nlp.make_doc("the IL-2 receptor binds aspirin")
    pipe.set_annotations([doc], [spans])
    strip_span_prefixes(doc, "sru_ner")
    pipe.cfg["strip_prefixes"] = True
    plain = nlp.make_doc("the IL-2 receptor binds aspirin")
    pipe.set_annotations([plain], [spans])
    for group in (doc.spans["sru_ner"], plain.spans["sru_ner"]):
        assert [(s.start, s.end, s.label_) for s in group] == [(1, 3, "Gene"), (3, 4, "Chemical")]
        assert [round(float(x), 3) for x in group.attrs["scores"]] == [0.8, 0.7]


_HEAD_SPANS = st.lists(
    st.tuples(
        st.integers(0, 8), st.integers(1, 4), st.sampled_from(["a$Gene", "b$Gene", "a$DNA", "c$DNA"]),
        st.floats(0, 1, allow_nan=False),
    ).map(lambda t: (t[0], t[0] + t[1], t[2], t[3])),
    max_size=12,
    unique_by=lambda t: (t[0], t[1], t[2]),
)


@given(_HEAD_SPANS)
def test_merge_heads_leaves_no_cross_head_overlap_and_drops_only_for_a_better_span(spans):
    merged = merge_heads(spans, strip_prefix, label_prefix)
    kept, rest = [], list(merged)
    for span in spans:  # merged keeps the order of spans
        if rest and rest[0] == (span[0], span[1], strip_prefix(span[2]), span[3]):
            kept.append(span)
            rest.pop(0)
    assert not rest

    def clash(x, y):
        return (strip_prefix(x[2]) == strip_prefix(y[2]) and label_prefix(x[2]) != label_prefix(y[2])
                and x[0] < y[1] and y[0] < x[1])

    assert not any(clash(x, y) for x in kept for y in kept)
    for span in spans:
        if span not in kept:
            assert any(clash(span, k) and k[3] >= span[3] for k in kept)
