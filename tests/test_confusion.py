"""Per-label error counts: correct, wrong label, wrong boundary, both, missed, spurious."""
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_sru_ner.confusion import ERROR_KINDS, classify_mentions, confusion_by_label, format_confusion
from spacy_sru_ner.contract import set_annotated_labels


def test_classify_mentions_every_kind():
    gold = [(0, 5, "Chemical"), (10, 20, "Disease"), (30, 40, "Chemical"), (50, 60, "Disease"), (70, 80, "Species")]
    pred = [
        (0, 5, "Chemical"),  # correct
        (10, 20, "Chemical"),  # Disease with the wrong label
        (30, 45, "Chemical"),  # wrong boundary
        (52, 60, "Chemical"),  # wrong label and boundary
        (90, 95, "Species"),  # spurious; (70, 80) Species missed
    ]
    counts, confusions = classify_mentions(gold, pred)
    assert counts == {
        ("Chemical", "correct"): 1, ("Disease", "wrong_label"): 1, ("Chemical", "wrong_boundary"): 1,
        ("Disease", "wrong_both"): 1, ("Species", "missed"): 1, ("Species", "spurious"): 1,
    }
    assert confusions == {("Disease", "Chemical"): 1}
    # each gold mention gets exactly one kind
    assert sum(n for (_, kind), n in counts.items() if kind != "spurious") == len(gold)


def test_confusion_by_label_counts_only_annotated_labels():
    nlp = spacy.blank("en")
    words = "aspirin causes asthma in mice".split()
    reference = Doc(nlp.vocab, words=words)
    reference.spans["sru_ner"] = [Span(reference, 0, 1, "Chemical")]
    set_annotated_labels(reference, ["Chemical"])  # e.g. BC5CDR-chem: diseases and species not marked
    predicted = Doc(nlp.vocab, words=words)
    predicted.spans["sru_ner"] = [Span(predicted, 0, 1, "Chemical"), Span(predicted, 2, 3, "Disease"),
                                  Span(predicted, 4, 5, "Chemical")]
    result = confusion_by_label([Example(predicted, reference)])
    assert list(result["per_label"]) == ["Chemical"]
    assert result["per_label"]["Chemical"] == {**dict.fromkeys(ERROR_KINDS, 0), "correct": 1, "spurious": 1}
    lines = format_confusion(result)
    assert lines[0].split()[1:] == list(ERROR_KINDS) and lines[1].split() == ["Chemical", "1", "0", "0", "0", "0", "1"]


def test_recall_by_nesting_kind():
    """Gold mentions are sorted by where they sit: flat, outer, inside another
    label's mention, inside a mention of their own label."""
    from spacy_sru_ner.confusion import nesting_kind

    nlp = spacy.blank("en")
    words = "the CD28 surface receptor binds IL-2 gene in T cells".split()
    reference = Doc(nlp.vocab, words=words)
    gold = [(1, 4, "protein"), (1, 2, "protein"), (5, 7, "DNA"), (5, 6, "protein"), (8, 10, "cell_type")]
    reference.spans["sru_ner"] = [Span(reference, s, e, l) for s, e, l in gold]
    predicted = Doc(nlp.vocab, words=words)
    predicted.spans["sru_ner"] = [Span(predicted, s, e, l) for s, e, l in gold[:1] + gold[2:]]
    as_chars = [(reference[s:e].start_char, reference[s:e].end_char, l) for s, e, l in gold]
    assert [nesting_kind(m, as_chars) for m in as_chars] == [
        "outer", "inner_same_label", "outer", "inner_other_label", "flat"
    ]
    result = confusion_by_label([Example(predicted, reference)])
    assert result["nesting"] == {
        "flat": {"gold": 1, "found": 1}, "outer": {"gold": 2, "found": 2},
        "inner_other_label": {"gold": 1, "found": 1}, "inner_same_label": {"gold": 1, "found": 0},
    }
    assert format_confusion(result)[-1] == (
        "  recall by nesting: flat 1/1 (100.0), outer 2/2 (100.0), inner_other_label 1/1 (100.0), "
        "inner_same_label 0/1 (0.0)"
    )


def test_split_script_and_nesting_table(tmp_path):
    """scripts/ablation.py split cuts a corpus in order and counts same-label
    nesting; compare_evals.py --nesting tabulates evaluate's nesting recall."""
    import json

    from spacy.tokens import DocBin

    from conftest import project_script

    nlp = spacy.blank("en")
    docs = []
    for i in range(5):
        doc = Doc(nlp.vocab, words=f"the CD28 surface receptor {i}".split())
        doc.spans["sru_ner"] = [Span(doc, 1, 4, "protein"), Span(doc, 1, 2, "protein")][: 1 + (i % 2)]
        docs.append(doc)
    DocBin(docs=docs).to_disk(tmp_path / "corpus.spacy")
    counts = project_script("ablation").split_corpus(tmp_path / "corpus.spacy", tmp_path / "split", 0.4)
    assert counts == {
        "train": {"docs": 3, "mentions": 4, "inner_same_label": 1},
        "dev": {"docs": 2, "mentions": 3, "inner_same_label": 1},
    }
    dev = list(DocBin().from_disk(tmp_path / "split" / "dev.spacy").get_docs(nlp.vocab))
    assert [d[-1].text for d in dev] == ["3", "4"]
    nesting = {"flat": {"gold": 0, "found": 0}, "outer": {"gold": 4, "found": 3},
               "inner_other_label": {"gold": 0, "found": 0}, "inner_same_label": {"gold": 2, "found": 1}}
    result = {"corpora": {"genia_fm": {"p": 0.8, "r": 0.5, "f": 0.6, "errors": {"nesting": nesting}}}}
    (tmp_path / "eval.json").write_text(json.dumps(result))
    table = project_script("compare_evals").nesting_table([("m", tmp_path / "eval.json")])
    assert table.splitlines()[-1] == "| m | genia_fm | 80.0 / 50.0 / 60.0 | – | 75.0 (3/4) | – | 50.0 (1/2) |"


