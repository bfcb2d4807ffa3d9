import logging
import pickle

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example

from conftest import SMALL_MODEL, make_examples, nested_docs, train_nlp
from benchmarks.memory import peak_memory_added

TEXTS = [
    "IL-2 gene expression and NF-kappa B activation through CD28 requires reactive oxygen production by 5-lipoxygenase .",
    "Activation of the CD28 surface receptor provides a major costimulatory signal for T cell activation .",
    "",
    "   ",
    "The 🧬 human T-cell leukemia virus type I (HTLV-I) Tax protein trans-activates IL-2 — naïve cells.",
]


def _spans(doc, key="sru_ner"):
    group = doc.spans[key]
    return [(s.start, s.end, s.label_) for s in group], [float(x) for x in group.attrs["scores"]]


def test_overfits_nested_sentences_to_f1_one(trained):
    nlp, examples, scores = trained
    assert scores["spans_sru_ner_f"] == 1.0
    nested = 0
    for eg in examples:
        doc = nlp(eg.reference.text)
        gold = sorted((s.start_char, s.end_char, s.label_) for s in eg.reference.spans["sru_ner"])
        spans, doc_scores = _spans(doc)
        assert sorted((s.start_char, s.end_char, s.label_) for s in doc.spans["sru_ner"]) == gold
        assert all(0.5 < s <= 1.0 for s in doc_scores)
        nested += any(a[0] <= b[0] and b[1] <= a[1] and a != b for a in spans for b in spans)
    assert nested >= 10


def test_predicts_on_odd_input(trained):
    nlp = trained[0]
    for text in TEXTS:
        doc = nlp(text)
        spans, scores = _spans(doc)
        assert len(spans) == len(scores)
        assert all(0 <= s < e <= len(doc) for s, e, _ in spans)
    empty = nlp("")
    assert len(empty.spans["sru_ner"]) == 0
    assert list(nlp.pipe([])) == []


