"""Per-label error counts: correct, wrong label, wrong boundary, both, missed, spurious."""
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