def test_verify_candidates_scores_each_model_alone_as_evaluate_does(trained, tmp_path):
    """scripts/verify_candidates.py: its 'alone' rows are each model's own exact-match scores,
    and spancat kept at its threshold on sru_ner's spans never finds a span sru_ner did not propose."""
    import srsly
    from spacy.tokens import DocBin

    from conftest import make_examples, nested_docs, project_script

    nlp, examples, _ = trained
    docs = []  # the script decodes the data's own tokens: spaCy's tokenization of the demo sentences
    for gold in nested_docs(20):
        doc = nlp.make_doc(gold.text)
        spans = [doc.char_span(s.start_char, s.end_char, s.label_) for s in gold.spans["sru_ner"]]
        if all(spans):
            doc.spans["sru_ner"] = spans
            docs.append(doc)
    assert len(docs) >= 10
    spc = spacy.blank("en")
    spc.add_pipe("spancat", config={"spans_key": "sru_ner", "suggester": {"@misc": "spacy.ngram_suggester.v1", "sizes": [1, 2, 3]}})
    spc_examples = make_examples(spc, docs)
    optimizer = spc.initialize(lambda: spc_examples)
    for _ in range(5):
        spc.update(spc_examples, sgd=optimizer)
    nlp.to_disk(tmp_path / "sru")
    spc.to_disk(tmp_path / "spancat")
    DocBin(docs=docs, store_user_data=True).to_disk(tmp_path / "data.spacy")
    project_script("verify_candidates").main(
        [str(tmp_path / "sru"), str(tmp_path / "spancat"), str(tmp_path / "data.spacy"), "--output", str(tmp_path / "out"),
         "--thresholds", "0.5", "--keep", "0.5", "--variants", "1"]
    )
    result = srsly.read_json(tmp_path / "out" / "verify.json")
    assert result["spancat alone"]["f"] == pytest.approx(spc.evaluate(make_examples(spc, docs))["spans_sru_ner_f"])
    assert result["sru_ner alone, threshold 0.5"]["f"] == pytest.approx(nlp.evaluate(make_examples(nlp, docs))["spans_sru_ner_f"])
    rows = [k for k in result if k.startswith("sru_ner threshold 0.5, variants ±0")]
    assert len(rows) == 1 and "unlabelled recall 100.0" in rows[0]  # sru_ner overfits these docs
    assert result[rows[0]]["p"] >= 0 and (tmp_path / "out" / "summary.md").is_file()


def test_missed_labels_script_sorts_every_gold_mention(trained, tmp_path):
    """scripts/missed_labels.py: each gold span is sorted into one of classify_mentions' kinds;
    a label the model does not have finds nothing and turns every exactly predicted span into
    wrong_label, counted once per predicted label."""
    from collections import Counter

    from spacy.tokens import DocBin

    from conftest import nested_docs, project_script

    nlp, _, _ = trained
    docs = []
    for gold in nested_docs(20):
        doc = nlp.make_doc(gold.text)
        spans = [doc.char_span(s.start_char, s.end_char, s.label_) for s in gold.spans["sru_ner"]]
        if all(spans):
            doc.spans["sru_ner"] = [s for s in spans if s.label_ == "protein"]
            docs.append(doc)
    gold_total = sum(len(d.spans["sru_ner"]) for d in docs)
    assert gold_total >= 10
    nlp.to_disk(tmp_path / "sru")
    DocBin(docs=docs).to_disk(tmp_path / "data.spacy")
    found = 0
    other = Counter()
    for gold, pred in zip(docs, nlp.pipe(d.text for d in docs)):
        labels = {}
        for span in pred.spans["sru_ner"]:
            labels.setdefault((span.start, span.end), set()).add(span.label_)
        for span in gold.spans["sru_ner"]:
            here = labels.get((span.start, span.end), set())
            found += "protein" in here
            other.update(here)
    script = project_script("missed_labels")
    counts = script.missed_labels(tmp_path / "sru", tmp_path / "data.spacy", "protein")
    assert counts["gold"] == gold_total and counts["correct"] == found > 0
    parts = sum(counts[kind] for kind in ("correct", "wrong_label", "wrong_boundary", "wrong_both", "missed"))
    assert parts == gold_total
    unknown = script.missed_labels(tmp_path / "sru", tmp_path / "data.spacy", "no_such_label")
    assert unknown["correct"] == unknown["wrong_boundary"] == 0
    assert unknown["wrong_label_as"] == dict(other)