def test_doc_longer_than_the_window(trained):
    nlp = trained[0]
    sentence = trained[1][0].reference.text
    reps = 20000 // len(nlp.make_doc(sentence)) + 1
    doc = nlp(" ".join([sentence] * reps))  # > 20,000 tokens, no sentence boundaries
    assert len(doc) > 20000
    spans, _ = _spans(doc)
    single = _spans(nlp(sentence))[0]
    assert single, "the trained model should find entities in the sentence"
    # fixed windows of max_length tokens: every span lies inside one window
    max_length = nlp.get_pipe("sru_ner").cfg["max_length"]
    assert all(s // max_length == (e - 1) // max_length for s, e, _ in spans)
    assert len(spans) >= len(single) * reps // 2


def _long_doc(nlp, sentence, n_tokens, sentences):
    reps = n_tokens // len(nlp.make_doc(sentence)) + 1
    nlp.max_length = max(nlp.max_length, (len(sentence) + 1) * reps)
    doc = nlp.make_doc(" ".join([sentence] * reps))
    if sentences:
        period = len(nlp.make_doc(sentence))
        for token in doc:
            token.is_sent_start = token.i % period == 0
    return doc


@pytest.mark.parametrize("sentences", [False, True])
def test_long_doc_pieces_give_the_whole_docs_spans(trained, sentences):
    """Docs over segment_length tokens are encoded and decoded piece by piece
    (with encoder context around each piece); the spans are those of decoding
    the whole doc at once, none lost or duplicated at piece edges."""
    nlp = trained[0]
    pipe = nlp.get_pipe("sru_ner")
    doc = _long_doc(nlp, trained[1][0].reference.text, 2000, sentences)
    windows = [window for _, window in pipe._window_probs([(doc, 0)], pipe._windows([doc]))]
    whole = pipe.spans_from_probs([windows], pipe.cfg["threshold"])[0]
    assert whole
    pipe.segment_length = 300
    try:
        pieces = list(pipe._segments(doc))
        assert len(pieces) >= 6
        assert all(len(piece) <= 300 + 2 * pipe.segment_margin for (piece, _), _ in pieces)
        predicted = pipe.predict([doc])[0]
    finally:
        del pipe.segment_length
    assert [s[:3] for s in predicted] == [s[:3] for s in whole]
    numpy.testing.assert_allclose([s[3] for s in predicted], [s[3] for s in whole], rtol=1e-4)


def test_100k_token_doc_runs_in_bounded_memory(trained):
    """Annotating a 100,000-token doc needs about the working memory of a
    10,000-token one (plus its spans), not ten times as much."""
    nlp = trained[0]
    pipe = nlp.get_pipe("sru_ner")
    sentence = trained[1][0].reference.text
    added = {}
    for n_tokens in (10_000, 100_000):
        doc = _long_doc(nlp, sentence, n_tokens, sentences=False)
        added[n_tokens] = peak_memory_added(lambda: pipe(doc))
    print(f"peak memory added: {added}")
    assert added[100_000] < 1.5 * added[10_000] + 20


def test_sentence_windows_are_decoded_separately(trained):
    nlp = trained[0]
    texts = [eg.reference.text for eg in trained[1][:4]]
    doc = nlp.make_doc(" ".join(texts))
    sent_starts = set()
    offset = 0
    for text in texts:
        sent_starts.add(offset)
        offset += len(nlp.make_doc(text))
    for token in doc:
        token.is_sent_start = token.i in sent_starts
    doc = nlp.get_pipe("sru_ner")(doc)
    expected = []
    offset = 0
    for text in texts:
        single = nlp(text)
        expected += [(s + offset, e + offset, l) for s, e, l in _spans(single)[0]]
        offset += len(single)
    spans = _spans(doc)[0]
    sents = [(sent.start, sent.end) for sent in doc.sents]
    assert all(any(a <= s and e <= b for a, b in sents) for s, e, _ in spans)
    # the CNN tok2vec sees across sentence ends, so a few spans near them may differ
    assert len(set(spans) & set(expected)) >= 0.8 * len(expected)


def test_serialization_round_trips_give_identical_predictions(trained, tmp_path):
    nlp = trained[0]
    texts = [eg.reference.text for eg in trained[1]] + TEXTS
    expected = [_spans(doc) for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "model")
    loaded = [
        spacy.load(tmp_path / "model"),
        spacy.blank("en").from_config(nlp.config).from_bytes(nlp.to_bytes()),
        pickle.loads(pickle.dumps(nlp)),
    ]
    for other in loaded:
        assert [_spans(doc) for doc in other.pipe(texts)] == expected
    pipe_bytes = nlp.get_pipe("sru_ner").to_bytes()
    fresh = spacy.blank("en")
    fresh.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    fresh.get_pipe("sru_ner").from_bytes(pipe_bytes)
    fresh.vocab.from_bytes(nlp.vocab.to_bytes())
    assert [_spans(doc) for doc in fresh.pipe(texts)] == expected


def test_predicted_spans_survive_docbin(trained):
    nlp = trained[0]
    docs = list(nlp.pipe([eg.reference.text for eg in trained[1][:5]]))
    restored = list(DocBin(docs=docs).from_bytes(DocBin(docs=docs).to_bytes()).get_docs(nlp.vocab))
    assert [_spans(d) for d in restored] == [_spans(d) for d in docs]


def test_multiprocess_pipe_matches_single_process(trained):
    nlp = trained[0]
    texts = [eg.reference.text for eg in trained[1]] * 2 + TEXTS
    single = [_spans(doc) for doc in nlp.pipe(texts, batch_size=4)]
    multi = [_spans(doc) for doc in nlp.pipe(texts, batch_size=4, n_process=2)]
    assert [s for s, _ in multi] == [s for s, _ in single]
    for (_, a), (_, b) in zip(multi, single):
        numpy.testing.assert_allclose(a, b, rtol=1e-5)


def test_write_ents_sets_longest_non_overlapping(trained):
    nlp = trained[0]
    ner = nlp.get_pipe("sru_ner")
    ner.cfg["write_ents"] = True
    try:
        doc = nlp(trained[1][0].reference.text)
    finally:
        ner.cfg["write_ents"] = False
    spans = list(doc.spans["sru_ner"])
    assert doc.ents
    for ent in doc.ents:
        assert (ent.start, ent.end, ent.label_) in {(s.start, s.end, s.label_) for s in spans}
        assert not any(s.start <= ent.start and ent.end <= s.end and len(s) > len(ent) for s in spans)


def test_no_labels_gives_clear_error():
    nlp = spacy.blank("en")
    nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    doc = nlp.make_doc("no entities here")
    with pytest.raises(ValueError, match="has no labels"):
        nlp.initialize(lambda: [Example(nlp.make_doc(doc.text), doc)])


def test_unseen_label_in_config_works_and_warns(caplog):
    docs = nested_docs(4)
    nlp = spacy.blank("en")
    nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    labels = sorted({s.label_ for d in docs for s in d.spans["sru_ner"]} | {"Species"})
    examples = make_examples(nlp, docs)
    with caplog.at_level(logging.WARNING, logger="spacy_sru_ner"):
        nlp.get_pipe("sru_ner").initialize(lambda: examples, nlp=nlp, labels=labels)
    assert "Species" in caplog.text
    assert "Species" in nlp.get_pipe("sru_ner").labels
    nlp.update(examples)
    assert "sru_ner" in nlp(docs[0].text).spans


def test_gold_label_missing_from_config_labels_raises():
    docs = nested_docs(4)
    nlp = spacy.blank("en")
    nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    examples = make_examples(nlp, docs)
    nlp.get_pipe("sru_ner").initialize(lambda: examples, nlp=nlp, labels=["Chemical"])
    with pytest.raises(ValueError, match=r"Gold span label '.*' .* is not a label of 'sru_ner'"):
        nlp.update(examples)


def test_add_label_after_initialize_raises():
    nlp, _, _ = train_nlp(nested_docs(3), n_iter=1)
    with pytest.raises(ValueError, match="Add all labels before"):
        nlp.get_pipe("sru_ner").add_label("NEW")


def test_gold_from_doc_ents_when_spans_key_absent():
    nlp = spacy.blank("en")
    nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    ref = nlp.make_doc("Aspirin causes headache")
    ref.ents = [Span(ref, 0, 1, label="Chemical"), Span(ref, 2, 3, label="Disease")]
    examples = [Example(nlp.make_doc(ref.text), ref)]
    nlp.initialize(lambda: examples)
    assert nlp.get_pipe("sru_ner").labels == ("Chemical", "Disease")
    losses = nlp.update(examples)
    assert losses["sru_ner"] > 0


def test_gold_spans_crossing_windows_are_reported(caplog):
    nlp = spacy.blank("en")
    nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL, "max_length": 4})
    ref = nlp.make_doc("the CD28 surface receptor protein binds IL-2")
    ref.spans["sru_ner"] = [Span(ref, 1, 5, label="protein"), Span(ref, 6, 7, label="protein")]
    examples = [Example(nlp.make_doc(ref.text), ref)]
    nlp.initialize(lambda: examples)
    with caplog.at_level(logging.WARNING, logger="spacy_sru_ner"):
        nlp.update(examples)
    assert "1 of 2 gold spans in this batch cross a decoding window" in caplog.text


def test_gold_spans_of_differently_tokenized_examples_are_aligned():
    """Training targets come from the gold spans in the predicted doc's tokens:
    the same spans when both docs have the same tokens (no alignment run), and
    spaCy's alignment where the tokenizations differ."""
    from spacy_sru_ner.pipe import _same_tokens

    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("sru_ner", config={"model": SMALL_MODEL})
    pipe.add_label("protein")
    words = ["The", "IL-2", "receptor", "alpha", "chain", "binds", "."]
    spaces = [True, True, True, True, True, False, False]
    same = Doc(nlp.vocab, words=words, spaces=spaces)
    same.spans["sru_ner"] = [Span(same, 1, 3, "protein"), Span(same, 1, 5, "protein")]
    # the reference splits "IL-2" in three tokens; the predicted doc keeps it whole
    split = Doc(nlp.vocab, words=["The", "IL", "-", "2", "receptor", "alpha", "chain", "binds", "."],
                spaces=[True, False, False, True, True, True, True, False, False])
    split.spans["sru_ner"] = [Span(split, 1, 5, "protein"), Span(split, 1, 7, "protein")]
    examples = [Example(Doc(nlp.vocab, words=words, spaces=spaces), ref) for ref in (same, split)]
    assert _same_tokens(examples[0]) and not _same_tokens(examples[1])
    windows, rows, _, spans = pipe._gold(examples)
    assert spans[0] == spans[1] == [(1, 3, "protein"), (1, 5, "protein")]
    assert len(windows) == 2
    numpy.testing.assert_array_equal(rows[0], rows[1])
    expected = [(s.start, s.end, s.label_) for s in examples[1].get_aligned_spans_y2x(split.spans["sru_ner"], allow_overlap=True)]
    assert expected == [(1, 3, "protein"), (1, 5, "protein")]


def _same_label_nested(doc):
    from spacy_sru_ner.confusion import nesting_kind

    spans = [(s.start, s.end, s.label_) for s in doc.spans["sru_ner"]]
    return any(nesting_kind(span, spans) == "inner_same_label" for span in spans)


def test_nest_depth_decodes_same_label_nesting_with_its_own_actions(tmp_path):
    """With nest_depth 1 a mention inside a mention of its own label is taught
    as TRANSITION/REDUCE(label#1); the pipeline still writes the label itself,
    overfits such sentences and round-trips through disk."""
    from spacy_sru_ner.demo import load_demo_docs

    docs = [d for d in load_demo_docs("train") if len(d) <= 30 and _same_label_nested(d)][:12]
    assert len(docs) == 12
    nlp, examples, scores = train_nlp(docs, config={"nest_depth": 1})
    pipe = nlp.get_pipe("sru_ner")
    labels = pipe.labels
    assert pipe.actions.labels == labels + tuple(f"{label}#1" for label in labels)
    assert nlp.get_pipe("sru_ner").model.get_dim("nO") == 2 + 4 * len(labels)
    _, gold_rows, _, window_spans = pipe._gold(examples)
    assert any("#1" in label for spans in window_spans for _, _, label in spans)
    nested_actions = [pipe.actions.transition(f"{label}#1") for label in labels]
    assert sum(int(rows[:, nested_actions].sum()) for rows in gold_rows) >= 12
    assert scores["spans_sru_ner_f"] == 1.0
    texts = [eg.reference.text for eg in examples]
    expected = [_spans(doc) for doc in nlp.pipe(texts)]
    assert all(label in labels for spans, _ in expected for *_, label in spans)
    nlp.to_disk(tmp_path / "model")
    assert [_spans(doc) for doc in spacy.load(tmp_path / "model").pipe(texts)] == expected


def test_nest_depth_must_be_a_non_negative_integer():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="nest_depth"):
        nlp.add_pipe("sru_ner", config={"nest_depth": -1})
